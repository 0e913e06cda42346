// Inputs found from outside (fuzzer, raw requests) that once reached PostgreSQL and answered 500.
// Each must be a 400 problem naming the field, and must change nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, JSON_HEADERS, type TestApp } from '../helpers/app.ts';
import { loanIn, newKey } from '../helpers/loans.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

/** Rows of every table the API writes, as one checksum: a refused request must leave it as it was. */
async function snapshot(): Promise<string> {
  const result = await t.pool.query<{ digest: string }>(
    `SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) AS digest FROM (
       SELECT row_to_json(l)::text AS t FROM loans l
       UNION ALL SELECT row_to_json(e)::text FROM loan_events e
       UNION ALL SELECT row_to_json(r)::text FROM repayments r
       UNION ALL SELECT row_to_json(k)::text FROM idempotency_keys k) AS rows`,
  );
  return result.rows[0]!.digest;
}

/** Sends raw JSON text, so that escapes such as \u0000 and lone surrogates reach the parser as written. */
async function postRaw(url: string, json: string, headers: Record<string, string> = {}) {
  return t.app.inject({ method: 'POST', url, headers: { ...JSON_HEADERS, ...headers }, payload: json });
}

function expectFieldProblem(
  response: { statusCode: number; headers: Record<string, unknown>; json(): unknown },
  where: { pointer: string } | { parameter: string },
) {
  expect(response.statusCode, JSON.stringify(response.json())).toBe(400);
  expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  const problem = response.json() as { type: string; errors: unknown[] };
  expect(problem.type).toBe('https://branchloans.com/problems/validation-error');
  expect(problem.errors).toContainEqual(expect.objectContaining(where));
}

describe('free text that PostgreSQL cannot store', () => {
  const texts = [
    ['a NUL character', String.raw`"x\u0000"`],
    ['a lone high surrogate', String.raw`"\ud800"`],
    ['a lone low surrogate', String.raw`"ok \udfff"`],
  ] as const;

  for (const [what, literal] of texts) {
    it(`refuses ${what} in a reject reason, an approval note and a repayment reference`, async () => {
      const pending = await loanIn(t.app, 'pending');
      const disbursed = await loanIn(t.app, 'disbursed');
      const before = await snapshot();

      expectFieldProblem(await postRaw(`/api/loans/${pending}/reject`, `{"reason":${literal}}`), {
        pointer: '/reason',
      });
      expectFieldProblem(await postRaw(`/api/loans/${pending}/approve`, `{"note":${literal}}`), {
        pointer: '/note',
      });
      expectFieldProblem(await postRaw(`/api/loans/${disbursed}/default`, `{"reason":${literal}}`), {
        pointer: '/reason',
      });
      expectFieldProblem(
        await postRaw(`/api/loans/${disbursed}/repayments`, `{"amount":"1.00","reference":${literal}}`, {
          'idempotency-key': newKey(),
        }),
        { pointer: '/reference' },
      );
      expect(await snapshot()).toBe(before);
    });
  }

  it('still accepts text with characters outside the Basic Multilingual Plane and tabs', async () => {
    const pending = await loanIn(t.app, 'pending');
    const response = await postRaw(`/api/loans/${pending}/approve`, String.raw`{"note":"ok 👍\tfine"}`);
    expect(response.statusCode).toBe(200);
    expect(response.json().approval_note).toBe('ok 👍\tfine');
  });
});

describe('list filters and cursors', () => {
  const get = (url: string) => t.app.inject({ method: 'GET', url });

  for (const parameter of ['created_after', 'created_before']) {
    it(`refuses year 0000 in ${parameter}`, async () => {
      expectFieldProblem(await get(`/api/loans?${parameter}=0000-01-01T00:00:00.000Z`), { parameter });
    });
  }

  it('accepts the earliest and latest instants it documents', async () => {
    const response = await get(
      '/api/loans?created_after=0001-01-01T00:00:00.000Z&created_before=9999-12-31T23:59:59.999Z',
    );
    expect(response.statusCode).toBe(200);
  });

  it('refuses a forged cursor whose timestamp PostgreSQL cannot represent', async () => {
    const forged =
      'WyIrMjc1NzYwLTA5LTEzVDAwOjAwOjAwLjAwMFoiLCJjZDRiMTU4OS03OTIxLTQwOTYtOTZlYS0zOTdmNjViMjAxY2QiXQ';
    expectFieldProblem(await get(`/api/loans?cursor=${forged}`), { parameter: 'cursor' });
  });

  it('refuses cursors whose parts are not exactly what the API issues', async () => {
    const cursor = (parts: unknown) => Buffer.from(JSON.stringify(parts)).toString('base64url');
    const id = 'cd4b1589-7921-4096-96ea-397f65b201cd';
    for (const parts of [
      ['0000-01-01T00:00:00.000Z', id],
      ['2026-01-01T00:00:00Z', id],
      ['2026-01-01T00:00:00.000+00:00', id],
      ['2026-01-01T00:00:00.000Z', id.toUpperCase()],
      ['2026-01-01T00:00:00.000Z', id, 'extra'],
    ]) {
      expectFieldProblem(await get(`/api/loans?cursor=${cursor(parts)}`), { parameter: 'cursor' });
    }
  });

  it('takes limit only as a plain decimal integer', async () => {
    for (const limit of ['2e2', '0200', '%20200', '200.0', '+200', '0x10', '1,2']) {
      expectFieldProblem(await get(`/api/loans?limit=${limit}`), { parameter: 'limit' });
    }
    expect((await get('/api/loans?limit=200')).statusCode).toBe(200);
  });

  it('takes term_months of a quote only as a plain decimal integer', async () => {
    const quote = (term: string) =>
      get(`/api/loan-quote?amount=1000.00&currency=INR&interest_rate_apr=10&term_months=${term}`);
    expect((await quote('12')).statusCode).toBe(200);
    expectFieldProblem(await quote('1.2e1'), { parameter: 'term_months' });
  });
});

describe('links', () => {
  it('never builds the next link from the Host header', async () => {
    await loanIn(t.app, 'pending');
    await loanIn(t.app, 'pending');
    const response = await t.app.inject({
      method: 'GET',
      url: '/api/loans?limit=1',
      headers: { host: 'evil.example' },
    });
    expect(response.statusCode).toBe(200);
    const link = String(response.headers.link);
    expect(link).not.toContain('evil.example');
    expect(link).toMatch(/^<\/api\/loans\?limit=1&cursor=[A-Za-z0-9_-]+>; rel="next"$/);
  });

  it('builds absolute links from PUBLIC_BASE_URL when it is set', async () => {
    const other = await buildTestApp({ PUBLIC_BASE_URL: 'https://api.branchloans.com' });
    try {
      await loanIn(other.app, 'pending');
      await loanIn(other.app, 'pending');
      const response = await other.app.inject({
        method: 'GET',
        url: '/api/loans?limit=1&status=pending',
        headers: { host: 'evil.example' },
      });
      expect(String(response.headers.link)).toMatch(
        /^<https:\/\/api\.branchloans\.com\/api\/loans\?limit=1&status=pending&cursor=[A-Za-z0-9_-]+>; rel="next"$/,
      );
    } finally {
      await other.close();
    }
  });
});
