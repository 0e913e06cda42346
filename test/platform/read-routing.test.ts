// DATABASE_READ_URL serves lists and stats only; GET by id, companions and every change use the primary.
// Two databases stand in for a primary and a standby that has not replayed the latest changes yet.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { createPool, type Pool } from '../../src/platform/database.ts';
import { JSON_HEADERS, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { TERMS } from '../helpers/loans.ts';

let primary: TestDatabase;
let standby: TestDatabase;
let pool: Pool;
let readPool: Pool;
let app: FastifyInstance;

beforeAll(async () => {
  [primary, standby] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  const config = testConfig({ LOG_LEVEL: 'silent' });
  pool = createPool(primary.url, config.database, () => {});
  readPool = createPool(standby.url, config.database, () => {});
  app = await buildApp({ config, pool, readPool });
});
afterAll(async () => {
  await app.close();
  await Promise.all([pool.end(), readPool.end()]);
  await Promise.all([primary.drop(), standby.drop()]);
});

describe('read routing', () => {
  it('writes to the primary and reads a loan back from it at once; lists and stats come from the read pool', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: JSON_HEADERS,
      payload: TERMS,
    });
    expect(created.statusCode).toBe(201);
    const { id } = created.json();
    expect((await pool.query('SELECT count(*)::int AS n FROM loans')).rows[0].n).toBe(1);

    for (const url of [`/api/loans/${id}`, `/api/loans/${id}/events`, `/api/loans/${id}/schedule`]) {
      expect((await app.inject({ url })).statusCode, url).toBe(200);
    }
    expect((await app.inject({ method: 'POST', url: `/api/loans/${id}/approve` })).statusCode).toBe(200);

    // The "standby" has none of it yet: the list and the stats read there.
    expect((await app.inject({ url: '/api/loans' })).json()).toEqual([]);
    expect((await app.inject({ url: '/api/stats' })).json().total_loans).toBe(0);
  });
});
