import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { loanIn, newKey, post, TERMS } from '../helpers/loans.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ DATABASE_POOL_MAX: '20' });
});
afterAll(() => t.close());

const PARALLEL = 20;
const count = async (sql: string, params: unknown[] = []) =>
  Number((await t.pool.query<{ n: string }>(sql, params)).rows[0]!.n);
const times = <T>(n: number, task: (i: number) => Promise<T>) =>
  Promise.all(Array.from({ length: n }, (_, i) => task(i)));

describe('concurrent requests', () => {
  it('20 parallel approvals of one loan: exactly one 200 and nineteen 409', async () => {
    const id = await loanIn(t.app, 'pending');
    const responses = await times(PARALLEL, () => post(t.app, `/api/loans/${id}/approve`));
    const statuses = responses.map((r) => r.statusCode).sort();
    expect(statuses).toEqual([200, ...Array(PARALLEL - 1).fill(409)]);
    expect(
      await count(`SELECT count(*) AS n FROM loan_events WHERE loan_id = $1 AND type = 'approved'`, [id]),
    ).toBe(1);
  });

  it('20 parallel creates with one Idempotency-Key: one loan and twenty identical bodies', async () => {
    const key = newKey();
    const borrower = `usr_${key}`.slice(0, 64).replaceAll(/[^A-Za-z0-9_.:-]/g, '_');
    const responses = await times(PARALLEL, () =>
      post(t.app, '/api/loans', { ...TERMS, borrower_id: borrower }, { 'idempotency-key': key }),
    );
    expect(responses.map((r) => r.statusCode)).toEqual(Array(PARALLEL).fill(201));
    expect(new Set(responses.map((r) => r.body)).size).toBe(1);
    expect(responses.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(PARALLEL - 1);
    expect(await count('SELECT count(*) AS n FROM loans WHERE borrower_id = $1', [borrower])).toBe(1);
  });

  it('parallel repayments never push the balance below zero', async () => {
    // 1000.00 at 0 % over 4 months: 1000.00 owed; ten payments of 300.00 → three fit, then 100.00 remains.
    const id = await loanIn(t.app, 'disbursed', {
      amount: '1000.00',
      term_months: 4,
      interest_rate_apr: '0',
    });
    const responses = await times(10, () =>
      post(t.app, `/api/loans/${id}/repayments`, { amount: '300.00' }, { 'idempotency-key': newKey() }),
    );
    const statuses = responses.map((r) => r.statusCode).sort();
    expect(statuses).toEqual([201, 201, 201, ...Array(7).fill(422)]);
    const loan = (await t.app.inject({ url: `/api/loans/${id}` })).json();
    expect(loan).toMatchObject({
      status: 'disbursed',
      outstanding_principal: '100.00',
      total_repaid: '900.00',
    });
    expect(
      await count(`SELECT count(*) AS n FROM loan_events WHERE loan_id = $1 AND type = 'repayment'`, [id]),
    ).toBe(3);
  });

  it('the number of events always equals the number of successful changes', async () => {
    const ids = await times(5, () => loanIn(t.app, 'pending'));
    const attempts = ids.flatMap((id) => [
      ...Array.from({ length: 4 }, () => () => post(t.app, `/api/loans/${id}/approve`)),
      ...Array.from({ length: 4 }, () => () => post(t.app, `/api/loans/${id}/reject`, { reason: 'race' })),
    ]);
    const responses = await Promise.all(attempts.map((attempt) => attempt()));
    const successes = responses.filter((r) => r.statusCode === 200).length;
    expect(successes).toBe(ids.length);
    const transitions = await count(
      `SELECT count(*) AS n FROM loan_events WHERE loan_id = ANY($1::uuid[]) AND type IN ('approved', 'rejected')`,
      [ids],
    );
    expect(transitions).toBe(successes);
  });

  it('stats read during concurrent repayments see one snapshot: PAR30 stays 0 with nothing overdue', async () => {
    // Disbursed today, so no installment is due: every consistent read has PAR30 exactly 0.
    const terms = { currency: 'KES', amount: '1000.00', term_months: 12, interest_rate_apr: '10' };
    const ids = await times(5, () => loanIn(t.app, 'disbursed', terms));
    let paying = true;
    const statuses: number[] = [];
    const payments = (async () => {
      for (let round = 0; round < 8; round++) {
        const responses = await times(ids.length * 3, (i) =>
          post(
            t.app,
            `/api/loans/${ids[i % ids.length]}/repayments`,
            { amount: '20.00' },
            { 'idempotency-key': newKey() },
          ),
        );
        statuses.push(...responses.map((response) => response.statusCode));
      }
      paying = false;
    })();
    const ratios: string[] = [];
    while (paying) {
      const polls = await times(4, () => t.app.inject({ url: '/api/stats?currency=KES' }));
      for (const poll of polls) ratios.push(poll.json().amounts.KES.par30_ratio);
    }
    await payments;
    expect(statuses).toEqual(Array(8 * ids.length * 3).fill(201));
    expect(ratios.length).toBeGreaterThan(10);
    expect(ratios.filter((ratio) => ratio !== '0.0000')).toEqual([]);
  });

  it('events of a loan repaid concurrently are in time order: at never goes backwards', async () => {
    const id = await loanIn(t.app, 'disbursed', {
      amount: '1000.00',
      term_months: 4,
      interest_rate_apr: '0',
    });
    await times(30, () =>
      post(t.app, `/api/loans/${id}/repayments`, { amount: '10.00' }, { 'idempotency-key': newKey() }),
    );
    const events: { at: string }[] = (await t.app.inject({ url: `/api/loans/${id}/events` })).json();
    expect(events).toHaveLength(3 + 30);
    const backwards = events.filter((event, i) => i > 0 && event.at < events[i - 1]!.at);
    expect(backwards).toEqual([]);
  });
});
