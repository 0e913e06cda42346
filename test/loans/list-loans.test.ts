import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

let t: TestApp;
const ids: string[] = []; // oldest first

// 30 loans, one millisecond-distinct timestamp each, plus two that share a timestamp (id breaks the tie).
beforeAll(async () => {
  t = await buildTestApp();
  const result = await t.pool.query<{ id: string }>(
    `INSERT INTO loans (id, borrower_id, currency, amount_minor, term_months, interest_rate_apr, status, created_at,
                        disbursed_on)
     SELECT ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid,
            'usr_' || (n % 3),
            (ARRAY['INR','KES','VND'])[1 + n % 3],
            1000 + n, 12, 10.00,
            (ARRAY['pending','approved','rejected','disbursed','repaid','defaulted'])[1 + n % 6],
            timestamptz '2026-01-01T00:00:00Z' + LEAST(n, 30) * interval '1 hour',
            CASE WHEN n % 6 IN (3, 4, 5) THEN date '2026-01-02' END
       FROM generate_series(1, 31) AS n
     ORDER BY n
     RETURNING id`,
  );
  ids.push(...result.rows.map((row) => row.id));
});
afterAll(() => t.close());

const newestFirst = () =>
  [...ids].sort((a, b) => {
    const hour = (id: string) => Math.min(Number(id.slice(-12)), 30);
    return hour(b) - hour(a) || b.localeCompare(a);
  });

async function get(url: string) {
  return t.app.inject({ method: 'GET', url });
}

function nextLink(header: string | string[] | undefined): string | undefined {
  const match = /^<([^>]+)>; rel="next"$/.exec(String(header ?? ''));
  return match?.[1];
}

describe('GET /api/loans', () => {
  it('returns a JSON array, newest first, 50 at most by default', async () => {
    const response = await get('/api/loans');
    expect(response.statusCode).toBe(200);
    expect(response.json().map((loan: { id: string }) => loan.id)).toEqual(newestFirst());
    expect(response.headers.link).toBeUndefined();
  });

  it('breaks created_at ties by id descending', async () => {
    const page = (await get('/api/loans?limit=2')).json();
    expect(page.map((loan: { id: string }) => loan.id)).toEqual([
      '00000000-0000-0000-0000-000000000031',
      '00000000-0000-0000-0000-000000000030',
    ]);
    expect(page[0].created_at).toBe(page[1].created_at);
  });

  it('walks every loan exactly once through the Link header', async () => {
    const seen: string[] = [];
    let url: string | undefined = '/api/loans?limit=7';
    let pages = 0;
    while (url) {
      const response = await get(url);
      expect(response.statusCode).toBe(200);
      seen.push(...response.json().map((loan: { id: string }) => loan.id));
      url = nextLink(response.headers.link);
      if (url) expect(url).toMatch(/^\/api\/loans\?limit=7&cursor=[A-Za-z0-9_-]+$/);
      pages++;
    }
    expect(pages).toBe(5);
    expect(seen).toEqual(newestFirst());
  });

  it('keeps pages stable when loans are created between them', async () => {
    const first = await get('/api/loans?limit=5');
    await t.pool.query(
      `INSERT INTO loans (borrower_id, currency, amount_minor, term_months, interest_rate_apr)
       VALUES ('usr_new', 'INR', 100, 1, 0)`,
    );
    const second = await get(nextLink(first.headers.link)!);
    expect(second.json().map((loan: { id: string }) => loan.id)).toEqual(newestFirst().slice(5, 10));
    await t.pool.query(`DELETE FROM loans WHERE borrower_id = 'usr_new'`);
  });

  it('keeps filters in the next link', async () => {
    const response = await get('/api/loans?status=pending&limit=2');
    const link = nextLink(response.headers.link)!;
    expect(new URL(link, 'http://localhost').searchParams.get('status')).toBe('pending');
    const all = (await get('/api/loans?status=pending')).json();
    const second = (await get(link)).json();
    expect(second).toEqual(all.slice(2, 4));
  });

  it.each([
    ['status=pending', (n: number) => n % 6 === 0],
    ['currency=vnd', (n: number) => n % 3 === 2],
    ['borrower_id=usr_1', (n: number) => n % 3 === 1],
    ['created_after=2026-01-02T04:00:00Z', (n: number) => Math.min(n, 30) > 28],
    ['created_before=2026-01-01T03:00:00.000Z', (n: number) => n < 3],
    // 2026-01-01T19:00:00Z: an offset past ±15:59 is RFC 3339 too.
    ['created_before=2026-01-01T03:00:00-16:00', (n: number) => n < 19],
    // 2026-01-01T04:00:59.999Z, more fraction digits than a millisecond
    ['created_after=2026-01-02T03:59:59.9999999%2B23:59', (n: number) => n > 4],
    ['status=approved&currency=KES', (n: number) => n % 6 === 1 && n % 3 === 1],
  ])('filters by %s', async (query, keep) => {
    const response = await get(`/api/loans?${query}`);
    expect(response.statusCode).toBe(200);
    const expected = newestFirst().filter((id) => keep(Number(id.slice(-12))));
    expect(response.json().map((loan: { id: string }) => loan.id)).toEqual(expected);
  });

  it('treats /api/loans/ like /api/loans', async () => {
    const response = await get('/api/loans/?limit=3');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toHaveLength(3);
  });

  it.each([
    ['limit=0', 'limit', 'must be greater than or equal to 1'],
    ['limit=201', 'limit', 'must be less than or equal to 200'],
    ['limit=abc', 'limit', 'must be an integer'],
    ['limit=1.5', 'limit', 'must be an integer'],
    ['status=open', 'status', expect.stringContaining('must be one of: pending, approved')],
    ['currency=ABC', 'currency', 'must be an active ISO 4217 currency code (got "ABC")'],
    ['currency=12', 'currency', expect.stringContaining('ISO 4217')],
    [
      'created_after=yesterday',
      'created_after',
      'must be an RFC 3339 timestamp from 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z',
    ],
    ...['2026-01-01T00:00:00%2B0530', '2026-01-01%2000:00:00Z', '2026-01-01T00:00Z'].map(
      (value): [string, string, string] => [
        `created_after=${value}`,
        'created_after',
        'must be an RFC 3339 timestamp from 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z',
      ],
    ),
    ['cursor=garbage', 'cursor', 'is not a cursor this API issued; follow the Link header'],
    ['page=2', 'page', 'is not a supported query parameter'],
    ['borrower_id=a%20b', 'borrower_id', expect.stringContaining('1–64')],
  ])('rejects ?%s with 400 naming the parameter', async (query, parameter, message) => {
    const response = await get(`/api/loans?${query}`);
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(response.json()).toMatchObject({
      type: 'https://branchloans.com/problems/validation-error',
      status: 400,
      errors: [{ parameter, message }],
    });
  });

  it('reads a page through an index range scan, never a sort of the whole table', async () => {
    const client = await t.pool.connect();
    try {
      // On a tiny table the planner may prefer a sort; with sorts and non-ordered scans priced out, a plan
      // without a Sort proves an index delivers the keyset order (the benchmark shows it at 1M rows).
      await client.query('SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off');
      for (const where of [
        '',
        "WHERE status = 'pending'",
        "WHERE currency = 'INR'",
        "WHERE borrower_id = 'usr_1'",
      ]) {
        const plan = await client.query(
          `EXPLAIN SELECT id FROM loans ${where} ${where ? 'AND' : 'WHERE'}
             (created_at, id) < ('2026-06-01T00:00:00Z'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid)
           ORDER BY created_at DESC, id DESC LIMIT 51`,
        );
        const text = plan.rows.map((row) => row['QUERY PLAN']).join('\n');
        expect(text).toMatch(/Index (Only )?Scan Backward/);
        expect(text).not.toMatch(/\bSort\b/);
      }
    } finally {
      client.release();
    }
  });
});

describe('GET /api/loans/{id}', () => {
  it('returns the loan with an ETag', async () => {
    const response = await get(`/api/loans/${ids[0]}`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      id: ids[0],
      amount: '10.01',
      currency: 'KES',
      borrower_id: 'usr_1',
    });
    expect(response.headers.etag).toMatch(/^"[^"]+"$/);
  });

  it('accepts an upper-case UUID', async () => {
    const response = await get(`/api/loans/${ids[0]!.toUpperCase()}`);
    expect(response.statusCode).toBe(200);
    expect(response.json().id).toBe(ids[0]);
  });

  it('changes the ETag when the loan changes', async () => {
    const before = (await get(`/api/loans/${ids[1]}`)).headers.etag;
    await t.pool.query('UPDATE loans SET borrower_id = borrower_id WHERE id = $1', [ids[1]]);
    const after = await get(`/api/loans/${ids[1]}`);
    expect(after.headers.etag).not.toBe(before);
    expect(after.json().updated_at >= after.json().created_at).toBe(true);
  });

  it('answers 404 problem+json for an unknown id', async () => {
    const response = await get('/api/loans/7d8e5a1c-0000-4000-8000-000000000000');
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({
      type: 'https://branchloans.com/problems/not-found',
      title: 'Resource not found',
      status: 404,
      detail: 'Loan 7d8e5a1c-0000-4000-8000-000000000000 does not exist',
      instance: '/api/loans/7d8e5a1c-0000-4000-8000-000000000000',
    });
  });

  it('answers 400 for an id that is not a UUID', async () => {
    const response = await get('/api/loans/42');
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([{ parameter: 'id', message: 'must be a UUID' }]);
  });
});
