import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyStatementTimeout } from '../../src/platform/database.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

describe('applyStatementTimeout', () => {
  it('is stored with the role for new sessions, also when replicas apply it at the same moment', async () => {
    await Promise.all(Array.from({ length: 6 }, () => applyStatementTimeout(db.url, 4321)));
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      expect((await client.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('4321ms');
    } finally {
      await client.end();
    }
  });
});
