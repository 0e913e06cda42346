// The service through a real PgBouncer in transaction mode: no startup parameters, no session state,
// and the statement timeout still cancels a blocked query (503).
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { applyStatementTimeout, createPool, type Pool } from '../../src/platform/database.ts';
import { testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { post, TERMS } from '../helpers/loans.ts';
import { type Pgbouncer, pgbouncerMissing, startPgbouncer } from '../helpers/pgbouncer.ts';
import { skipWhenMissing } from '../helpers/process.ts';

const STATEMENT_TIMEOUT_MS = 1000;
const skip = skipWhenMissing('PgBouncer tests', pgbouncerMissing());

describe.skipIf(skip)('through PgBouncer in transaction mode', () => {
  let db: TestDatabase;
  let bouncer: Pgbouncer;
  let pool: Pool;
  let app: FastifyInstance;

  beforeAll(async () => {
    db = await createTestDatabase();
    bouncer = await startPgbouncer(inject('adminUrl'));
    const config = testConfig({
      LOG_LEVEL: 'silent',
      DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
      IDEMPOTENCY_WAIT_MS: '500',
    });
    // As the server does at start, on the direct URL (MIGRATION_DATABASE_URL): the pooler's server
    // connections are opened after it, so every one has it.
    await applyStatementTimeout(db.url, STATEMENT_TIMEOUT_MS);
    const pooled = bouncer.through(db.url);
    pool = createPool(pooled, config.database, () => {});
    app = await buildApp({ config, pool });
  });
  afterAll(async () => {
    await app?.close();
    await pool?.end();
    await bouncer?.stop();
    await db?.drop();
  });

  it('serves reads, writes and idempotent replays (no startup parameter refused)', async () => {
    const created = await post(app, '/api/loans', TERMS, { 'idempotency-key': 'pooled-1' });
    expect(created.statusCode, created.body).toBe(201);
    const replay = await post(app, '/api/loans', TERMS, { 'idempotency-key': 'pooled-1' });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toBe(created.body);
    expect((await app.inject({ url: '/api/loans' })).json()).toHaveLength(1);
    expect((await app.inject({ url: '/api/stats' })).statusCode).toBe(200);
  });

  it('cancels a query blocked longer than DATABASE_STATEMENT_TIMEOUT_MS and answers 503', async () => {
    const id = (await post(app, '/api/loans', TERMS)).json().id as string;
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM loans WHERE id = $1 FOR UPDATE', [id]);
      const started = performance.now();
      const blocked = await post(app, `/api/loans/${id}/approve`, {});
      const elapsed = performance.now() - started;
      expect(blocked.statusCode, blocked.body).toBe(503);
      expect(blocked.json().type).toBe('https://branchloans.com/problems/service-unavailable');
      expect(elapsed).toBeGreaterThanOrEqual(STATEMENT_TIMEOUT_MS - 50);
      expect(elapsed).toBeLessThan(STATEMENT_TIMEOUT_MS + 2000);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect((await post(app, `/api/loans/${id}/approve`, {})).statusCode).toBe(200);
  });
});
