import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedOriginalLoans } from '../../src/loans/seed.ts';
import { buildTestApp, JSON_HEADERS, type TestApp } from '../helpers/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
  await seedOriginalLoans(t.pool, t.config);
});
afterAll(() => t.close());

const stats = async (query = '') => {
  const response = await t.app.inject({ url: `/api/stats${query}` });
  expect(response.statusCode).toBe(200);
  return response.json();
};

describe('GET /api/stats', () => {
  it('reports the seed data exactly, with every status zero-filled and money per currency', async () => {
    const body = await stats();
    expect(body).toEqual({
      total_loans: 5,
      by_status: { pending: 1, approved: 1, rejected: 1, disbursed: 1, repaid: 1, defaulted: 0 },
      by_currency: { INR: 1, KES: 1, NGN: 1, PHP: 1, VND: 1 },
      amounts: {
        INR: {
          loans: 1,
          total_amount: '50000.00',
          avg_amount: '50000.00',
          outstanding_principal: '0.00',
          par30_ratio: '0.0000',
        },
        KES: {
          loans: 1,
          total_amount: '12500.00',
          avg_amount: '12500.00',
          outstanding_principal: '0.00',
          par30_ratio: '0.0000',
        },
        NGN: {
          loans: 1,
          total_amount: '32000.00',
          avg_amount: '32000.00',
          outstanding_principal: '0.00',
          par30_ratio: '0.0000',
        },
        PHP: {
          loans: 1,
          total_amount: '21000.00',
          avg_amount: '21000.00',
          outstanding_principal: '0.00',
          par30_ratio: '0.0000',
        },
        // Loan 4: 8400 VND disbursed 45 days ago, first installment (2033 principal) paid on time.
        VND: {
          loans: 1,
          total_amount: '8400',
          avg_amount: '8400',
          outstanding_principal: '6367',
          par30_ratio: '0.0000',
        },
      },
      as_of: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
  });

  it('follows creates, rounds the average half-even and never sums across currencies', async () => {
    for (const amount of ['0.01', '0.02']) {
      const created = await t.app.inject({
        method: 'POST',
        url: '/api/loans',
        headers: JSON_HEADERS,
        payload: { borrower_id: 'b', amount, currency: 'KWD', term_months: 3, interest_rate_apr: '5' },
      });
      expect(created.statusCode).toBe(201);
    }
    const body = await stats('?currency=kwd');
    // (10 + 20) / 2 = 15 fils exactly; then add a third loan so the mean is 40/3 = 13.33… → 13 fils.
    expect(body.amounts.KWD).toMatchObject({ loans: 2, total_amount: '0.030', avg_amount: '0.015' });
    await t.app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: JSON_HEADERS,
      payload: { borrower_id: 'b', amount: '0.010', currency: 'KWD', term_months: 3, interest_rate_apr: '5' },
    });
    const after = await stats('?currency=KWD');
    expect(after.amounts.KWD).toMatchObject({ loans: 3, total_amount: '0.040', avg_amount: '0.013' });
    expect(after.total_loans).toBe(3);
    expect(after.by_status).toEqual({
      pending: 3,
      approved: 0,
      rejected: 0,
      disbursed: 0,
      repaid: 0,
      defaulted: 0,
    });
    expect(after.by_currency).toEqual({ KWD: 3 });
    expect(Object.keys(after.amounts)).toEqual(['KWD']);
  });

  it('moves counts between statuses when a loan changes state', async () => {
    const approved = await t.app.inject({
      method: 'POST',
      url: '/api/loans/00000000-0000-0000-0000-000000000001/approve',
    });
    expect(approved.statusCode).toBe(200);
    const body = await stats('?currency=KES');
    expect(body.by_status).toEqual({
      pending: 0,
      approved: 1,
      rejected: 0,
      disbursed: 0,
      repaid: 0,
      defaulted: 0,
    });
    const all = await stats();
    expect(all.by_status.pending).toBe(3);
    expect(all.by_status.approved).toBe(2);
    expect(all.total_loans).toBe(8);
  });

  it('reports a valid currency without loans as zeros', async () => {
    const body = await stats('?currency=JPY');
    expect(body).toMatchObject({
      total_loans: 0,
      by_currency: { JPY: 0 },
      amounts: {
        JPY: {
          loans: 0,
          total_amount: '0',
          avg_amount: '0',
          outstanding_principal: '0',
          par30_ratio: '0.0000',
        },
      },
    });
  });

  it.each([
    ['?currency=ABC', 'currency'],
    ['?currency=XAU', 'currency'],
    ['?currency=12', 'currency'],
    ['?status=pending', 'status'],
  ])('rejects %s with 400', async (query, parameter) => {
    const response = await t.app.inject({ url: `/api/stats${query}` });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0].parameter).toBe(parameter);
  });

  it('agrees with a full count of the table', async () => {
    const { rows } = await t.pool.query(
      `SELECT currency, status, count(*)::text AS n, sum(amount_minor)::text AS total,
              sum(outstanding_principal_minor)::text AS outstanding
         FROM loans GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    const maintained = await t.pool.query(
      `SELECT currency, status, sum(loans)::text AS n, sum(amount_minor)::text AS total,
              sum(outstanding_minor)::text AS outstanding
         FROM loan_stats GROUP BY 1, 2 HAVING sum(loans) > 0 ORDER BY 1, 2`,
    );
    expect(maintained.rows).toEqual(rows);
  });
});
