import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { createPool } from '../../src/platform/database.ts';
import { loggerOptions } from '../../src/platform/logging.ts';
import { buildTestApp, type TestApp, testConfig } from '../helpers/app.ts';
import { freePort } from '../helpers/ports.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

describe('health endpoints', () => {
  it('GET /health round-trips the database', async () => {
    const response = await t.app.inject({ url: '/health' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      status: 'ok',
      checks: { database: { status: 'ok', latency_ms: expect.any(Number) } },
      version: t.config.version,
      uptime_s: expect.any(Number),
    });
  });

  it('GET /liveness is alive', async () => {
    const response = await t.app.inject({ url: '/liveness' });
    expect(response.json()).toEqual({ status: 'alive' });
  });

  it('GET /readiness is ready when migrated, and not ready while migrations are pending', async () => {
    expect((await t.app.inject({ url: '/readiness' })).json()).toEqual({ status: 'ready' });
    await t.pool.query(`DELETE FROM pgmigrations WHERE name = '0001_loans'`);
    const response = await t.app.inject({ url: '/readiness' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ status: 'not_ready', reason: 'migrations pending: 0001_loans' });
    await t.pool.query(`INSERT INTO pgmigrations (name, run_on) VALUES ('0001_loans', now())`);
  });

  it('GET /readiness is not ready while shutting down', async () => {
    t.lifecycle.shuttingDown = true;
    const response = await t.app.inject({ url: '/readiness' });
    t.lifecycle.shuttingDown = false;
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ status: 'not_ready', reason: 'shutting down' });
  });
});

describe('with the database unreachable', () => {
  it('fails fast with 503 problems and reports the failing check, the driver message only in the log', async () => {
    const config = testConfig({ LOG_LEVEL: 'warn' });
    const pool = createPool(
      `postgres://postgres@127.0.0.1:${await freePort()}/none`,
      config.database,
      () => {},
    );
    const logs: Record<string, unknown>[] = [];
    const logger = pino(loggerOptions(config), { write: (line: string) => logs.push(JSON.parse(line)) });
    const app = await buildApp({ config, pool, logger });
    try {
      const started = performance.now();
      const api = await app.inject({ url: '/api/loans' });
      expect(performance.now() - started).toBeLessThan(5000);
      expect(api.statusCode).toBe(503);
      expect(api.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(api.headers['retry-after']).toBe('5');
      expect(api.json()).toMatchObject({
        type: 'https://branchloans.com/problems/service-unavailable',
        status: 503,
        detail: 'The database is unavailable; retry shortly',
      });
      expect(api.body).not.toContain('ECONNREFUSED');

      const health = await app.inject({ url: '/health' });
      expect(health.statusCode).toBe(503);
      expect(health.json()).toEqual({
        status: 'unavailable',
        checks: { database: { status: 'error', message: 'database unavailable' } },
        version: config.version,
        uptime_s: expect.any(Number),
      });

      const readiness = await app.inject({ url: '/readiness' });
      expect(readiness.statusCode).toBe(503);
      expect(readiness.json()).toEqual({ status: 'not_ready', reason: 'database unreachable' });
      expect((await app.inject({ url: '/liveness' })).statusCode).toBe(200);

      // The driver's words are for the operator: in the log of each failing probe, never in a body.
      for (const [response, msg] of [
        [health, 'health check: database unavailable'],
        [readiness, 'readiness check: database unreachable'],
      ] as const) {
        expect(response.body).not.toContain('ECONNREFUSED');
        expect(logs).toContainEqual(
          expect.objectContaining({
            level: 'warn',
            request_id: response.headers['x-request-id'],
            reason: expect.stringContaining('ECONNREFUSED'),
            msg,
          }),
        );
      }
    } finally {
      await app.close();
      await pool.end();
    }
  });
});

describe('with a database that cannot be used', () => {
  const expectUnavailable = async (app: import('fastify').FastifyInstance) => {
    for (const url of ['/api/loans', '/api/stats', '/api/loans/00000000-0000-0000-0000-000000000001']) {
      const response = await app.inject({ url });
      expect(response.statusCode, `${url}: ${response.body}`).toBe(503);
      expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(response.headers['retry-after']).toBe('5');
      expect(response.json()).toMatchObject({ type: 'https://branchloans.com/problems/service-unavailable' });
    }
  };

  it('answers 503 when its database has been dropped (3D000)', async () => {
    const dropped = await buildTestApp({ LOG_LEVEL: 'silent' });
    try {
      expect((await dropped.app.inject({ url: '/api/loans' })).statusCode).toBe(200);
      await dropped.db.drop();
      await expectUnavailable(dropped.app);
    } finally {
      await dropped.close();
    }
  });

  it('answers 503 when the server refuses its role (28000)', async () => {
    const config = testConfig({ LOG_LEVEL: 'silent' });
    const url = new URL(t.db.url);
    url.username = 'no_such_role';
    const pool = createPool(url.href, config.database, () => {});
    const app = await buildApp({ config, pool });
    try {
      await expectUnavailable(app);
    } finally {
      await app.close();
      await pool.end();
    }
  });
});
