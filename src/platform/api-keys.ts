// API keys: `bl_<env>_<random>` with 256 random bits, stored as a prefix and a SHA-256 hash only.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from './database.ts';
import type { Rfc3339 } from './timestamps.ts';

export const ROLES = ['viewer', 'clerk', 'officer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

const KEY = /^(bl_[a-z]+_[A-Za-z0-9_-]{8})[A-Za-z0-9_-]{35,}$/;
const RANDOM_BYTES = 32;

export interface ApiKey {
  id: string;
  prefix: string;
  name: string;
  role: Role;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  expiresAt: Date | null;
}

/** A new key for the environment tagged `tag`: its secret is this string, shown once. */
export function generateKey(tag: string): string {
  return `bl_${tag}_${randomBytes(RANDOM_BYTES).toString('base64url')}`;
}

/** The lookup prefix of a well-formed key; undefined for anything else. */
export function keyPrefix(key: string): string | undefined {
  return KEY.exec(key)?.[1];
}

const sha256 = (key: string) => createHash('sha256').update(key).digest();

interface ApiKeyRow {
  id: string;
  prefix: string;
  name: string;
  role: Role;
  created_at: Rfc3339;
  last_used_at: Rfc3339 | null;
  revoked_at: Rfc3339 | null;
  expires_at: Rfc3339 | null;
}
const COLUMNS = 'id, prefix, name, role, created_at, last_used_at, revoked_at, expires_at';
const dateOf = (value: Rfc3339 | null) => (value === null ? null : new Date(value));
const toApiKey = (row: ApiKeyRow): ApiKey => ({
  id: row.id,
  prefix: row.prefix,
  name: row.name,
  role: row.role,
  createdAt: new Date(row.created_at),
  lastUsedAt: dateOf(row.last_used_at),
  revokedAt: dateOf(row.revoked_at),
  expiresAt: dateOf(row.expires_at),
});

/** Stores `key` (only its prefix and hash). With `ifAbsent`, a key already stored is left as it is. */
export async function insertKey(
  db: Queryable,
  key: string,
  details: { name: string; role: Role; expiresAt?: Date | undefined },
  options: { ifAbsent?: boolean } = {},
): Promise<ApiKey | undefined> {
  const prefix = keyPrefix(key);
  if (!prefix) throw new RangeError('not an API key of the form bl_<env>_<random>');
  const result = await db.query<ApiKeyRow>(
    `INSERT INTO api_keys (prefix, secret_sha256, name, role, expires_at) VALUES ($1, $2, $3, $4, $5)
     ${options.ifAbsent ? 'ON CONFLICT (prefix) DO NOTHING' : ''} RETURNING ${COLUMNS}`,
    [prefix, sha256(key), details.name, details.role, details.expiresAt ?? null],
  );
  return result.rows[0] && toApiKey(result.rows[0]);
}

/**
 * The stored key that `key` is, when it is active (not revoked, not expired); undefined otherwise. The
 * hashes are compared in constant time.
 */
export async function findActiveKey(db: Queryable, key: string): Promise<ApiKey | undefined> {
  const prefix = keyPrefix(key);
  if (!prefix) return undefined;
  const result = await db.query<ApiKeyRow & { secret_sha256: Buffer }>(
    `SELECT ${COLUMNS}, secret_sha256 FROM api_keys
      WHERE prefix = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
    [prefix],
  );
  const row = result.rows[0];
  if (!row || !timingSafeEqual(row.secret_sha256, sha256(key))) return undefined;
  return toApiKey(row);
}

export async function listKeys(db: Queryable): Promise<ApiKey[]> {
  const result = await db.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys ORDER BY created_at, prefix`);
  return result.rows.map(toApiKey);
}

/** Revokes key `id`; false when there is no such key. Revoking twice keeps the first time. */
export async function revokeKey(db: Queryable, id: string): Promise<boolean> {
  const result = await db.query(
    `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, date_trunc('milliseconds', now())) WHERE id = $1`,
    [id],
  );
  return result.rowCount === 1;
}

export async function countActiveKeys(db: Queryable): Promise<number> {
  const result = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
  );
  return Number(result.rows[0]!.n);
}

/** Records that key `id` was used, at most once a minute: the write is skipped while the last one is recent. */
export async function touchKey(db: Queryable, id: string): Promise<void> {
  await db.query(
    `UPDATE api_keys SET last_used_at = date_trunc('milliseconds', now())
      WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`,
    [id],
  );
}
