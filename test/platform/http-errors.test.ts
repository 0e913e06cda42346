import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, JSON_HEADERS, type TestApp } from '../helpers/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
  // A handler that fails like a bug would: the client must see none of this.
  t.app.get('/test/boom', async () => {
    throw new Error('relation "secret_table" does not exist at SELECT * FROM secret_table');
  });
});
afterAll(() => t.close());

const PROBLEM = 'application/problem+json; charset=utf-8';

describe('problem+json for every error', () => {
  it('answers 404 for an unknown route', async () => {
    const response = await t.app.inject({ url: '/api/nothing-here?x=1' });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json()).toEqual({
      type: 'https://branchloans.com/problems/not-found',
      title: 'Resource not found',
      status: 404,
      detail: 'No route matches GET /api/nothing-here',
      instance: '/api/nothing-here',
      request_id: response.headers['x-request-id'],
    });
  });

  it.each([
    ['DELETE', '/api/loans', 'GET, HEAD, POST'],
    ['PUT', '/api/loans/00000000-0000-0000-0000-000000000001', 'GET, HEAD'],
    ['POST', '/api/stats', 'GET, HEAD'],
    ['PATCH', '/api/loans/', 'GET, HEAD, POST'],
  ])('answers 405 with Allow for %s %s', async (method, url, allow) => {
    const response = await t.app.inject({ method: method as 'DELETE', url });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe(allow);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json()).toMatchObject({
      type: 'https://branchloans.com/problems/method-not-allowed',
      status: 405,
    });
  });

  it('answers 413 for a body over 64 KiB', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: JSON_HEADERS,
      payload: JSON.stringify({ borrower_id: 'x'.repeat(66 * 1024) }),
    });
    expect(response.statusCode).toBe(413);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json()).toMatchObject({
      type: 'https://branchloans.com/problems/payload-too-large',
      status: 413,
    });
  });

  it.each([
    ['GET', '/api/loans/6f1c4b7e-1111-4111-8111-111111111111?fields=id', 'fields'],
    ['GET', '/api/loans/6f1c4b7e-1111-4111-8111-111111111111/events?limit=1', 'limit'],
    ['POST', '/api/loans?dry_run=1', 'dry_run'],
  ])(
    'answers 400 to an unknown query parameter on %s %s, changing nothing',
    async (method, url, parameter) => {
      const before = await t.pool.query('SELECT count(*) FROM loans');
      const response = await t.app.inject({
        method: method as 'GET' | 'POST',
        url,
        headers: JSON_HEADERS,
        ...(method === 'POST'
          ? {
              payload: {
                borrower_id: 'b',
                amount: '1.00',
                currency: 'INR',
                term_months: 1,
                interest_rate_apr: '0',
              },
            }
          : {}),
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        type: 'https://branchloans.com/problems/validation-error',
        errors: [{ parameter, message: 'is not a supported query parameter' }],
      });
      expect((await t.pool.query('SELECT count(*) FROM loans')).rows).toEqual(before.rows);
    },
  );

  it('answers 404, not 405, for a missing file under a route that takes GET', async () => {
    const response = await t.app.inject({ url: '/docs/static/nope.js' });
    expect(response.statusCode).toBe(404);
    expect(response.headers.allow).toBeUndefined();
    expect(response.json()).toMatchObject({
      type: 'https://branchloans.com/problems/not-found',
      detail: 'No route matches GET /docs/static/nope.js',
    });
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])(
    'answers 415 for a %s body',
    async (contentType) => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/loans',
        headers: { 'content-type': contentType },
        payload: 'borrower_id=x',
      });
      expect(response.statusCode).toBe(415);
      expect(response.json()).toMatchObject({
        type: 'https://branchloans.com/problems/unsupported-media-type',
        status: 415,
      });
    },
  );

  it.each([
    ['malformed JSON', '{"borrower_id": '],
    ['trailing garbage', '{"a":1} x'],
    ['duplicate keys', '{"amount":"1","amount":"2"}'],
  ])('answers 400 invalid-json for %s', async (_name, payload) => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: JSON_HEADERS,
      payload,
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json()).toMatchObject({
      type: 'https://branchloans.com/problems/invalid-json',
      title: 'Request body is not valid JSON',
      status: 400,
    });
  });

  it('accepts application/json with a charset', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      payload: { borrower_id: 'b', amount: '1.00', currency: 'INR', term_months: 1, interest_rate_apr: '0' },
    });
    expect(response.statusCode).toBe(201);
  });

  it('hides internals of a 500 and logs the error once with its stack', async () => {
    const response = await t.app.inject({ url: '/test/boom', headers: { 'x-request-id': 'boom-1' } });
    expect(response.statusCode).toBe(500);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json()).toEqual({
      type: 'https://branchloans.com/problems/internal-error',
      title: 'Internal server error',
      status: 500,
      detail: 'An unexpected error occurred; quote the request_id when reporting it',
      instance: '/test/boom',
      request_id: 'boom-1',
    });
    expect(response.body).not.toContain('secret_table');
    const errorLogs = t.logs.filter((line) => line.request_id === 'boom-1' && line.level === 'error');
    expect(errorLogs).toHaveLength(1);
    expect(JSON.stringify(errorLogs[0])).toContain('secret_table');
  });
});

describe('X-Request-ID', () => {
  it('echoes a well-formed id on success and error, and logs it', async () => {
    for (const url of ['/api/loans', '/nope']) {
      const response = await t.app.inject({ url, headers: { 'x-request-id': 'abc.DEF_1:2-3' } });
      expect(response.headers['x-request-id']).toBe('abc.DEF_1:2-3');
    }
    const lines = t.logs.filter((line) => line.request_id === 'abc.DEF_1:2-3');
    expect(lines.map((line) => line.status)).toEqual([200, 404]);
    expect(lines[0]).toMatchObject({ method: 'GET', route: '/api/loans', msg: 'request completed' });
  });

  it.each([['has spaces'], ['x'.repeat(129)], ['semi;colon'], ['']])(
    'replaces a malformed id %j',
    async (id) => {
      const response = await t.app.inject({ url: '/liveness', headers: { 'x-request-id': id } });
      expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    },
  );

  it('generates one when absent', async () => {
    const a = await t.app.inject({ url: '/liveness' });
    const b = await t.app.inject({ url: '/liveness' });
    expect(a.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });
});
