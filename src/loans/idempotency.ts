import { createHash } from 'node:crypto';
import type pg from 'pg';
import { type Pool, rollBackOnError, withConnection } from '../platform/database.ts';
import { AppError } from '../platform/errors.ts';

/** A response as it goes on the wire, so that a replay is byte for byte the same. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface IdempotencyKey {
  /** Who the key belongs to: the API key id, or "anonymous". */
  scope: string;
  key: string;
  /** Hash of method, path and body: the same key with another request is refused. */
  fingerprint: string;
}

export interface Outcome {
  response: StoredResponse;
  replayed: boolean;
}

/** Client errors that a retry would get again, and so are stored with the key. */
const DETERMINISTIC_STATUSES = new Set([400, 404, 409, 412, 422]);

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Same method, path and JSON body (whatever its key order or spacing) → same fingerprint. */
export function requestFingerprint(method: string, path: string, body: unknown): string {
  const normalizedPath = path.length > 1 ? path.replace(/\/+$/, '') : path;
  return createHash('sha256')
    .update(`${method} ${normalizedPath}\n${canonicalJson(body ?? null)}`)
    .digest('hex');
}

type Stored = StoredResponse & { fingerprint: string };

/**
 * One round trip: begins the transaction, takes the key's transaction-scoped lock (waiting up to
 * `waitMs` for a request that holds it), reads what the key stored, and sets the savepoint a refusal
 * rolls back to. Undefined when the lock stays held. A wait of 0 tries the lock: `lock_timeout = 0`
 * would mean "no limit". The simple protocol runs several statements at once but takes no parameters,
 * so the values are quoted by the driver (escapeLiteral).
 */
async function openKey(
  client: pg.PoolClient,
  request: IdempotencyKey,
  waitMs: number,
): Promise<{ previous: Stored | undefined } | undefined> {
  const quote = (value: string) => client.escapeLiteral(value);
  const lock = `hashtextextended(${quote(JSON.stringify([request.scope, request.key]))}, 0)`;
  const takeLock =
    waitMs === 0
      ? `SELECT pg_try_advisory_xact_lock(${lock}) AS locked;`
      : `SET LOCAL lock_timeout = '${waitMs}ms';
         SELECT true AS locked FROM pg_advisory_xact_lock(${lock});
         SET LOCAL lock_timeout = 0;`;
  let results: pg.QueryResult[];
  try {
    results = (await client.query(
      `BEGIN;
       ${takeLock}
       SELECT fingerprint, status, headers, body FROM idempotency_keys
        WHERE scope = ${quote(request.scope)} AND key = ${quote(request.key)};
       SAVEPOINT idempotent_work`,
    )) as unknown as pg.QueryResult[];
  } catch (error) {
    if ((error as { code?: string }).code === '55P03') return undefined; // lock_not_available
    throw error;
  }
  const locked = results.find((result) => result.fields[0]?.name === 'locked')!.rows[0].locked as boolean;
  if (!locked) return undefined;
  return { previous: results.at(-2)!.rows[0] as Stored | undefined };
}

/**
 * Runs `work` in a transaction together with the key's record, so the change, its events and the
 * stored response (the bytes `work` rendered) commit or roll back as one. A concurrent request with the
 * same key waits up to `waitMs` for the first to finish (and then replays it); after that it gets 409
 * in-progress. A deterministic refusal is stored as `renderRefusal` renders it; unexpected errors roll
 * everything back and leave no key, so a retry executes safely. The key's statements take two round
 * trips in all: one before `work` (openKey), one storing the response and committing.
 */
export function runIdempotent(
  pool: Pool,
  request: IdempotencyKey,
  waitMs: number,
  work: (client: pg.PoolClient) => Promise<StoredResponse>,
  renderRefusal: (error: AppError) => StoredResponse,
): Promise<Outcome> {
  return withConnection(pool, (client) =>
    rollBackOnError(client, () => runWithKey(client, request, waitMs, work, renderRefusal)),
  );
}

async function runWithKey(
  client: pg.PoolClient,
  request: IdempotencyKey,
  waitMs: number,
  work: (client: pg.PoolClient) => Promise<StoredResponse>,
  renderRefusal: (error: AppError) => StoredResponse,
): Promise<Outcome> {
  const { key } = request;
  const opened = await openKey(client, request, waitMs);
  if (!opened) {
    throw new AppError('idempotency-request-in-progress', {
      detail: `A request with Idempotency-Key "${key}" is still being processed; retry shortly`,
      headers: { 'retry-after': '1' },
    });
  }
  const { previous } = opened;
  if (previous) {
    if (previous.fingerprint !== request.fingerprint) {
      throw new AppError('idempotency-key-reused', {
        detail: `Idempotency-Key "${key}" was already used with a different request`,
      });
    }
    await client.query('COMMIT');
    return {
      response: { status: previous.status, headers: previous.headers, body: previous.body },
      replayed: true,
    };
  }

  let response: StoredResponse;
  try {
    response = await work(client);
  } catch (error) {
    if (!(error instanceof AppError) || !DETERMINISTIC_STATUSES.has(error.status)) throw error;
    await client.query('ROLLBACK TO SAVEPOINT idempotent_work');
    response = renderRefusal(error);
  }
  const values = [request.scope, key, request.fingerprint, String(response.status)]
    .concat(JSON.stringify(response.headers), response.body)
    .map((value) => client.escapeLiteral(value));
  await client.query(
    `INSERT INTO idempotency_keys (scope, key, fingerprint, status, headers, body) VALUES (${values.join(', ')});
     COMMIT`,
  );
  return { response, replayed: false };
}

/** Deletes keys older than `ttlHours`; returns how many. */
export async function purgeIdempotencyKeys(pool: Pool, ttlHours: number): Promise<number> {
  const result = await pool.query(
    `DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)`,
    [ttlHours],
  );
  return result.rowCount ?? 0;
}
