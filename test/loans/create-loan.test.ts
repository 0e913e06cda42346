import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, JSON_HEADERS, type TestApp } from '../helpers/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ LOAN_MAX_AMOUNT_BY_CURRENCY: 'VND=1000000000' });
});
afterAll(() => t.close());

const valid = {
  borrower_id: 'usr_test_1',
  amount: '15000.00',
  currency: 'INR',
  term_months: 12,
  interest_rate_apr: '18.50',
};

function create(body: unknown) {
  return t.app.inject({
    method: 'POST',
    url: '/api/loans',
    headers: JSON_HEADERS,
    payload: JSON.stringify(body),
  });
}

async function loanCount(): Promise<number> {
  const result = await t.pool.query<{ count: string }>('SELECT count(*) FROM loans');
  return Number(result.rows[0]!.count);
}

describe('POST /api/loans', () => {
  it('creates a pending loan and returns 201 with Location, ETag and exact money strings', async () => {
    const response = await create(valid);
    expect(response.statusCode).toBe(201);
    const loan = response.json();
    expect(loan).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
      borrower_id: 'usr_test_1',
      amount: '15000.00',
      currency: 'INR',
      term_months: 12,
      interest_rate_apr: '18.50',
      status: 'pending',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      updated_at: loan.created_at,
      approved_at: null,
      approval_note: null,
      rejected_at: null,
      rejection_reason: null,
      disbursed_at: null,
      disbursed_on: null,
      defaulted_at: null,
      default_reason: null,
      repaid_at: null,
      outstanding_principal: '0.00',
      total_repaid: '0.00',
      next_due_date: null,
      days_past_due: 0,
    });
    expect(response.headers.location).toBe(`/api/loans/${loan.id}`);
    expect(response.headers.etag).toMatch(/^"[^"]+"$/);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');

    const fetched = await t.app.inject({ url: `/api/loans/${loan.id}` });
    expect(fetched.json()).toEqual(loan);
    expect(fetched.headers.etag).toBe(response.headers.etag);
  });

  it.each([
    ['a JSON number amount', { amount: 15000.5 }, '15000.50'],
    ['an amount with fewer digits than the currency', { amount: '250.5' }, '250.50'],
    ['an amount at the maximum', { amount: '50000' }, '50000.00'],
    ['a VND amount with no minor unit', { amount: 8400, currency: 'VND' }, '8400'],
    ['a configured per-currency maximum', { amount: '1000000000', currency: 'VND' }, '1000000000'],
    ['a KWD amount with three decimals', { amount: '150.125', currency: 'KWD' }, '150.125'],
    ['a lower-case currency', { amount: '10.00', currency: 'kes' }, '10.00'],
  ])('accepts %s', async (_name, override, expectedAmount) => {
    const response = await create({ ...valid, ...override });
    expect(response.statusCode).toBe(201);
    expect(response.json().amount).toBe(expectedAmount);
    expect(response.json().currency).toBe(
      String((override as { currency?: string }).currency ?? 'INR').toUpperCase(),
    );
  });

  it.each([
    [0, '18.50'],
    ['0', '0.00'],
    [100, '100.00'],
    ['7.5', '7.50'],
  ])('stores interest_rate_apr %j as %s', async (apr, expected) => {
    const response = await create({ ...valid, interest_rate_apr: apr });
    expect(response.statusCode).toBe(201);
    expect(response.json().interest_rate_apr).toBe(apr === 0 ? '0.00' : expected);
  });

  it.each([
    ['amount 0', { amount: 0 }, '/amount', 'must be greater than 0'],
    ['amount "0.00"', { amount: '0.00' }, '/amount', 'must be greater than 0'],
    ['a negative amount', { amount: -5 }, '/amount', expect.stringContaining('no sign')],
    ['an amount over the maximum', { amount: '50000.01' }, '/amount', 'must not exceed 50000.00 INR'],
    ['too many INR decimals', { amount: '10.001' }, '/amount', 'must have at most 2 decimal places for INR'],
    [
      'decimals for VND',
      { amount: '10.5', currency: 'VND' },
      '/amount',
      'must be a whole number: VND has no minor unit',
    ],
    ['an exponent', { amount: '1e3' }, '/amount', expect.stringContaining('no sign, exponent')],
    ['a JSON number with an exponent', { amount: 1e21 }, '/amount', expect.stringContaining('exponent')],
    ['whitespace', { amount: ' 10.00' }, '/amount', expect.stringContaining('spaces')],
    ['a boolean amount', { amount: true }, '/amount', expect.stringContaining('decimal')],
    ['a numeric currency', { currency: '123' }, '/currency', expect.stringContaining('ISO 4217')],
    [
      'an unknown currency',
      { currency: 'ABC' },
      '/currency',
      'must be an active ISO 4217 currency code (got "ABC")',
    ],
    [
      'a non-money currency',
      { currency: 'XAU' },
      '/currency',
      'must be an active ISO 4217 currency code (got "XAU")',
    ],
    ['term 0', { term_months: 0 }, '/term_months', 'must be greater than or equal to 1'],
    ['term 361', { term_months: 361 }, '/term_months', 'must be less than or equal to 360'],
    ['a fractional term', { term_months: 1.5 }, '/term_months', 'must be an integer'],
    ['a string term', { term_months: '12' }, '/term_months', 'must be an integer'],
    [
      'apr over 100',
      { interest_rate_apr: '100.01' },
      '/interest_rate_apr',
      'must be less than or equal to 100',
    ],
    [
      'apr with 3 decimals',
      { interest_rate_apr: '18.505' },
      '/interest_rate_apr',
      'must have at most 2 decimal places',
    ],
    ['a negative apr', { interest_rate_apr: -1 }, '/interest_rate_apr', expect.stringContaining('decimal')],
    ['an empty borrower_id', { borrower_id: '' }, '/borrower_id', expect.stringContaining('1–64')],
    [
      'a 65-character borrower_id',
      { borrower_id: 'x'.repeat(65) },
      '/borrower_id',
      expect.stringContaining('1–64'),
    ],
    ['a borrower_id with a space', { borrower_id: 'a b' }, '/borrower_id', expect.stringContaining('1–64')],
    ['a typo in a field name', { amout: '1' }, '/amout', 'is not a recognised field'],
    ['a client-chosen status', { status: 'approved' }, '/status', 'is not a recognised field'],
    [
      'a client-chosen id',
      { id: '00000000-0000-0000-0000-000000000099' },
      '/id',
      'is not a recognised field',
    ],
  ])('rejects %s with 400 and changes nothing', async (_name, override, pointer, message) => {
    const before = await loanCount();
    const response = await create({ ...valid, ...override });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    const problem = response.json();
    expect(problem).toMatchObject({
      type: 'https://branchloans.com/problems/validation-error',
      title: 'Request validation failed',
      status: 400,
      instance: '/api/loans',
      request_id: response.headers['x-request-id'],
    });
    expect(problem.errors).toContainEqual({ pointer, message });
    expect(problem.detail).toContain(pointer.slice(1));
    expect(await loanCount()).toBe(before);
  });

  it.each([
    ['amount 100.100', '100.100', 'INR', '18.50', '/amount', 'must have at most 2 decimal places for INR'],
    ['apr 18.500', '100.10', 'INR', '18.500', '/interest_rate_apr', 'must have at most 2 decimal places'],
    ['a JPY amount 1000.0', '1000.0', 'JPY', '18.50', '/amount', expect.stringContaining('JPY')],
  ])(
    'judges a JSON number by the digits sent, as a string: rejects %s',
    async (_name, amount, currency, apr, pointer, message) => {
      const before = await loanCount();
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/loans',
        headers: JSON_HEADERS,
        payload: `{"borrower_id":"n","amount":${amount},"currency":"${currency}","term_months":12,"interest_rate_apr":${apr}}`,
      });
      expect(response.statusCode).toBe(400);
      expect(response.json().errors).toContainEqual({ pointer, message });
      expect(await loanCount()).toBe(before);
    },
  );

  it('accepts a JSON number with as many fraction digits as the currency has', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: JSON_HEADERS,
      payload:
        '{"borrower_id":"n","amount":100.10,"currency":"INR","term_months":12,"interest_rate_apr":18.50}',
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({ amount: '100.10', interest_rate_apr: '18.50' });
  });

  it('names every missing field', async () => {
    const response = await create({});
    expect(response.statusCode).toBe(400);
    expect(
      response
        .json()
        .errors.map((e: { pointer: string }) => e.pointer)
        .sort(),
    ).toEqual(['/amount', '/borrower_id', '/currency', '/interest_rate_apr', '/term_months']);
  });

  it('says "amount must be greater than 0" exactly as the contract shows', async () => {
    const problem = (await create({ ...valid, amount: 0 })).json();
    expect(problem.detail).toBe('amount must be greater than 0');
    expect(problem.errors).toEqual([{ pointer: '/amount', message: 'must be greater than 0' }]);
  });

  it('rejects a JSON array body', async () => {
    const response = await create([valid]);
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([
      { pointer: '', message: 'the request body must be a JSON object' },
    ]);
  });
});
