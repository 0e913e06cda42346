// Loans written by the original service (schema 0001) must, once migrated to head, answer exactly like
// loans that went through the same steps at head: same dates, balances, schedule and stats.
import type { FastifyInstance } from 'fastify';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { createPool, type Pool } from '../../src/platform/database.ts';
import { MIGRATIONS_DIR, migrateUp } from '../../src/platform/migrations.ts';
import { buildTestApp, type TestApp, testConfig } from '../helpers/app.ts';
import { createEmptyDatabase, type TestDatabase } from '../helpers/database.ts';
import { loanIn } from '../helpers/loans.ts';

// Applied for and disbursed at 22:30 UTC on 31 March: already 1 April east of UTC.
const CREATED = '2026-03-31T22:30:00.000Z';
const TERMS = { currency: 'KES', amount: '1200.00', term_months: 6, interest_rate_apr: '24.00' };
let now = new Date(CREATED);
const clock = () => now;

let legacyDb: TestDatabase;
let legacyPool: Pool;
let legacy: FastifyInstance;
let head: TestApp;
const legacyIds: Record<string, string> = {};
const headIds: Record<string, string> = {};

async function sql(url: string, text: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  legacyDb = await createEmptyDatabase();
  // The migrating sessions run in a time zone ahead of UTC, as a server's default may be.
  await sql(legacyDb.url, `ALTER DATABASE ${legacyDb.name} SET timezone = 'Asia/Kolkata'`);
  await runner({
    databaseUrl: legacyDb.url,
    dir: MIGRATIONS_DIR,
    migrationsTable: 'pgmigrations',
    direction: 'up',
    count: 1,
    log: () => {},
  });
  const statuses = ['pending', 'disbursed', 'defaulted', 'repaid'];
  await sql(
    legacyDb.url,
    `INSERT INTO loans (id, borrower_id, currency, amount_minor, term_months, interest_rate_apr, status, created_at, updated_at)
     SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, 'usr_legacy', 'KES', 120000, 6, 24.00,
            (ARRAY['${statuses.join("','")}'])[n], '${CREATED}', '${CREATED}'
       FROM generate_series(1, 4) AS n`,
  );
  statuses.forEach((status, i) => {
    legacyIds[status] = `00000000-0000-0000-0000-00000000000${i + 1}`;
  });
  await migrateUp(legacyDb.url);
  const config = testConfig({ LOG_LEVEL: 'silent' });
  legacyPool = createPool(legacyDb.url, config.database, () => {});
  legacy = await buildApp({ config, pool: legacyPool, clock });

  head = await buildTestApp({ LOG_LEVEL: 'silent' }, clock);
  for (const status of statuses) {
    headIds[status] = await loanIn(
      head.app,
      status as 'pending' | 'disbursed' | 'defaulted' | 'repaid',
      { ...TERMS, borrower_id: 'usr_legacy' },
      '2026-03-31',
    );
  }
  now = new Date('2026-06-15T10:00:00.000Z');
});

afterAll(async () => {
  await legacy.close();
  await legacyPool.end();
  await legacyDb.drop();
  await head.close();
});

const get = async (app: FastifyInstance, url: string) => {
  const response = await app.inject({ url });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
};

/** What a migrated loan must answer exactly like a loan at head (its timestamps differ, by design). */
const COMPARED = [
  'status',
  'amount',
  'disbursed_on',
  'outstanding_principal',
  'total_repaid',
  'next_due_date',
  'days_past_due',
];

describe('loans from the original schema, migrated to head', () => {
  for (const status of ['disbursed', 'defaulted']) {
    it(`a ${status} loan has the balance, dates and schedule of one ${status} at head`, async () => {
      const pick = (loan: Record<string, unknown>) =>
        Object.fromEntries(COMPARED.map((field) => [field, loan[field]]));
      const migrated = pick(await get(legacy, `/api/loans/${legacyIds[status]}`));
      expect(migrated).toEqual(pick(await get(head.app, `/api/loans/${headIds[status]}`)));
      expect(migrated).toMatchObject({ disbursed_on: '2026-03-31', outstanding_principal: '1200.00' });
      expect(await get(legacy, `/api/loans/${legacyIds[status]}/schedule`)).toEqual(
        await get(head.app, `/api/loans/${headIds[status]}/schedule`),
      );
    });
  }

  it('counts them in stats and PAR30 like loans created at head', async () => {
    const stats = async (app: FastifyInstance) => {
      const { by_status, amounts } = await get(app, '/api/stats?currency=KES');
      return { by_status, outstanding: amounts.KES.outstanding_principal, par30: amounts.KES.par30_ratio };
    };
    const migrated = await stats(legacy);
    expect(migrated).toEqual(await stats(head.app));
    expect(migrated).toMatchObject({ outstanding: '2400.00', par30: '1.0000' });
  });

  it('takes a repayment on a migrated loan as on one created at head', async () => {
    const pay = async (app: FastifyInstance, id: string) => {
      const response = await app.inject({
        method: 'POST',
        url: `/api/loans/${id}/repayments`,
        headers: { 'content-type': 'application/json', 'idempotency-key': `legacy-${id}` },
        payload: JSON.stringify({ amount: '500.00', paid_on: '2026-06-01' }),
      });
      expect(response.statusCode, response.body).toBe(201);
      const { amount, interest, principal } = response.json();
      const loan = await get(app, `/api/loans/${id}`);
      return {
        amount,
        interest,
        principal,
        outstanding: loan.outstanding_principal,
        next: loan.next_due_date,
      };
    };
    expect(await pay(legacy, legacyIds.disbursed!)).toEqual(await pay(head.app, headIds.disbursed!));
  });
});
