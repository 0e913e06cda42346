import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Config } from '../config.ts';
import { timestamptzToRfc3339 } from './timestamps.ts';

// DATE columns stay "YYYY-MM-DD" strings: a JS Date would shift them by the process time zone.
pg.types.setTypeParser(pg.types.builtins.DATE, (value) => value);
// The app's pools read timestamptz as the API writes it (RFC 3339 strings): no Date per field and back.
const appTypes = new pg.TypeOverrides();
appTypes.setTypeParser(pg.types.builtins.TIMESTAMPTZ, timestamptzToRfc3339);

export type Pool = pg.Pool;
export type Queryable = pg.Pool | pg.PoolClient | pg.Client;

/** Told of every query that ran on one of the pool's connections: how long it took, and whether it failed. */
export type QueryObserver = (seconds: number, ok: boolean) => void;

const queryObservers = new WeakMap<pg.Pool, Set<QueryObserver>>();

/**
 * Times every query on every connection of `pool`. pool.query() and transactions on pool.connect()
 * clients both end in client.query(), so wrapping it on each new connection covers them all, once.
 * Time spent waiting for a free connection is not query time (db_pool_waiting_clients shows it).
 */
function timeQueries(pool: pg.Pool): void {
  const observers = new Set<QueryObserver>();
  queryObservers.set(pool, observers);
  const report = (started: number, ok: boolean) => {
    const seconds = (performance.now() - started) / 1000;
    for (const observer of observers) observer(seconds, ok);
  };
  pool.on('connect', (client) => {
    const query = client.query;
    client.query = function timedQuery(this: pg.PoolClient, ...args: unknown[]) {
      const started = performance.now();
      const callback = args.at(-1);
      if (typeof callback === 'function') {
        args[args.length - 1] = (error: Error | undefined, result: unknown) => {
          report(started, !error);
          callback(error, result);
        };
        return Reflect.apply(query, this, args);
      }
      const result = Reflect.apply(query, this, args);
      // A Submittable (cursor, stream) is returned as is and not timed; the app uses none.
      if (!(result instanceof Promise)) return result;
      return result.then(
        (value) => {
          report(started, true);
          return value;
        },
        (error) => {
          report(started, false);
          throw error;
        },
      );
    } as typeof client.query;
  });
}

/** Calls `observer` after each query on `pool` (made by createPool); returns the unsubscribe. */
export function observeQueries(pool: pg.Pool, observer: QueryObserver): () => void {
  const observers = queryObservers.get(pool);
  if (!observers) throw new Error('observeQueries needs a pool made by createPool');
  observers.add(observer);
  return () => observers.delete(observer);
}

/**
 * pg's end() resolves as soon as no client is checked out, while the connections are still saying
 * goodbye; this end() also waits for them to close, so that the database can be stopped right after
 * (the embedded one is) without cutting them off and logging spurious connection errors.
 */
class ClosingPool extends pg.Pool {
  #open = 0;
  #onAllClosed: (() => void) | undefined;

  constructor(config: pg.PoolConfig) {
    super(config);
    this.on('connect', () => {
      this.#open += 1;
    });
    this.on('remove', () => {
      this.#open -= 1;
      if (this.#open === 0) this.#onAllClosed?.();
    });
  }

  override end(): Promise<void>;
  override end(callback: () => void): void;
  override end(callback?: () => void): Promise<void> | undefined {
    const closed = super.end().then(() =>
      this.#open === 0
        ? undefined
        : new Promise<void>((resolve) => {
            this.#onAllClosed = resolve;
          }),
    );
    if (!callback) return closed;
    void closed.then(callback);
    return undefined;
  }
}

export function createPool(
  url: string,
  options: Config['database'],
  onError: (error: Error) => void,
): pg.Pool {
  const pool = new ClosingPool({
    connectionString: url,
    max: options.poolMax,
    connectionTimeoutMillis: options.connectTimeoutMs,
    // No statement_timeout here: pg sends it as a startup parameter, which PgBouncer refuses (or drops);
    // applyStatementTimeout stores it with the role instead.
    idleTimeoutMillis: 30_000,
    application_name: 'branch-loans',
    types: appTypes,
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', onError);
  timeQueries(pool);
  return pool;
}

/** One connection of the pool for `work`, released after it; with no transaction of its own. */
export async function withConnection<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    return await work(client);
  } finally {
    client.release();
  }
}

/** `work` of a transaction that `work` begins on `client`; rolled back when `work` fails. */
export async function rollBackOnError<T>(client: pg.PoolClient, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

export function withTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return withConnection(pool, (client) =>
    rollBackOnError(client, async () => {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    }),
  );
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EPIPE',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '57P04', // database_dropped
  '3D000', // invalid_catalog_name: the database does not exist (any more)
  '25006', // read_only_sql_transaction: connected to a standby, e.g. a former primary after failover
  '57014', // query_canceled (statement timeout): the database is overloaded
]);
// SQLSTATE classes: 08 connection exception, 28 invalid authorization (role, password),
// 53 insufficient resources (disk, memory, connections), 58 system error (I/O).
const UNAVAILABLE_CLASSES = ['08', '28', '53', '58'];
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|connection error|Cannot use a pool after calling end/i;

/** True for errors that mean "the database cannot serve us right now", as opposed to a bug. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (
    typeof code === 'string' &&
    (UNAVAILABLE_CODES.has(code) || UNAVAILABLE_CLASSES.includes(code.slice(0, 2)))
  )
    return true;
  if (error instanceof AggregateError) return error.errors.some(isDatabaseUnavailable);
  return UNAVAILABLE_MESSAGES.test(error.message);
}

/**
 * Makes `ms` the statement timeout of every new session of this role in this database. Stored with the
 * role (`ALTER ROLE … IN DATABASE … SET`), it needs no startup parameter and no statement per request,
 * so it holds through a transaction-mode pooler; connections the pooler opened before keep their old
 * value until it recycles them.
 */
export async function applyStatementTimeout(url: string, ms: number): Promise<void> {
  if (!Number.isInteger(ms) || ms < 0)
    throw new RangeError(`statement timeout ${ms} is not a whole number of ms`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(
      // Replicas start together: concurrent first settings would collide in pg_db_role_setting, so they
      // take turns under a lock held until this statement commits.
      `DO $$ BEGIN
         PERFORM pg_advisory_xact_lock(hashtextextended('branch-loans:statement_timeout', 0));
         EXECUTE format('ALTER ROLE CURRENT_USER IN DATABASE %I SET statement_timeout = %L', current_database(), '${ms}ms');
       END $$`,
    );
  } finally {
    await client.end();
  }
}

/** Creates database `name` on the server behind `adminUrl` unless it exists (safe when raced). */
export async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      await client
        .query(`CREATE DATABASE ${client.escapeIdentifier(name)}`)
        .catch((error: { code?: string }) => {
          // 42P04 duplicate_database, 23505 unique_violation: another process created it first.
          if (error.code !== '42P04' && error.code !== '23505') throw error;
        });
    }
  } finally {
    await client.end();
  }
}

/** `url` with its database name replaced. */
export function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.href;
}
