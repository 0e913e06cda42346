import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeIdempotencyKeys } from '../../src/loans/idempotency.ts';
import { LOAN_JOBS } from '../../src/loans/jobs.ts';
import { buildTestApp, JSON_HEADERS, type TestApp, testConfig } from '../helpers/app.ts';
import { loanIn, newKey, post, TERMS } from '../helpers/loans.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ IDEMPOTENCY_WAIT_MS: '300' });
});
afterAll(() => t.close());

const count = async (sql: string, params: unknown[] = []) =>
  Number((await t.pool.query<{ n: string }>(sql, params)).rows[0]!.n);

describe('Idempotency-Key', () => {
  it('replays the stored response byte for byte and executes nothing twice', async () => {
    const key = newKey();
    const first = await post(t.app, '/api/loans', TERMS, { 'idempotency-key': key });
    const loans = await count('SELECT count(*) AS n FROM loans');
    const events = await count('SELECT count(*) AS n FROM loan_events');
    // Same request, other key order and spacing: the same JSON body.
    const again = await t.app.inject({
      method: 'POST',
      url: '/api/loans/',
      headers: { ...JSON_HEADERS, 'idempotency-key': key },
      payload: `{ "interest_rate_apr":"18.50", "term_months":12, "currency":"INR", "amount":"15000.00", "borrower_id":"usr_test" }`,
    });
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.rawPayload.equals(first.rawPayload)).toBe(true);
    expect(again.headers.location).toBe(first.headers.location);
    expect(again.headers.etag).toBe(first.headers.etag);
    expect(again.headers['content-type']).toBe(first.headers['content-type']);
    expect(await count('SELECT count(*) AS n FROM loans')).toBe(loans);
    expect(await count('SELECT count(*) AS n FROM loan_events')).toBe(events);
  });

  it('replays an approve with its original 200 even though the loan has moved on', async () => {
    const id = await loanIn(t.app, 'pending');
    const key = newKey();
    const first = await post(t.app, `/api/loans/${id}/approve`, undefined, { 'idempotency-key': key });
    await post(t.app, `/api/loans/${id}/disburse`, {}, { 'idempotency-key': newKey() });
    const replay = await post(t.app, `/api/loans/${id}/approve`, undefined, { 'idempotency-key': key });
    expect(first.statusCode).toBe(200);
    expect(replay.statusCode).toBe(200);
    expect(replay.body).toBe(first.body);
    expect(replay.json().status).toBe('approved');
  });

  it('stores a deterministic client error and replays it', async () => {
    const id = await loanIn(t.app, 'rejected');
    const key = newKey();
    const first = await post(t.app, `/api/loans/${id}/approve`, {}, { 'idempotency-key': key });
    const replay = await post(t.app, `/api/loans/${id}/approve`, {}, { 'idempotency-key': key });
    expect(first.statusCode).toBe(409);
    expect(replay.statusCode).toBe(409);
    expect(replay.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toBe(first.body);
  });

  it.each([
    ['another body', '/api/loans', { ...TERMS, amount: '15000.01' }],
    ['another path', '/api/loans/00000000-0000-0000-0000-000000000001/approve', {}],
  ])('refuses the same key with %s (422) and changes nothing', async (_name, url, body) => {
    const key = newKey();
    await post(t.app, '/api/loans', TERMS, { 'idempotency-key': key });
    const loans = await count('SELECT count(*) AS n FROM loans');
    const response = await post(t.app, url, body, { 'idempotency-key': key });
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({
      type: 'https://branchloans.com/problems/idempotency-key-reused',
      status: 422,
    });
    expect(await count('SELECT count(*) AS n FROM loans')).toBe(loans);
  });

  it('answers 409 with Retry-After while the first request with the key is still running', async () => {
    const key = newKey();
    const holder = new pg.Client({ connectionString: t.db.url });
    await holder.connect();
    try {
      // Stand in for a first request still in flight: hold the key's lock in an open transaction.
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        JSON.stringify(['anonymous', key]),
      ]);
      const loans = await count('SELECT count(*) AS n FROM loans');
      const response = await post(t.app, '/api/loans', TERMS, { 'idempotency-key': key });
      expect(response.statusCode).toBe(409);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.json()).toMatchObject({
        type: 'https://branchloans.com/problems/idempotency-request-in-progress',
      });
      expect(await count('SELECT count(*) AS n FROM loans')).toBe(loans);
      await holder.query('ROLLBACK');
      const retry = await post(t.app, '/api/loans', TERMS, { 'idempotency-key': key });
      expect(retry.statusCode).toBe(201);
    } finally {
      await holder.end();
    }
  });

  it('with IDEMPOTENCY_WAIT_MS=0 answers 409 at once instead of waiting for the statement timeout', async () => {
    const zeroWait = await buildTestApp({ IDEMPOTENCY_WAIT_MS: '0', DATABASE_STATEMENT_TIMEOUT_MS: '3000' });
    const key = newKey();
    const holder = new pg.Client({ connectionString: zeroWait.db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        JSON.stringify(['anonymous', key]),
      ]);
      const started = performance.now();
      const response = await post(zeroWait.app, '/api/loans', TERMS, { 'idempotency-key': key });
      expect(response.statusCode, response.body).toBe(409);
      expect(response.json()).toMatchObject({
        type: 'https://branchloans.com/problems/idempotency-request-in-progress',
      });
      // Far below the 3 s statement timeout that a lock_timeout of 0 ("no limit") would have waited for.
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      await holder.end();
      await zeroWait.close();
    }
  });

  it('leaves no key, change or event behind when the work fails half-way, so a retry executes', async () => {
    const id = await loanIn(t.app, 'approved');
    const key = newKey();
    // Inject a failure after the conditional update: writing the disbursement event fails.
    await t.pool.query(`
      CREATE FUNCTION fail_disbursed_event() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.type = 'disbursed' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER fail_disbursed_event BEFORE INSERT ON loan_events FOR EACH ROW EXECUTE FUNCTION fail_disbursed_event();
    `);
    const events = await count('SELECT count(*) AS n FROM loan_events WHERE loan_id = $1', [id]);
    const failed = await post(t.app, `/api/loans/${id}/disburse`, {}, { 'idempotency-key': key });
    await t.pool.query(
      'DROP TRIGGER fail_disbursed_event ON loan_events; DROP FUNCTION fail_disbursed_event();',
    );

    expect(failed.statusCode).toBe(500);
    expect(failed.body).not.toContain('injected');
    const loan = (await t.app.inject({ url: `/api/loans/${id}` })).json();
    expect(loan).toMatchObject({ status: 'approved', disbursed_on: null, outstanding_principal: '0.00' });
    expect(await count('SELECT count(*) AS n FROM loan_events WHERE loan_id = $1', [id])).toBe(events);
    expect(await count('SELECT count(*) AS n FROM idempotency_keys WHERE key = $1', [key])).toBe(0);

    const retry = await post(t.app, `/api/loans/${id}/disburse`, {}, { 'idempotency-key': key });
    expect(retry.statusCode).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(retry.json().status).toBe('disbursed');
  });

  it('keeps keys for the configured time, then purges them', async () => {
    const key = newKey();
    await post(t.app, '/api/loans', TERMS, { 'idempotency-key': key });
    await t.pool.query(
      `UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = $1`,
      [key],
    );
    const fresh = newKey();
    await post(t.app, '/api/loans', TERMS, { 'idempotency-key': fresh });
    expect(await purgeIdempotencyKeys(t.pool, 24)).toBeGreaterThanOrEqual(1);
    expect(await count('SELECT count(*) AS n FROM idempotency_keys WHERE key = $1', [key])).toBe(0);
    expect(await count('SELECT count(*) AS n FROM idempotency_keys WHERE key = $1', [fresh])).toBe(1);
  });

  it('the scheduled purge keeps keys for IDEMPOTENCY_TTL_HOURS', async () => {
    const [young, old] = [newKey(), newKey()];
    for (const key of [young, old]) await post(t.app, '/api/loans', TERMS, { 'idempotency-key': key });
    const age = (key: string, hours: number) =>
      t.pool.query(
        `UPDATE idempotency_keys SET created_at = now() - make_interval(hours => $2) WHERE key = $1`,
        [key, hours],
      );
    await age(young, 47);
    await age(old, 49);
    const purge = LOAN_JOBS['purge-idempotency-keys'];
    expect(await purge.run({ pool: t.pool, config: testConfig({ IDEMPOTENCY_TTL_HOURS: '48' }) })).toBe(1);
    expect(await count('SELECT count(*) AS n FROM idempotency_keys WHERE key = $1', [young])).toBe(1);
    expect(await count('SELECT count(*) AS n FROM idempotency_keys WHERE key = $1', [old])).toBe(0);
  });
});

describe('If-Match', () => {
  it('acts on the current ETag and refuses a stale one with 412, changing nothing', async () => {
    const id = await loanIn(t.app, 'pending');
    const stale = (await t.app.inject({ url: `/api/loans/${id}` })).headers.etag as string;
    await post(t.app, '/api/loans', TERMS); // unrelated change
    await t.pool.query(`UPDATE loans SET borrower_id = 'usr_changed' WHERE id = $1`, [id]);
    const current = (await t.app.inject({ url: `/api/loans/${id}` })).headers.etag as string;
    expect(current).not.toBe(stale);

    const refused = await post(t.app, `/api/loans/${id}/approve`, {}, { 'if-match': stale });
    expect(refused.statusCode).toBe(412);
    expect(refused.json()).toMatchObject({
      type: 'https://branchloans.com/problems/precondition-failed',
      status: 412,
    });
    expect(refused.headers.etag).toBe(current);
    expect((await t.app.inject({ url: `/api/loans/${id}` })).json().status).toBe('pending');

    const accepted = await post(t.app, `/api/loans/${id}/approve`, {}, { 'if-match': current });
    expect(accepted.statusCode).toBe(200);
    expect(accepted.headers.etag).not.toBe(current);
  });

  it('accepts * and lists of tags', async () => {
    const a = await loanIn(t.app, 'pending');
    expect((await post(t.app, `/api/loans/${a}/approve`, {}, { 'if-match': '*' })).statusCode).toBe(200);
    const b = await loanIn(t.app, 'pending');
    const etag = (await t.app.inject({ url: `/api/loans/${b}` })).headers.etag as string;
    expect(
      (await post(t.app, `/api/loans/${b}/reject`, { reason: 'x' }, { 'if-match': `"nope", ${etag}` }))
        .statusCode,
    ).toBe(200);
  });

  it('matches only the ETag exactly as the API wrote it; a decision with any other refuses with 412 and changes nothing', async () => {
    const id = await loanIn(t.app, 'pending');
    const other = await loanIn(t.app, 'pending');
    const etag = (await t.app.inject({ url: `/api/loans/${id}` })).headers.etag as string;
    const [, prefix, version] = /^"(.{8})-v(\d+)"$/.exec(etag)!;
    const otherEtag = (await t.app.inject({ url: `/api/loans/${other}` })).headers.etag as string;
    for (const ifMatch of [
      otherEtag,
      `W/${etag}`,
      etag.toUpperCase(),
      `"${prefix}-v0${version}"`,
      `"${prefix}-v${Number(version) + 1}"`,
      `"${prefix}-v99999999999999999999"`,
      `"${prefix}-v2147483648"`,
      '"nope"',
      '',
    ]) {
      const refused = await post(t.app, `/api/loans/${id}/approve`, {}, { 'if-match': ifMatch });
      expect([ifMatch, refused.statusCode, refused.headers.etag]).toEqual([ifMatch, 412, etag]);
    }
    const events = (await t.app.inject({ url: `/api/loans/${id}/events` })).json();
    expect(events.map((event: { type: string }) => event.type)).toEqual(['created']);
    expect((await post(t.app, `/api/loans/${id}/approve`, {}, { 'if-match': etag })).statusCode).toBe(200);
  });

  it('applies to repayments', async () => {
    const id = await loanIn(t.app, 'disbursed');
    const response = await post(
      t.app,
      `/api/loans/${id}/repayments`,
      { amount: '10.00' },
      {
        'idempotency-key': newKey(),
        'if-match': '"00000000-v1"',
      },
    );
    expect(response.statusCode).toBe(412);
    expect((await t.app.inject({ url: `/api/loans/${id}/repayments` })).json()).toEqual([]);
  });
});
