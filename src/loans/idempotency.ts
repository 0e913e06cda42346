import { createHash } from 'node:crypto';
import type pg from 'pg';
import { type Pool, withTransaction } from '../platform/database.ts';
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

/**
 * Takes the key's transaction-scoped lock, waiting up to `waitMs` for a request that holds it; false
 * when it stays held. A wait of 0 must not become `lock_timeout = 0`, which PostgreSQL reads as "no limit".
 */
async function lockKey(client: pg.PoolClient, name: string, waitMs: number): Promise<boolean> {
  if (waitMs === 0) {
    const tried = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked',
      [name],
    );
    return tried.rows[0]!.locked;
  }
  await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${waitMs}ms`]);
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [name]);
  } catch (error) {
    if ((error as { code?: string }).code === '55P03') return false; // lock_not_available
    throw error;
  }
  await client.query(`SELECT set_config('lock_timeout', '0', true)`);
  return true;
}

/**
 * Runs `work` in a transaction together with the key's record, so the change, its events and the
 * stored response (the bytes `work` rendered) commit or roll back as one. A concurrent request with the
 * same key waits up to `waitMs` for the first to finish (and then replays it); after that it gets 409
 * in-progress. A deterministic refusal is stored as `renderRefusal` renders it; unexpected errors roll
 * everything back and leave no key, so a retry executes safely.
 */
export async function runIdempotent(
  pool: Pool,
  request: IdempotencyKey,
  waitMs: number,
  work: (client: pg.PoolClient) => Promise<StoredResponse>,
  renderRefusal: (error: AppError) => StoredResponse,
): Promise<Outcome> {
  const { key } = request;
  return withTransaction(pool, async (client) => {
    if (!(await lockKey(client, JSON.stringify([request.scope, key]), waitMs))) {
      throw new AppError('idempotency-request-in-progress', {
        detail: `A request with Idempotency-Key "${key}" is still being processed; retry shortly`,
        headers: { 'retry-after': '1' },
      });
    }

    const stored = await client.query<StoredResponse & { fingerprint: string }>(
      'SELECT fingerprint, status, headers, body FROM idempotency_keys WHERE scope = $1 AND key = $2',
      [request.scope, key],
    );
    const previous = stored.rows[0];
    if (previous) {
      if (previous.fingerprint !== request.fingerprint) {
        throw new AppError('idempotency-key-reused', {
          detail: `Idempotency-Key "${key}" was already used with a different request`,
        });
      }
      return {
        response: { status: previous.status, headers: previous.headers, body: previous.body },
        replayed: true,
      };
    }

    await client.query('SAVEPOINT idempotent_work');
    let response: StoredResponse;
    try {
      response = await work(client);
    } catch (error) {
      if (!(error instanceof AppError) || !DETERMINISTIC_STATUSES.has(error.status)) throw error;
      await client.query('ROLLBACK TO SAVEPOINT idempotent_work');
      response = renderRefusal(error);
    }
    await client.query(
      `INSERT INTO idempotency_keys (scope, key, fingerprint, status, headers, body) VALUES ($1, $2, $3, $4, $5, $6)`,
      [
        request.scope,
        key,
        request.fingerprint,
        response.status,
        JSON.stringify(response.headers),
        response.body,
      ],
    );
    return { response, replayed: false };
  });
}

/** Deletes keys older than `ttlHours`; returns how many. */
export async function purgeIdempotencyKeys(pool: Pool, ttlHours: number): Promise<number> {
  const result = await pool.query(
    `DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)`,
    [ttlHours],
  );
  return result.rowCount ?? 0;
}
