import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { loanIn, newKey, post } from '../helpers/loans.ts';

let now = new Date('2026-11-21T10:00:00.000Z');
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({}, () => now);
});
afterAll(() => t.close());

const kes = async () => (await t.app.inject({ url: '/api/stats?currency=KES' })).json().amounts.KES;
const terms = { currency: 'KES', amount: '1000.00', term_months: 4, interest_rate_apr: '0' };

describe('outstanding principal and PAR30', () => {
  it('counts the outstanding principal of loans more than 30 days past due', async () => {
    // Current loan: disbursed 10 days ago, nothing due yet.
    await loanIn(t.app, 'disbursed', terms, '2026-11-11');
    expect(await kes()).toMatchObject({ outstanding_principal: '1000.00', par30_ratio: '0.0000' });

    // First installment due 2026-10-21: exactly 31 days past due today → at risk.
    const late = await loanIn(t.app, 'disbursed', { ...terms, amount: '3000.00' }, '2026-09-21');
    expect(await kes()).toMatchObject({ outstanding_principal: '4000.00', par30_ratio: '0.7500' });

    // Exactly 30 days past due is not yet "more than 30": 2026-10-22 due → 30 days.
    await loanIn(t.app, 'disbursed', { ...terms, amount: '2000.00' }, '2026-09-22');
    expect(await kes()).toMatchObject({ outstanding_principal: '6000.00', par30_ratio: '0.5000' });

    // Paying the late loan's first two installments (750.00 each) brings its oldest unpaid to 2026-12-21.
    const paid = await post(
      t.app,
      `/api/loans/${late}/repayments`,
      { amount: '1500.00' },
      { 'idempotency-key': newKey() },
    );
    expect(paid.statusCode).toBe(201);
    expect(await kes()).toMatchObject({ outstanding_principal: '4500.00', par30_ratio: '0.0000' });

    // A day later the 2026-10-22 loan turns 31 days past due.
    now = new Date('2026-11-22T10:00:00.000Z');
    expect(await kes()).toMatchObject({ par30_ratio: '0.4444' });

    // Defaulted loans stay outstanding and at risk; repaid ones leave both.
    now = new Date('2026-11-21T10:00:00.000Z');
    const defaulted = await loanIn(t.app, 'defaulted', terms, '2026-01-05');
    expect(await kes()).toMatchObject({ outstanding_principal: '5500.00', par30_ratio: '0.1818' });
    await post(
      t.app,
      `/api/loans/${defaulted}/repayments`,
      { amount: '1000.00' },
      { 'idempotency-key': newKey() },
    );
    expect(await kes()).toMatchObject({ outstanding_principal: '4500.00', par30_ratio: '0.0000' });
    expect((await t.app.inject({ url: `/api/loans/${defaulted}` })).json().status).toBe('repaid');
  });

  it('keeps the arrears aggregates equal to a full scan', async () => {
    const { rows } = await t.pool.query(
      `SELECT currency, oldest_unpaid_due_date AS due, count(*)::text AS n, sum(outstanding_principal_minor)::text AS o
         FROM loans WHERE status IN ('disbursed', 'defaulted') AND oldest_unpaid_due_date IS NOT NULL
        GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    const maintained = await t.pool.query(
      `SELECT currency, oldest_unpaid_due AS due, sum(loans)::text AS n, sum(outstanding_minor)::text AS o
         FROM loan_arrears GROUP BY 1, 2 HAVING sum(loans) > 0 ORDER BY 1, 2`,
    );
    expect(maintained.rows).toEqual(rows);
  });
});
