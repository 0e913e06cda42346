import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Queryable } from './database.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));
const MIGRATIONS_TABLE = 'pgmigrations';

/** Migration names as node-pg-migrate records them (file name without .sql). */
export function migrationNames(): string[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((file) => file.endsWith('.sql'))
    .map((file) => file.slice(0, -'.sql'.length))
    .sort();
}

/**
 * Applies pending migrations. An advisory lock makes concurrent callers wait for each other,
 * so several replicas can start at once.
 */
export async function migrateUp(
  databaseUrl: string,
  log: (message: string) => void = () => {},
): Promise<string[]> {
  // Loaded only to migrate: the server reads pending migrations without it.
  const { runner } = await import('node-pg-migrate');
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    migrationsTable: MIGRATIONS_TABLE,
    direction: 'up',
    count: Number.POSITIVE_INFINITY,
    singleTransaction: true,
    advisoryLockMode: 'wait',
    checkOrder: true,
    verbose: false,
    log,
  });
  return applied.map((migration) => migration.name);
}

/** Names of migrations whose files exist but which the database has not applied. */
export async function pendingMigrations(db: Queryable): Promise<string[]> {
  const exists = await db.query<{ table: string | null }>('SELECT to_regclass($1) AS table', [
    MIGRATIONS_TABLE,
  ]);
  const applied = new Set<string>();
  if (exists.rows[0]?.table) {
    const rows = await db.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE}`);
    for (const row of rows.rows) applied.add(row.name);
  }
  return migrationNames().filter((name) => !applied.has(name));
}
