// API keys and roles (API.md §6), through the HTTP API on a real database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, insertKey, type Role } from '../../src/platform/api-keys.ts';
import { prepareAuthentication } from '../../src/platform/auth.ts';
import { buildTestApp, JSON_HEADERS, type TestApp, testConfig } from '../helpers/app.ts';
import { newKey, TERMS } from '../helpers/loans.ts';
import { sleep } from '../helpers/process.ts';

let t: TestApp;
const keys = {} as Record<Role, { id: string; secret: string }>;

async function addKey(app: TestApp, role: Role, name: string = role) {
  const secret = generateKey('test');
  const key = (await insertKey(app.pool, secret, { name, role }))!;
  return { id: key.id, secret };
}

beforeAll(async () => {
  t = await buildTestApp({ AUTH_REQUIRED: 'true' });
  for (const role of ['viewer', 'clerk', 'officer', 'admin'] as const) keys[role] = await addKey(t, role);
});
afterAll(() => t.close());

const bearer = (role: Role) => ({ authorization: `Bearer ${keys[role].secret}` });
const call = (method: 'GET' | 'POST', url: string, headers: Record<string, string> = {}, body?: unknown) =>
  t.app.inject({
    method,
    url,
    headers: body === undefined ? headers : { ...JSON_HEADERS, ...headers },
    payload: body === undefined ? undefined : JSON.stringify(body),
  });
const createAs = async (role: Role) => {
  const response = await call('POST', '/api/loans', bearer(role), TERMS);
  expect(response.statusCode, response.body).toBe(201);
  return response.json().id as string;
};
const rowCounts = async () =>
  (
    await t.pool.query<{ n: string }>(
      'SELECT (SELECT count(*) FROM loans) + (SELECT count(*) FROM loan_events) + (SELECT count(*) FROM idempotency_keys) AS n',
    )
  ).rows[0]!.n;

function expect401(response: Awaited<ReturnType<typeof call>>) {
  expect(response.statusCode).toBe(401);
  expect(response.headers['www-authenticate']).toBe('Bearer');
  expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  expect(response.json().type).toBe('https://branchloans.com/problems/unauthorized');
}

describe('authentication', () => {
  it('refuses a request without a key with 401 and WWW-Authenticate: Bearer', async () => {
    expect401(await call('GET', '/api/loans'));
    expect401(await call('POST', '/api/loans', {}, TERMS));
  });

  it.each([
    ['a malformed key', 'Bearer not-a-key'],
    ['an unknown key', `Bearer ${generateKey('test')}`],
    ['an empty bearer', 'Bearer '],
    ['another scheme', 'Basic dXNlcjpwYXNz'],
  ])('refuses %s with 401', async (_what, authorization) => {
    expect401(await call('GET', '/api/loans', { authorization }));
  });

  it('takes the key from Authorization: Bearer or X-API-Key', async () => {
    expect((await call('GET', '/api/loans', bearer('viewer'))).statusCode).toBe(200);
    expect((await call('GET', '/api/loans', { 'x-api-key': keys.viewer.secret })).statusCode).toBe(200);
  });

  it('refuses an expired key', async () => {
    const expired = await addKey(t, 'admin', 'expired');
    await t.pool.query(
      `UPDATE api_keys SET created_at = now() - interval '2 days', expires_at = now() - interval '1 day' WHERE id = $1`,
      [expired.id],
    );
    expect401(await call('GET', '/api/loans', { authorization: `Bearer ${expired.secret}` }));
  });

  it('refuses a revoked key within 5 seconds, even one it has just verified', async () => {
    const revoked = await addKey(t, 'viewer', 'to revoke');
    const headers = { authorization: `Bearer ${revoked.secret}` };
    expect((await call('GET', '/api/loans', headers)).statusCode).toBe(200);
    await t.pool.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [revoked.id]);
    const started = performance.now();
    while ((await call('GET', '/api/loans', headers)).statusCode === 200) {
      expect(performance.now() - started).toBeLessThan(5500);
      await sleep(250);
    }
    expect401(await call('GET', '/api/loans', headers));
  });

  it('leaves the probes and the documentation open', async () => {
    for (const url of ['/health', '/liveness', '/readiness', '/openapi.json', '/metrics']) {
      expect((await call('GET', url)).statusCode, url).toBe(200);
    }
  });

  it('records when a key was used', async () => {
    const used = await addKey(t, 'viewer', 'used');
    await call('GET', '/api/loans', { authorization: `Bearer ${used.secret}` });
    await expect
      .poll(
        async () =>
          (await t.pool.query('SELECT last_used_at FROM api_keys WHERE id = $1', [used.id])).rows[0]
            .last_used_at,
      )
      .toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});

describe('roles', () => {
  it('lets a viewer read and nothing else', async () => {
    const id = await createAs('clerk');
    for (const url of ['/api/loans', `/api/loans/${id}`, `/api/loans/${id}/events`, '/api/stats']) {
      expect((await call('GET', url, bearer('viewer'))).statusCode, url).toBe(200);
    }
    const before = await rowCounts();
    const refused = await call('POST', '/api/loans', bearer('viewer'), TERMS);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({
      type: 'https://branchloans.com/problems/forbidden',
      detail: 'This needs the clerk role; the API key has viewer',
    });
    expect(await rowCounts()).toBe(before);
  });

  it('lets a clerk create and record repayments, but not approve', async () => {
    const id = await createAs('clerk');
    expect((await call('POST', `/api/loans/${id}/approve`, bearer('clerk'))).statusCode).toBe(403);
    expect((await call('POST', `/api/loans/${id}/approve`, bearer('officer'))).statusCode).toBe(200);
    const disbursed = await call('POST', `/api/loans/${id}/disburse`, {
      ...bearer('officer'),
      'idempotency-key': newKey(),
    });
    expect(disbursed.statusCode).toBe(200);
    const paid = await call(
      'POST',
      `/api/loans/${id}/repayments`,
      { ...bearer('clerk'), 'idempotency-key': newKey() },
      {
        amount: '10.00',
      },
    );
    expect(paid.statusCode).toBe(201);
  });

  it('lets an admin act on a loan another key created', async () => {
    const id = await createAs('officer');
    expect(
      (await call('POST', `/api/loans/${id}/reject`, bearer('admin'), { reason: 'policy' })).statusCode,
    ).toBe(200);
  });
});

describe('maker–checker', () => {
  it.each(['approve', 'reject', 'disburse'])(
    'refuses %s by the key that created the loan, changing nothing',
    async (action) => {
      const id = await createAs('officer');
      if (action === 'disburse') {
        expect((await call('POST', `/api/loans/${id}/approve`, bearer('admin'))).statusCode).toBe(200);
      }
      const before = await rowCounts();
      const refused = await call(
        'POST',
        `/api/loans/${id}/${action}`,
        { ...bearer('officer'), 'idempotency-key': newKey() },
        action === 'reject' ? { reason: 'mine' } : {},
      );
      expect(refused.statusCode).toBe(403);
      expect(refused.json().detail).toBe(
        `Maker–checker: the API key that created this loan cannot ${action} it; another key must`,
      );
      expect(await rowCounts()).toBe(before);
    },
  );
});

describe('the caller in the record', () => {
  it('is the key id: in events, in the request log and as the idempotency scope', async () => {
    const id = await createAs('clerk');
    await call('POST', `/api/loans/${id}/approve`, bearer('officer'));
    const events = (await call('GET', `/api/loans/${id}/events`, bearer('viewer'))).json();
    expect(events.map((event: { actor: string }) => event.actor)).toEqual([keys.clerk.id, keys.officer.id]);
    expect(t.logs.filter((line) => line.msg === 'request completed').at(-1)).toMatchObject({
      actor: keys.viewer.id,
    });
    expect(JSON.stringify(t.logs)).not.toContain(keys.viewer.secret);

    // One Idempotency-Key used by two keys: two requests, two loans.
    const key = newKey();
    const first = await call('POST', '/api/loans', { ...bearer('clerk'), 'idempotency-key': key }, TERMS);
    const second = await call('POST', '/api/loans', { ...bearer('admin'), 'idempotency-key': key }, TERMS);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    expect(second.json().id).not.toBe(first.json().id);
  });
});

describe('with authentication off (development)', () => {
  it('serves requests without a key as anonymous, and still checks a key that is sent', async () => {
    const open = await buildTestApp({ AUTH_REQUIRED: 'false' });
    try {
      const created = await open.app.inject({
        method: 'POST',
        url: '/api/loans',
        headers: JSON_HEADERS,
        payload: TERMS,
      });
      expect(created.statusCode).toBe(201);
      const approved = await open.app.inject({
        method: 'POST',
        url: `/api/loans/${created.json().id}/approve`,
      });
      expect(approved.statusCode).toBe(200);
      const bad = await open.app.inject({
        url: '/api/loans',
        headers: { authorization: `Bearer ${generateKey('test')}` },
      });
      expect(bad.statusCode).toBe(401);
      const viewer = await addKey(open, 'viewer');
      const refused = await open.app.inject({
        method: 'POST',
        url: '/api/loans',
        headers: { ...JSON_HEADERS, 'x-api-key': viewer.secret },
        payload: TERMS,
      });
      expect(refused.statusCode).toBe(403);
    } finally {
      await open.close();
    }
  });
});

describe('prepareAuthentication', () => {
  it('refuses to go on when authentication is required and no key exists', async () => {
    const empty = await buildTestApp();
    try {
      const config = testConfig({ AUTH_REQUIRED: 'true' });
      await expect(prepareAuthentication(empty.pool, config)).rejects.toThrow(
        /^authentication is required and no active API key exists: set BOOTSTRAP_ADMIN_KEY_FILE/,
      );
    } finally {
      await empty.close();
    }
  });

  it('registers the bootstrap key as an admin once, however often it starts', async () => {
    const fresh = await buildTestApp();
    try {
      const bootstrap = generateKey('test');
      const config = testConfig({ AUTH_REQUIRED: 'true', BOOTSTRAP_ADMIN_KEY: bootstrap });
      expect(await prepareAuthentication(fresh.pool, config)).toBeUndefined();
      expect(await prepareAuthentication(fresh.pool, config)).toBeUndefined();
      const rows = (await fresh.pool.query('SELECT name, role FROM api_keys')).rows;
      expect(rows).toEqual([{ name: 'bootstrap admin', role: 'admin' }]);
    } finally {
      await fresh.close();
    }
  });

  it('says loudly that the API is open when authentication is off', async () => {
    expect(await prepareAuthentication(t.pool, testConfig({}))).toBe(
      'AUTHENTICATION IS OFF (APP_ENV=test, AUTH_REQUIRED=false): requests without an API key have full access',
    );
  });
});
