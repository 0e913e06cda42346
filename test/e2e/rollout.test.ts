// A replica in a rolling deployment: it waits for the migration step instead of migrating, and on
// SIGTERM stops being ready but keeps serving while the load balancer notices, then drains.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { createEmptyDatabase, type TestDatabase } from '../helpers/database.ts';
import { freePort } from '../helpers/ports.ts';
import { type AppProcess, sleep, startServer, waitFor } from '../helpers/process.ts';

const DRAIN_DELAY_MS = 1500;
let db: TestDatabase;
let server: AppProcess;
let base: string;

beforeAll(async () => {
  db = await createEmptyDatabase();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = startServer({
    APP_ENV: 'test',
    PORT: String(port),
    DATABASE_URL: db.url,
    MIGRATE_ON_START: 'false',
    SHUTDOWN_DRAIN_DELAY_MS: String(DRAIN_DELAY_MS),
    LOG_LEVEL: 'info',
  });
});
afterAll(async () => {
  await server.stop();
  await db.drop();
});

const status = async (path: string) => (await fetch(`${base}${path}`)).status;

describe('a replica with MIGRATE_ON_START=false', () => {
  it('waits for the migration step: alive, not ready, /api 503; then ready once db:migrate has run', async () => {
    await server.waitForLog(
      'waiting for migrations: run npm run db:migrate (MIGRATE_ON_START=false)',
      60_000,
    );
    expect(await status('/liveness')).toBe(200);
    const readiness = await fetch(`${base}/readiness`);
    expect(readiness.status).toBe(503);
    expect(((await readiness.json()) as { reason: string }).reason).toMatch(
      /^migrations pending: 0001_loans, /,
    );
    const api = await fetch(`${base}/api/loans`);
    expect(api.status).toBe(503);
    expect(api.headers.get('retry-after')).toBe('5');
    // A key is not looked up in tables that may not exist yet.
    const keyed = await fetch(`${base}/api/loans`, { headers: { 'x-api-key': `bl_test_${'A'.repeat(43)}` } });
    expect(keyed.status).toBe(503);

    const migrated = await runCli('migrate', [], { DATABASE_URL: db.url });
    expect(migrated.code, migrated.stderr).toBe(0);
    await server.waitForLog((line) => line.msg?.startsWith('API: ') === true, 15_000);
    expect(await status('/readiness')).toBe(200);
    expect(await status('/api/loans')).toBe(200);
  });

  it('on SIGTERM is not ready at once, keeps serving for SHUTDOWN_DRAIN_DELAY_MS, then exits 0', async () => {
    const signalled = performance.now();
    server.signal('SIGTERM');
    await waitFor('readiness to turn 503', async () => (await status('/readiness')) === 503, {
      timeoutMs: 500,
    });
    expect(await status('/api/loans')).toBe(200);
    // Still serving towards the end of the delay, not only at its start.
    await sleep(Math.max(0, signalled + DRAIN_DELAY_MS - 400 - performance.now()));
    expect(await status('/api/loans')).toBe(200);
    const exit = await server.waitForExit(DRAIN_DELAY_MS + 10_000);
    expect(exit.code).toBe(0);
    expect(performance.now() - signalled).toBeGreaterThanOrEqual(DRAIN_DELAY_MS);
  });
});
