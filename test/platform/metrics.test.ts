import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { createPool } from '../../src/platform/database.ts';
import { buildTestApp, JSON_HEADERS, type TestApp, testConfig } from '../helpers/app.ts';
import { loanIn, newKey, post, TERMS } from '../helpers/loans.ts';
import { freePort } from '../helpers/ports.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!;
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

class Scrape {
  constructor(
    readonly text: string,
    readonly samples: Sample[],
  ) {}

  /** The value of the sample with exactly these labels, or undefined when there is none. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const wanted = Object.entries(labels);
    return this.samples.find(
      (sample) =>
        sample.name === name &&
        Object.keys(sample.labels).length === wanted.length &&
        wanted.every(([key, value]) => sample.labels[key] === value),
    )?.value;
  }

  /** Like value(), with an absent counter series read as 0. */
  count(name: string, labels: Record<string, string> = {}): number {
    return this.value(name, labels) ?? 0;
  }

  all(name: string): Sample[] {
    return this.samples.filter((sample) => sample.name === name);
  }
}

async function scrape(app: FastifyInstance = t.app): Promise<Scrape> {
  const response = await app.inject({ url: '/metrics' });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  return new Scrape(response.body, parseExposition(response.body));
}

/** How much each listed series grew between two scrapes. */
function deltas(before: Scrape, after: Scrape, name: string, labelSets: Record<string, string>[]) {
  return labelSets.map((labels) => after.count(name, labels) - before.count(name, labels));
}

const TRANSITIONS = [
  { from: 'pending', to: 'approved' },
  { from: 'pending', to: 'rejected' },
  { from: 'approved', to: 'disbursed' },
  { from: 'disbursed', to: 'defaulted' },
  { from: 'disbursed', to: 'repaid' },
  { from: 'defaulted', to: 'repaid' },
];

/** "16545.27" - "100.00" in exact minor units, back as a money string with 2 digits. */
function minus(a: string, b: string): string {
  const minor = BigInt(a.replace('.', '')) - BigInt(b.replace('.', ''));
  const digits = minor.toString().padStart(3, '0');
  return `${digits.slice(0, -2)}.${digits.slice(-2)}`;
}

describe('business metrics', () => {
  it('count creations per currency, each transition, repayments and repaid minor units exactly', async () => {
    const before = await scrape();

    const inr = (await post(t.app, '/api/loans', TERMS)).json().id as string;
    const kes = (await post(t.app, '/api/loans', { ...TERMS, currency: 'KES', amount: '1000.00' })).json()
      .id as string;
    expect((await post(t.app, `/api/loans/${inr}/approve`)).statusCode).toBe(200);
    expect((await post(t.app, `/api/loans/${kes}/reject`, { reason: 'policy' })).statusCode).toBe(200);
    const disbursed = await post(t.app, `/api/loans/${inr}/disburse`, {}, { 'idempotency-key': newKey() });
    expect(disbursed.statusCode).toBe(200);
    const repay = (amount: string) =>
      post(t.app, `/api/loans/${inr}/repayments`, { amount }, { 'idempotency-key': newKey() });
    expect((await repay('100.00')).statusCode).toBe(201);
    const total = (await t.app.inject({ url: `/api/loans/${inr}/schedule` })).json()
      .total_repayable as string;
    expect(total).toBe('16545.27');
    expect((await repay(minus(total, '100.00'))).statusCode).toBe(201);
    expect((await t.app.inject({ url: `/api/loans/${inr}` })).json().status).toBe('repaid');

    const after = await scrape();
    expect(deltas(before, after, 'loans_created_total', [{ currency: 'INR' }, { currency: 'KES' }])).toEqual([
      1, 1,
    ]);
    expect(deltas(before, after, 'loan_transitions_total', TRANSITIONS)).toEqual([1, 1, 1, 0, 1, 0]);
    expect(deltas(before, after, 'repayments_total', [{ currency: 'INR' }, { currency: 'KES' }])).toEqual([
      2, 0,
    ]);
    expect(deltas(before, after, 'repayments_amount_minor_total', [{ currency: 'INR' }])).toEqual([1654527]);
  });

  it('count a default, and a repayment that clears a defaulted loan as defaulted → repaid', async () => {
    const id = await loanIn(t.app, 'disbursed');
    const before = await scrape();
    expect((await post(t.app, `/api/loans/${id}/default`, { reason: 'gone' })).statusCode).toBe(200);
    const total = (await t.app.inject({ url: `/api/loans/${id}/schedule` })).json().total_repayable as string;
    const cleared = await post(
      t.app,
      `/api/loans/${id}/repayments`,
      { amount: total },
      { 'idempotency-key': newKey() },
    );
    expect(cleared.statusCode).toBe(201);
    const after = await scrape();
    expect(deltas(before, after, 'loan_transitions_total', TRANSITIONS)).toEqual([0, 0, 0, 1, 0, 1]);
    expect(deltas(before, after, 'repayments_amount_minor_total', [{ currency: 'INR' }])).toEqual([1654527]);
  });

  it('do not count replays, refusals, stored client errors or requests that change nothing', async () => {
    const pending = await loanIn(t.app, 'pending');
    const rejected = await loanIn(t.app, 'rejected');
    const createKey = newKey();
    const approveKey = newKey();
    const conflictKey = newKey();
    expect((await post(t.app, '/api/loans', TERMS, { 'idempotency-key': createKey })).statusCode).toBe(201);
    expect(
      (await post(t.app, `/api/loans/${pending}/approve`, {}, { 'idempotency-key': approveKey })).statusCode,
    ).toBe(200);
    const before = await scrape();

    const replayedCreate = await post(t.app, '/api/loans', TERMS, { 'idempotency-key': createKey });
    expect(replayedCreate.headers['idempotent-replayed']).toBe('true');
    const replayedApprove = await post(
      t.app,
      `/api/loans/${pending}/approve`,
      {},
      { 'idempotency-key': approveKey },
    );
    expect(replayedApprove.headers['idempotent-replayed']).toBe('true');
    // 409 without a key, then a 409 stored with a key and its replay.
    expect((await post(t.app, `/api/loans/${rejected}/approve`)).statusCode).toBe(409);
    for (let i = 0; i < 2; i++) {
      const response = await post(
        t.app,
        `/api/loans/${rejected}/approve`,
        {},
        { 'idempotency-key': conflictKey },
      );
      expect(response.statusCode).toBe(409);
    }
    // The same key with another request, an invalid body, an overpayment.
    expect(
      (await post(t.app, '/api/loans', { ...TERMS, amount: '1.00' }, { 'idempotency-key': createKey }))
        .statusCode,
    ).toBe(422);
    expect((await post(t.app, '/api/loans', { ...TERMS, amount: '0' })).statusCode).toBe(400);
    const disbursed = await loanIn(t.app, 'disbursed');
    const afterSetup = await scrape();
    const overpaid = await post(
      t.app,
      `/api/loans/${disbursed}/repayments`,
      { amount: '50000.00' },
      { 'idempotency-key': newKey() },
    );
    expect(overpaid.statusCode).toBe(422);

    const after = await scrape();
    // Between `before` and `afterSetup` only loanIn('disbursed') counted: one create, approve, disburse.
    expect(deltas(before, afterSetup, 'loans_created_total', [{ currency: 'INR' }])).toEqual([1]);
    expect(deltas(before, afterSetup, 'loan_transitions_total', TRANSITIONS)).toEqual([1, 0, 1, 0, 0, 0]);
    expect(deltas(afterSetup, after, 'loans_created_total', [{ currency: 'INR' }])).toEqual([0]);
    expect(deltas(afterSetup, after, 'loan_transitions_total', TRANSITIONS)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(deltas(before, after, 'repayments_total', [{ currency: 'INR' }])).toEqual([0]);
    expect(deltas(before, after, 'repayments_amount_minor_total', [{ currency: 'INR' }])).toEqual([0]);
  });

  it.each([
    [
      'the idempotency key cannot be stored',
      `CREATE TRIGGER fail_now BEFORE INSERT ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION fail_now()`,
      `DROP TRIGGER fail_now ON idempotency_keys`,
      { 'idempotency-key': 'rolled-back-1' },
    ],
    [
      'COMMIT fails (a deferred check)',
      `CREATE CONSTRAINT TRIGGER fail_now AFTER INSERT ON loan_events DEFERRABLE INITIALLY DEFERRED
         FOR EACH ROW EXECUTE FUNCTION fail_now()`,
      `DROP TRIGGER fail_now ON loan_events`,
      {},
    ],
  ])(
    'do not count a change that rolled back after its work succeeded: %s',
    async (_name, create, drop, headers) => {
      const id = await loanIn(t.app, 'pending');
      await t.pool.query(`CREATE FUNCTION fail_now() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected failure'; END $$`);
      await t.pool.query(create);
      const before = await scrape();
      const failed = await post(t.app, `/api/loans/${id}/approve`, {}, headers);
      const after = await scrape();
      await t.pool.query(drop);
      await t.pool.query('DROP FUNCTION fail_now()');

      expect(failed.statusCode).toBe(500);
      expect((await t.app.inject({ url: `/api/loans/${id}` })).json().status).toBe('pending');
      expect(deltas(before, after, 'loan_transitions_total', TRANSITIONS)).toEqual([0, 0, 0, 0, 0, 0]);
      // The statement that raised is the one failed query.
      expect(
        after.count('db_query_duration_seconds_count', { outcome: 'error' }) -
          before.count('db_query_duration_seconds_count', { outcome: 'error' }),
      ).toBe(1);
    },
  );

  it('explain in HELP that the repaid amount is in minor units', async () => {
    const { text } = await scrape();
    expect(text).toMatch(/^# HELP repayments_amount_minor_total .*MINOR units/m);
    expect(text).toContain('# TYPE repayments_amount_minor_total counter');
    expect(text).toContain('# TYPE loans_created_total counter');
    expect(text).toContain('# TYPE loan_transitions_total counter');
    expect(text).toContain('# TYPE repayments_total counter');
  });
});

describe('HTTP metrics', () => {
  const series = (method: string, route: string, status: number) => ({
    method,
    route,
    status_code: String(status),
  });

  it('label requests with the route template, and every unknown path as "unmatched"', async () => {
    const id = await loanIn(t.app, 'pending');
    const before = await scrape();
    expect((await t.app.inject({ url: `/api/loans/${id}` })).statusCode).toBe(200);
    expect((await t.app.inject({ url: `/api/loans/${id}/` })).statusCode).toBe(200);
    expect((await t.app.inject({ url: `/no/such/${id}` })).statusCode).toBe(404);
    expect((await t.app.inject({ url: '/also/missing' })).statusCode).toBe(404);
    const after = await scrape();

    const labels = [series('GET', '/api/loans/:id', 200), series('GET', 'unmatched', 404)];
    expect(deltas(before, after, 'http_requests_total', labels)).toEqual([2, 2]);
    expect(deltas(before, after, 'http_request_duration_seconds_count', labels)).toEqual([2, 2]);
    expect(after.text).not.toContain(id);
    expect(after.text).not.toContain('/no/such');
  });

  it('count errors raised before or outside the handlers: 405, 413, 415, invalid JSON, undecodable URLs', async () => {
    const before = await scrape();
    expect((await t.app.inject({ method: 'DELETE', url: '/api/loans' })).statusCode).toBe(405);
    const tooLarge = await t.app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: JSON_HEADERS,
      payload: JSON.stringify({ borrower_id: 'x'.repeat(66 * 1024) }),
    });
    expect(tooLarge.statusCode).toBe(413);
    const form = await t.app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: { 'content-type': 'text/plain' },
      payload: 'x',
    });
    expect(form.statusCode).toBe(415);
    const badJson = await t.app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: JSON_HEADERS,
      payload: '{"borrower_id": ',
    });
    expect(badJson.statusCode).toBe(400);
    const badUrl = await t.app.inject({ url: '/api/loans/%zz', headers: { 'x-request-id': 'bad-url-1' } });
    const after = await scrape();

    // The router rejects an undecodable URL before any hook; it still answers like every other error.
    expect(badUrl.statusCode).toBe(400);
    expect(badUrl.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(badUrl.headers['x-request-id']).toBe('bad-url-1');
    expect(badUrl.json()).toMatchObject({ status: 400, instance: '/api/loans/%zz', request_id: 'bad-url-1' });

    const labels = [
      series('DELETE', 'unmatched', 405),
      series('POST', '/api/loans', 413),
      series('POST', '/api/loans', 415),
      series('POST', '/api/loans', 400),
      series('GET', 'unmatched', 400),
    ];
    expect(deltas(before, after, 'http_requests_total', labels)).toEqual([1, 1, 1, 1, 1]);
    expect(deltas(before, after, 'http_request_duration_seconds_count', labels)).toEqual([1, 1, 1, 1, 1]);
    const logged = t.logs.filter((line) => line.request_id === 'bad-url-1');
    expect(logged).toEqual([
      expect.objectContaining({
        msg: 'request completed',
        route: 'unmatched',
        status: 400,
        path: '/api/loans/%zz',
      }),
    ]);
  });

  it('use buckets from half a millisecond to 10 s', async () => {
    await t.app.inject({ url: '/liveness' });
    const { samples } = await scrape();
    const buckets = samples
      .filter(
        (sample) =>
          sample.name === 'http_request_duration_seconds_bucket' &&
          sample.labels.route === '/liveness' &&
          sample.labels.status_code === '200',
      )
      .map((sample) => sample.labels.le);
    expect(buckets).toEqual([
      '0.0005',
      '0.001',
      '0.0025',
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '0.25',
      '0.5',
      '1',
      '2.5',
      '5',
      '10',
      '+Inf',
    ]);
  });

  it('count the scrape itself as the one request in flight', async () => {
    await Promise.all([t.app.inject({ url: '/liveness' }), t.app.inject({ url: '/api/loans' })]);
    expect((await scrape()).value('http_requests_in_flight')).toBe(1);
  });
});

describe('database metrics', () => {
  it('report loans by status from loan_stats, every status present, equal to the loans table', async () => {
    await loanIn(t.app, 'defaulted');
    await loanIn(t.app, 'repaid');
    const { rows } = await t.pool.query<{ status: string; n: number }>(
      'SELECT status, count(*)::int AS n FROM loans GROUP BY status',
    );
    const counted = Object.fromEntries(rows.map((row) => [row.status, row.n]));
    const statuses = ['pending', 'approved', 'rejected', 'disbursed', 'repaid', 'defaulted'];
    const result = await scrape();
    expect(Object.fromEntries(result.all('loans_by_status').map((s) => [s.labels.status, s.value]))).toEqual(
      Object.fromEntries(statuses.map((status) => [status, counted[status] ?? 0])),
    );
    expect(result.value('loans_by_status', { status: 'defaulted' })).toBeGreaterThanOrEqual(1);
    expect(result.value('database_up')).toBe(1);
  });

  it('report 0 for every status on a database without loans', async () => {
    const empty = await buildTestApp({ LOG_LEVEL: 'silent' });
    try {
      const result = await scrape(empty.app);
      expect(result.all('loans_by_status').map((sample) => [sample.labels.status, sample.value])).toEqual([
        ['pending', 0],
        ['approved', 0],
        ['rejected', 0],
        ['disbursed', 0],
        ['repaid', 0],
        ['defaulted', 0],
      ]);
    } finally {
      await empty.close();
    }
  });

  it('still answers the scrape when the loan counts cannot be read, with no stale loan counts', async () => {
    await t.pool.query('ALTER TABLE loan_stats RENAME TO loan_stats_moved');
    let failed: Scrape;
    try {
      failed = await scrape();
    } finally {
      await t.pool.query('ALTER TABLE loan_stats_moved RENAME TO loan_stats');
    }
    // The database itself still answers; only the loan counts are missing.
    expect(failed.value('database_up')).toBe(1);
    expect(failed.all('loans_by_status')).toEqual([]);
    expect(failed.text).toContain('# TYPE loans_by_status gauge');
    const recovered = await scrape();
    expect(recovered.value('database_up')).toBe(1);
    expect(recovered.all('loans_by_status')).toHaveLength(6);
  });

  it('time every query through the pool exactly once, transactions included, by outcome', async () => {
    const before = await scrape();
    await t.pool.query('SELECT 1');
    await expect(t.pool.query('SELECT 1/0')).rejects.toThrow('division by zero');
    const client = await t.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT 2');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const after = await scrape();
    const grew = (outcome: string, suffix: string) =>
      after.count(`db_query_duration_seconds_${suffix}`, { outcome }) -
      before.count(`db_query_duration_seconds_${suffix}`, { outcome });
    // The earlier scrape's own two queries (database_up and loans_by_status), SELECT 1, then BEGIN,
    // SELECT 2, COMMIT.
    expect(grew('ok', 'count')).toBe(6);
    expect(grew('error', 'count')).toBe(1);
    expect(grew('ok', 'sum')).toBeGreaterThan(0);
    expect(after.value('db_query_duration_seconds_bucket', { outcome: 'ok', le: '+Inf' })).toBe(
      after.value('db_query_duration_seconds_count', { outcome: 'ok' }),
    );
  });

  it('report the pool: open, idle, waiting and the maximum', async () => {
    const config = testConfig({ LOG_LEVEL: 'silent', DATABASE_POOL_MAX: '3' });
    const pool = createPool(t.db.url, config.database, () => {});
    const app = await buildApp({ config, pool });
    const held = [await pool.connect(), await pool.connect()];
    try {
      const result = await scrape(app);
      expect(result.value('db_pool_total_connections')).toBe(2);
      expect(result.value('db_pool_idle_connections')).toBe(0);
      expect(result.value('db_pool_waiting_clients')).toBe(0);
      expect(result.value('db_pool_max_connections')).toBe(3);
      expect(result.value('database_up')).toBe(1);
    } finally {
      for (const client of held) client.release();
      await app.close();
      await pool.end();
    }
  });

  it('report database_up 0 and still answer 200 when the database cannot be reached', async () => {
    const config = testConfig({ LOG_LEVEL: 'silent' });
    const pool = createPool(
      `postgres://postgres@127.0.0.1:${await freePort()}/none`,
      config.database,
      () => {},
    );
    const app = await buildApp({ config, pool });
    try {
      const started = performance.now();
      const result = await scrape(app);
      expect(performance.now() - started).toBeLessThan(config.database.connectTimeoutMs + 1000);
      expect(result.value('database_up')).toBe(0);
      expect(result.all('loans_by_status')).toEqual([]);
      expect(result.value('db_pool_total_connections')).toBe(0);
      expect(result.value('db_pool_max_connections')).toBe(10);
    } finally {
      await app.close();
      await pool.end();
    }
  });
});

describe('process and build metrics', () => {
  it('report build_info and the Node.js process defaults', async () => {
    const result = await scrape();
    expect(result.value('build_info', { version: t.config.version, commit: 'unknown' })).toBe(1);
    expect(result.value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(result.value('nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(result.text).toContain('# TYPE nodejs_gc_duration_seconds histogram');
    expect(result.value('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('keep a registry per app, so two apps in one process count separately', async () => {
    const config = testConfig({ LOG_LEVEL: 'silent' });
    const pool = createPool(t.db.url, config.database, () => {});
    const other = await buildApp({ config, pool });
    try {
      await other.inject({ url: '/liveness' });
      await other.inject({ url: '/liveness' });
      const labels = { method: 'GET', route: '/liveness', status_code: '200' };
      const before = (await scrape()).count('http_requests_total', labels);
      await other.inject({ url: '/liveness' });
      expect((await scrape()).count('http_requests_total', labels)).toBe(before);
      expect((await scrape(other)).count('http_requests_total', labels)).toBe(3);
    } finally {
      await other.close();
      await pool.end();
    }
  });
});
