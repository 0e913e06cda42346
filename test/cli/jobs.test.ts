// npm run jobs -- purge-idempotency-keys, run once as a process on a database of its own.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

const jobs = (env: Record<string, string>, ...args: string[]) =>
  runCli('jobs', args, { DATABASE_URL: db.url, ...env });

describe('npm run jobs', () => {
  it('purges the idempotency keys older than IDEMPOTENCY_TTL_HOURS, once', async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(
        `INSERT INTO idempotency_keys (scope, key, fingerprint, status, headers, body, created_at)
         SELECT 'anonymous', 'k' || h, 'f', 201, '{}', '{}', now() - make_interval(hours => h)
           FROM unnest(ARRAY[1, 30, 47, 49, 100]) AS h`,
      );
      expect(await jobs({ IDEMPOTENCY_TTL_HOURS: '48' }, 'purge-idempotency-keys')).toEqual({
        code: 0,
        stdout: 'purge-idempotency-keys: 2 rows\n',
        stderr: '',
      });
      const left = await client.query('SELECT key FROM idempotency_keys ORDER BY key');
      expect(left.rows.map((row) => row.key)).toEqual(['k1', 'k30', 'k47']);
    } finally {
      await client.end();
    }
  });

  it('names the jobs it knows when asked for another', async () => {
    const result = await jobs({}, 'vacuum');
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('jobs: unknown job "vacuum"; usage: npm run jobs -- purge-idempotency-keys\n');
  });
});
