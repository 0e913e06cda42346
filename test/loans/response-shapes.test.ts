// Every 2xx body leaves through its route's response schema, so a loan or a repayment has the same
// members whichever route returns it, and exactly the members its schema documents.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Loan, Repayment } from '../../src/loans/loans.schemas.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { loanIn, newKey, post, TERMS } from '../helpers/loans.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({}, () => new Date('2026-11-21T10:00:00.000Z'));
});
afterAll(() => t.close());

const keys = (value: object) => Object.keys(value).sort();
const get = async (url: string) => (await t.app.inject({ url })).json();

describe('response shapes', () => {
  it('POST /api/loans returns exactly what GET returns for the same loan, and the schema documents it', async () => {
    const created = await post(t.app, '/api/loans', TERMS);
    expect(created.statusCode).toBe(201);
    const fetched = await get(`/api/loans/${created.json().id}`);
    expect(created.json()).toEqual(fetched);
    expect(keys(fetched)).toEqual(keys(Loan.properties));
    expect(keys((await get('/api/loans'))[0])).toEqual(keys(Loan.properties));
  });

  it.each([
    ['approve', 'pending', { note: 'ok' }],
    ['reject', 'pending', { reason: 'policy' }],
    ['disburse', 'approved', {}],
    ['default', 'disbursed', { reason: 'unreachable' }],
  ] as const)('%s returns the loan as GET shows it', async (action, from, body) => {
    const id = await loanIn(t.app, from);
    const answered = await post(t.app, `/api/loans/${id}/${action}`, body, { 'idempotency-key': newKey() });
    expect(answered.statusCode).toBe(200);
    expect(answered.json()).toEqual(await get(`/api/loans/${id}`));
  });

  it('POST /api/loans/{id}/repayments returns the repayment as the list shows it', async () => {
    const id = await loanIn(t.app, 'disbursed');
    const paid = await post(
      t.app,
      `/api/loans/${id}/repayments`,
      { amount: '10.00' },
      { 'idempotency-key': newKey() },
    );
    expect(paid.statusCode).toBe(201);
    const [listed] = await get(`/api/loans/${id}/repayments`);
    expect(paid.json()).toEqual(listed);
    expect(keys(listed)).toEqual(keys(Repayment.properties));
  });
});
