// The real server process (`node --import tsx src/server.ts`): graceful shutdown with requests in
// flight, Ctrl-C, a busy data directory, persistence across restarts, configuration errors,
// an external DATABASE_URL, and a database outage it recovers from without a restart.
import { existsSync, readFileSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureDatabase, withDatabase } from '../../src/platform/database.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/platform/embedded-postgres.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { freePort } from '../helpers/ports.ts';
import {
  type AppProcess,
  ensurePostgresStopped,
  type LogLine,
  makeTempDir,
  portRefuses,
  postmasterPid,
  removeTempDir,
  startServer,
  waitFor,
} from '../helpers/process.ts';

const SERVER_TEST_TIMEOUT = 90_000;
const STARTUP_TIMEOUT = 60_000;
const STATEMENT_TIMEOUT_MS = 15_000;
// The original five loans (API.md §7), newest first.
const SEEDED_IDS_NEWEST_FIRST = [5, 4, 3, 2, 1].map((n) => `00000000-0000-0000-0000-00000000000${n}`);
const NEW_LOAN = {
  borrower_id: 'usr_e2e_1',
  amount: '15000.00',
  currency: 'INR',
  term_months: 12,
  interest_rate_apr: '18.50',
};

// Cleanups run after every test, last registered first, failed test or not.
const cleanups: (() => Promise<unknown>)[] = [];
function onCleanup(cleanup: () => Promise<unknown>): void {
  cleanups.push(cleanup);
}
afterEach(async () => {
  const errors: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup().catch((error: unknown) => errors.push(error));
  }
  if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
});

async function tempDir(): Promise<string> {
  const dir = await makeTempDir();
  onCleanup(async () => {
    // As root the cluster lives outside the 0700 temporary directory, behind a link to it.
    const cluster = await realpath(join(dir, 'postgres')).catch(() => undefined);
    if (cluster) await removeTempDir(cluster);
    await removeTempDir(dir);
  });
  return dir;
}

/** Distinct free ports on 127.0.0.1. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

interface Server {
  proc: AppProcess;
  port: number;
  pgPort: number;
  dataDir: string;
  base: string;
}

/** Starts the server and waits until it listens; stopped (with its PostgreSQL) after the test. */
async function launch(dataDir: string, vars: Record<string, string> = {}): Promise<Server> {
  const [port, pgPort] = (await freePorts(2)) as [number, number];
  const proc = startServer({
    APP_ENV: 'development',
    HOST: '127.0.0.1',
    PORT: String(port),
    EMBEDDED_PG_DATA_DIR: dataDir,
    EMBEDDED_PG_PORT: String(pgPort),
    LOG_LEVEL: 'info',
    SEED_ON_START: 'true',
    ...vars,
  });
  onCleanup(async () => {
    await proc.stop();
    await ensurePostgresStopped(dataDir);
  });
  await proc.waitForLog(isListeningLine, STARTUP_TIMEOUT);
  return { proc, port, pgPort, dataDir, base: `http://127.0.0.1:${port}` };
}

const isListeningLine = (line: LogLine) => line.msg?.startsWith('API: ') === true;

/** Messages logged after the server started listening. */
function messagesAfterListening(proc: AppProcess): string[] {
  const start = proc.logs.findIndex(isListeningLine);
  return proc.logs.slice(start + 1).map((line) => line.msg ?? '');
}

interface HttpResult {
  status: number;
  contentType: string | null;
  headers: Headers;
  body: unknown;
}

async function http(base: string, path: string, init: RequestInit = {}): Promise<HttpResult> {
  const response = await fetch(`${base}${path}`, init);
  const text = await response.text();
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    headers: response.headers,
    body: text === '' ? undefined : JSON.parse(text),
  };
}

function createLoan(base: string): Promise<HttpResult> {
  return http(base, '/api/loans', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(NEW_LOAN),
  });
}

const ids = (body: unknown) => (body as { id: string }[]).map((loan) => loan.id);

/** A pg client whose connection may be cut by a stopping server without crashing the test worker. */
async function connectClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'e2e-test' });
  client.on('error', () => {});
  await client.connect();
  onCleanup(() => client.end().catch(() => {}));
  return client;
}

/** The process group of a Linux process, from /proc. */
function processGroupOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const [, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(pgrp);
}

/**
 * Holds an exclusive lock on `loans` so that five GET /api/loans requests block inside PostgreSQL,
 * delivers `signal`, and checks that the server drains them before it closes the pool and, last,
 * stops the embedded database.
 */
async function shutDownWithRequestsInFlight(deliver: (server: Server) => void, signalName: string) {
  // A statement timeout longer than the default 5 s, so that a slow machine cannot turn the
  // blocked queries into errors before the lock is released.
  const server = await launch(join(await tempDir(), 'postgres'), {
    DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
  });
  const { proc, port, pgPort, dataDir, base } = server;
  const ready = proc.logs.find((line) => line.msg === 'embedded PostgreSQL is ready');
  const databaseUrl = ready?.url as string;
  expect(databaseUrl).toBe(`postgres://postgres@127.0.0.1:${pgPort}/branch_loans`);
  const postgresPid = postmasterPid(dataDir)!;
  // The database lives in a process group of its own, out of reach of signals to the app's group.
  expect(processGroupOf(postgresPid)).not.toBe(proc.pid);

  const locker = await connectClient(databaseUrl);
  const monitor = await connectClient(databaseUrl);
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE loans IN ACCESS EXCLUSIVE MODE');
  const lockedAt = Date.now();

  let settled = 0;
  const inFlight = Array.from({ length: 5 }, () =>
    http(base, '/api/loans').finally(() => {
      settled += 1;
    }),
  );
  // pg_stat_activity is a per-transaction snapshot, so it is polled from a second connection.
  await waitFor('five API queries waiting for the lock', async () => {
    const { rows } = await monitor.query<{ waiting: number }>(
      `SELECT count(*)::int AS waiting FROM pg_stat_activity
        WHERE application_name = 'branch-loans' AND wait_event_type = 'Lock'`,
    );
    return rows[0]?.waiting === 5;
  });
  expect(settled).toBe(0);

  deliver(server);
  await proc.waitForLog((line) => line.msg?.startsWith('shutting down') === true, 10_000);
  await waitFor('the HTTP port to refuse new connections', () => portRefuses(port), { timeoutMs: 3_000 });
  // Still draining: nothing answered, the process is alive, and the database still serves queries.
  expect(settled).toBe(0);
  expect(proc.exitStatus).toBeUndefined();
  expect((await locker.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  expect(Date.now() - lockedAt).toBeLessThan(STATEMENT_TIMEOUT_MS - 2_000);
  await locker.query('COMMIT');

  const responses = await Promise.all(inFlight);
  for (const response of responses) {
    expect(response.status).toBe(200);
    expect(response.contentType).toBe('application/json; charset=utf-8');
    expect(ids(response.body)).toEqual(SEEDED_IDS_NEWEST_FIRST);
  }
  await locker.end();
  await monitor.end();

  expect(await proc.waitForExit(30_000), proc.output()).toEqual({ code: 0, signal: null });
  expect(proc.logs.find((line) => line.msg?.startsWith('shutting down'))?.signal).toBe(signalName);
  expect(messagesAfterListening(proc), proc.output()).toEqual([
    'shutting down: draining in-flight requests',
    ...Array(5).fill('request completed'),
    'http server closed',
    'database pool closed',
    'embedded PostgreSQL stopped',
  ]);
  const completed = proc.logs.filter((line) => line.msg === 'request completed');
  expect(completed.map((line) => [line.path, line.status])).toEqual(Array(5).fill(['/api/loans', 200]));

  // The embedded server is really gone: no lock file, nothing on its port, no process.
  expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(false);
  expect(await portRefuses(pgPort)).toBe(true);
  expect(() => process.kill(postgresPid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
}

describe('server process (embedded PostgreSQL)', () => {
  it(
    'on SIGTERM stops accepting, finishes in-flight requests, closes the pool, then stops the database, and exits 0',
    () => shutDownWithRequestsInFlight(({ proc }) => proc.signal('SIGTERM'), 'SIGTERM'),
    SERVER_TEST_TIMEOUT,
  );

  it(
    "Ctrl-C (SIGINT to the server's whole process group) drains the same way and stops the database last",
    () => shutDownWithRequestsInFlight(({ proc }) => proc.signal('SIGINT', { group: true }), 'SIGINT'),
    SERVER_TEST_TIMEOUT,
  );

  it(
    'a second server on the same data directory fails fast with a clear message and the first keeps serving',
    async () => {
      const first = await launch(join(await tempDir(), 'postgres'));
      const created = await createLoan(first.base);
      expect(created.status).toBe(201);
      const postgresPid = postmasterPid(first.dataDir);

      const [port, pgPort] = (await freePorts(2)) as [number, number];
      const second = startServer({
        APP_ENV: 'development',
        HOST: '127.0.0.1',
        PORT: String(port),
        EMBEDDED_PG_DATA_DIR: first.dataDir,
        EMBEDDED_PG_PORT: String(pgPort),
        LOG_LEVEL: 'info',
        SEED_ON_START: 'true',
      });
      onCleanup(() => second.stop());
      const startedAt = Date.now();
      const status = await second.waitForExit(30_000);
      expect(status).toEqual({ code: 1, signal: null });
      expect(Date.now() - startedAt).toBeLessThan(20_000);
      const fatal = second.logs.filter((line) => line.level === 'fatal');
      expect(fatal).toHaveLength(1);
      expect(fatal[0]?.msg).toContain(`startup failed: the embedded database directory ${first.dataDir}`);
      expect(fatal[0]?.msg).toContain(`is already in use by PostgreSQL process ${postgresPid}`);
      expect(second.logs.some(isListeningLine)).toBe(false);
      expect(await portRefuses(pgPort)).toBe(true);

      // The first server and its database are untouched.
      expect(postmasterPid(first.dataDir)).toBe(postgresPid);
      const health = await http(first.base, '/health');
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: 'ok', checks: { database: { status: 'ok' } } });
      const list = await http(first.base, '/api/loans');
      expect(list.status).toBe(200);
      expect(ids(list.body)).toEqual([(created.body as { id: string }).id, ...SEEDED_IDS_NEWEST_FIRST]);
      expect(first.proc.exitStatus).toBeUndefined();
    },
    SERVER_TEST_TIMEOUT,
  );

  it(
    'keeps its data across a restart on the same data directory, without seeding the original loans twice',
    async () => {
      const dataDir = join(await tempDir(), 'postgres');
      const first = await launch(dataDir);
      expect(first.proc.logs.find((line) => line.msg === 'seeded the original loans')?.inserted).toBe(5);
      const created = await createLoan(first.base);
      expect(created.status).toBe(201);
      const loan = created.body as { id: string };
      first.proc.signal('SIGTERM');
      expect(await first.proc.waitForExit(30_000), first.proc.output()).toEqual({ code: 0, signal: null });

      const second = await launch(dataDir);
      expect(second.proc.logs.map((line) => line.msg)).toEqual(
        expect.arrayContaining(['database schema is up to date', 'seed data already present']),
      );
      expect(second.proc.logs.find((line) => line.msg === 'seed data already present')?.inserted).toBe(0);
      const fetched = await http(second.base, `/api/loans/${loan.id}`);
      expect(fetched.status).toBe(200);
      expect(fetched.body).toEqual(loan);
      const list = await http(second.base, '/api/loans');
      expect(list.status).toBe(200);
      expect(ids(list.body)).toEqual([loan.id, ...SEEDED_IDS_NEWEST_FIRST]);

      second.proc.signal('SIGTERM');
      expect(await second.proc.waitForExit(30_000), second.proc.output()).toEqual({ code: 0, signal: null });
    },
    SERVER_TEST_TIMEOUT,
  );
});

describe('server process configuration', () => {
  it.each([
    ['PORT', { PORT: 'abc' }],
    ['APP_ENV', { APP_ENV: 'prod' }],
    ['DATABASE_URL', { APP_ENV: 'production' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://x' }],
  ])('refuses to start with one stderr line naming %s (%o)', async (variable, vars) => {
    const dataDir = join(await tempDir(), 'postgres');
    const [port, pgPort] = (await freePorts(2)) as [number, number];
    const proc = startServer({
      APP_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: String(port),
      EMBEDDED_PG_DATA_DIR: dataDir,
      EMBEDDED_PG_PORT: String(pgPort),
      LOG_LEVEL: 'info',
      ...vars,
    });
    onCleanup(async () => {
      await proc.stop();
      await ensurePostgresStopped(dataDir);
    });
    expect(await proc.waitForExit(30_000), proc.output()).toEqual({ code: 1, signal: null });
    expect(proc.stderr).toHaveLength(1);
    expect(proc.stderr[0]).toMatch(new RegExp(`^Invalid configuration: ${variable} `));
    expect(proc.stdout).toEqual([]);
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe('server process with WEB_CONCURRENCY=2', () => {
  it(
    'serves from two workers on one port, replaces one that dies, and drains both on SIGTERM',
    async () => {
      const server = await launch(join(await tempDir(), 'postgres'), { WEB_CONCURRENCY: '2' });
      const { proc, base } = server;
      const workerPids = () => new Set(proc.logs.filter(isListeningLine).map((line) => line.pid as number));
      await waitFor('both workers listening', () => workerPids().size === 2, { timeoutMs: STARTUP_TIMEOUT });
      expect(workerPids().has(proc.pid)).toBe(false);
      expect(proc.logs.filter((line) => line.msg === 'migrations applied')).toHaveLength(1);

      // A connection each: the primary hands new connections to the workers in turn.
      const pages = await Promise.all(
        Array.from({ length: 10 }, () => http(base, '/api/loans', { headers: { connection: 'close' } })),
      );
      expect(pages.map((page) => page.status)).toEqual(Array(10).fill(200));
      // Seeded once, by the primary.
      expect((pages[0]!.body as { id: string }[]).map((loan) => loan.id)).toEqual(SEEDED_IDS_NEWEST_FIRST);
      const seeded = proc.logs.filter((line) => line.msg === 'seeded the original loans');
      expect(seeded.map((line) => line.pid)).toEqual([proc.pid]);
      await waitFor(
        'ten request lines',
        () => proc.logs.filter((line) => line.msg === 'request completed').length === 10,
      );
      const servedBy = new Set(
        proc.logs.filter((line) => line.msg === 'request completed').map((line) => line.pid as number),
      );
      expect(servedBy).toEqual(workerPids());

      const [killed] = [...workerPids()];
      process.kill(killed!, 'SIGKILL');
      await proc.waitForLog((line) => line.msg === 'worker died; starting another' && line.pid === proc.pid);
      await waitFor('a third worker listening', () => workerPids().size === 3, {
        timeoutMs: STARTUP_TIMEOUT,
      });
      expect((await http(base, '/api/loans', { headers: { connection: 'close' } })).status).toBe(200);

      proc.signal('SIGTERM');
      expect(await proc.waitForExit(30_000), proc.output()).toEqual({ code: 0, signal: null });
      expect(proc.logs.filter((line) => line.msg === 'database pool closed')).toHaveLength(2);
      expect(proc.logs.at(-1)?.msg).toBe('embedded PostgreSQL stopped');
      expect(await portRefuses(server.pgPort)).toBe(true);
    },
    SERVER_TEST_TIMEOUT,
  );

  it(
    'stops every worker and exits 1 when the workers cannot get ready',
    async () => {
      const db = await createTestDatabase();
      onCleanup(() => db.drop());
      // Production with no API key at all: each worker's preparation refuses to serve.
      const proc = startServer({
        APP_ENV: 'production',
        DATABASE_URL: db.url,
        HOST: '127.0.0.1',
        PORT: String(await freePort()),
        WEB_CONCURRENCY: '2',
      });
      onCleanup(() => proc.stop());
      expect(await proc.waitForExit(60_000), proc.output()).toEqual({ code: 1, signal: null });
      const primary = proc.logs.filter((line) => line.pid === proc.pid).map((line) => line.msg);
      expect(primary).toContain('worker failed to start; stopping');
      expect(primary).not.toContain('worker died; starting another');
    },
    SERVER_TEST_TIMEOUT,
  );
});

describe('server process with DATABASE_URL', () => {
  it(
    'never starts an embedded database and still shuts down cleanly on SIGTERM',
    async () => {
      const db = await createTestDatabase();
      onCleanup(() => db.drop());
      const dataDir = join(await tempDir(), 'postgres');
      const server = await launch(dataDir, { APP_ENV: 'test', DATABASE_URL: db.url, SEED_ON_START: 'false' });

      const created = await createLoan(server.base);
      expect(created.status).toBe(201);
      const client = await connectClient(db.url);
      const { rows } = await client.query('SELECT borrower_id FROM loans WHERE id = $1', [
        (created.body as { id: string }).id,
      ]);
      expect(rows).toEqual([{ borrower_id: NEW_LOAN.borrower_id }]);
      await client.end();
      // The request's log line is written once the response is flushed, which can lag the client.
      await server.proc.waitForLog('request completed', 10_000);

      server.proc.signal('SIGTERM');
      expect(await server.proc.waitForExit(30_000), server.proc.output()).toEqual({ code: 0, signal: null });
      expect(server.proc.logs.map((line) => line.msg)).not.toContain('starting embedded PostgreSQL');
      expect(messagesAfterListening(server.proc), server.proc.output()).toEqual([
        'request completed',
        'shutting down: draining in-flight requests',
        'http server closed',
        'database pool closed',
      ]);
      expect(existsSync(dataDir)).toBe(false);
      expect(await portRefuses(server.pgPort)).toBe(true);
    },
    SERVER_TEST_TIMEOUT,
  );

  it(
    'answers 503 quickly while its database is down and recovers by itself when it returns',
    async () => {
      const dataDir = join(await tempDir(), 'postgres');
      const pgPort = await freePort();
      let database: EmbeddedDatabase | undefined = await startEmbeddedPostgres({ dataDir, port: pgPort });
      onCleanup(async () => {
        await database?.stop();
        await ensurePostgresStopped(dataDir);
      });
      await ensureDatabase(database.adminUrl, 'branch_loans');
      const server = await launch(join(dataDir, '..', 'unused'), {
        APP_ENV: 'test',
        DATABASE_URL: withDatabase(database.adminUrl, 'branch_loans'),
      });
      expect((await http(server.base, '/api/loans')).status).toBe(200);

      await database.stop();
      database = undefined;

      const startedAt = Date.now();
      const down = await http(server.base, '/api/loans');
      expect(Date.now() - startedAt).toBeLessThan(3_000);
      expect(down.status).toBe(503);
      expect(down.contentType).toBe('application/problem+json; charset=utf-8');
      expect(down.headers.get('retry-after')).toBe('5');
      expect(down.body).toMatchObject({
        type: 'https://branchloans.com/problems/service-unavailable',
        status: 503,
        instance: '/api/loans',
      });

      const health = await http(server.base, '/health');
      expect(health.status).toBe(503);
      expect(health.body).toEqual({
        status: 'unavailable',
        checks: { database: { status: 'error', message: expect.any(String) } },
        version: expect.any(String),
        uptime_s: expect.any(Number),
      });
      expect(JSON.stringify(health.body)).not.toContain('postgres://');
      const readiness = await http(server.base, '/readiness');
      expect(readiness.status).toBe(503);
      expect(readiness.body).toEqual({
        status: 'not_ready',
        reason: expect.stringMatching(/^database unreachable/),
      });
      const liveness = await http(server.base, '/liveness');
      expect(liveness.status).toBe(200);
      expect(liveness.body).toEqual({ status: 'alive' });

      database = await startEmbeddedPostgres({ dataDir, port: pgPort });
      const recovered = await waitFor(
        'GET /api/loans to succeed again',
        async () => {
          const response = await http(server.base, '/api/loans');
          return response.status === 200 && response;
        },
        { timeoutMs: 10_000, intervalMs: 200 },
      );
      expect(ids(recovered.body)).toEqual(SEEDED_IDS_NEWEST_FIRST);
      expect((await http(server.base, '/health')).status).toBe(200);
      expect((await http(server.base, '/readiness')).body).toEqual({ status: 'ready' });
      // Same process, never restarted.
      expect(server.proc.exitStatus).toBeUndefined();
      expect(server.proc.logs.filter(isListeningLine)).toHaveLength(1);

      server.proc.signal('SIGTERM');
      expect(await server.proc.waitForExit(30_000), server.proc.output()).toEqual({ code: 0, signal: null });
    },
    SERVER_TEST_TIMEOUT,
  );
});
