import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateUp, migrationNames, pendingMigrations } from '../../src/platform/migrations.ts';
import { createEmptyDatabase, type TestDatabase } from '../helpers/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createEmptyDatabase();
});
afterAll(() => db.drop());

async function query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe('migrations', () => {
  it('apply once when two processes migrate at the same time', async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    expect(await pendingMigrations(client)).toEqual(migrationNames());
    await client.end();

    const [first, second] = await Promise.all([migrateUp(db.url), migrateUp(db.url)]);
    expect([...first, ...second].sort()).toEqual(migrationNames());
    const applied = await query<{ name: string }>('SELECT name FROM pgmigrations ORDER BY name');
    expect(applied.map((row) => row.name)).toEqual(migrationNames());
    expect(await migrateUp(db.url)).toEqual([]);
  });

  it('enforce the validation rules in the schema too', async () => {
    const insert = (columns: string) =>
      query(
        `INSERT INTO loans (borrower_id, currency, amount_minor, term_months, interest_rate_apr) VALUES (${columns})`,
      );
    await expect(insert(`'ok', 'INR', 0, 12, 10`)).rejects.toThrow(/check constraint/);
    await expect(insert(`'ok', 'INR', 100, 0, 10`)).rejects.toThrow(/check constraint/);
    await expect(insert(`'ok', 'INR', 100, 361, 10`)).rejects.toThrow(/check constraint/);
    await expect(insert(`'ok', 'INR', 100, 12, 100.01`)).rejects.toThrow(
      /check constraint|numeric field overflow/,
    );
    await expect(insert(`'ok', 'inr', 100, 12, 10`)).rejects.toThrow(/check constraint/);
    await expect(insert(`'bad id', 'INR', 100, 12, 10`)).rejects.toThrow(/check constraint/);
    await expect(
      query(`INSERT INTO loans (borrower_id, currency, amount_minor, term_months, interest_rate_apr, status)
             VALUES ('ok', 'INR', 100, 12, 10, 'open')`),
    ).rejects.toThrow(/check constraint/);
  });

  it('maintain updated_at and the version on every update', async () => {
    const [created] = await query<{ id: string; version: number; updated_at: Date }>(
      `INSERT INTO loans (borrower_id, currency, amount_minor, term_months, interest_rate_apr, created_at, updated_at)
       VALUES ('ok', 'INR', 100, 12, 10, '2020-01-01Z', '2020-01-01Z') RETURNING id, version, updated_at`,
    );
    const [updated] = await query<{ version: number; updated_at: Date }>(
      `UPDATE loans SET status = 'approved' WHERE id = $1 RETURNING version, updated_at`,
      [created!.id],
    );
    expect(updated!.version).toBe(created!.version + 1);
    expect(updated!.updated_at.getTime()).toBeGreaterThan(created!.updated_at.getTime());
    const [precision] = await query<{ exact: boolean }>(
      `SELECT updated_at = date_trunc('milliseconds', updated_at) AS exact FROM loans WHERE id = $1`,
      [created!.id],
    );
    expect(precision!.exact).toBe(true);
  });
});
