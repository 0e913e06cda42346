// The service with a real streaming standby (PostgreSQL 15, pg_basebackup -R, on loopback) as its read
// pool: lists and stats are read there, every write and every read by id goes to the primary, so a loan is
// readable by id the moment it is created, while a list may lag by the standby's replay delay.
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { createPool, ensureDatabase, type Pool } from '../../src/platform/database.ts';
import { loggerOptions } from '../../src/platform/logging.ts';
import { migrateUp } from '../../src/platform/migrations.ts';
import { testConfig } from '../helpers/app.ts';
import { post, TERMS } from '../helpers/loans.ts';
import {
  type Cluster,
  type ClusterSet,
  createClusterSet,
  postgresClusterMissing,
  queryValue,
  waitForReplay,
} from '../helpers/postgres-cluster.ts';
import { skipWhenMissing, waitFor } from '../helpers/process.ts';

const DATABASE = 'branch_loans';
const PAIRS = 500;
const CONCURRENCY = 10;

const skip = skipWhenMissing('standby tests', postgresClusterMissing());

describe.skipIf(skip)('reading from a streaming standby', () => {
  let clusters: ClusterSet;
  let primary: Cluster;
  let standby: Cluster;
  let pool: Pool;
  let readPool: Pool;
  let app: FastifyInstance;
  const logs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    clusters = await createClusterSet();
    primary = await clusters.primary();
    standby = await clusters.standby(primary);
    // Migrated on the primary only: the schema reaches the standby by replication.
    await ensureDatabase(primary.url(), DATABASE);
    await migrateUp(primary.url(DATABASE));
    await waitForReplay(primary, standby);
    const config = testConfig({ LOG_LEVEL: 'info' });
    pool = createPool(primary.url(DATABASE), config.database, () => {});
    readPool = createPool(standby.url(DATABASE), config.database, () => {});
    const logger = pino(loggerOptions(config), { write: (line: string) => logs.push(JSON.parse(line)) });
    app = await buildApp({ config, pool, readPool, logger });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await pool?.end();
    await readPool?.end();
    await clusters?.stop();
  });

  /** The last statement of each of the app's sessions on `cluster` (pg_stat_activity keeps it when idle). */
  const appStatements = async (cluster: Cluster) => {
    const client = new pg.Client({
      connectionString: cluster.url(DATABASE),
      application_name: 'test-monitor',
    });
    await client.connect();
    try {
      const { rows } = await client.query<{ query: string }>(
        `SELECT query FROM pg_stat_activity WHERE application_name = 'branch-loans'`,
      );
      return rows.map((row) => row.query);
    } finally {
      await client.end();
    }
  };

  const list = async () => {
    const response = await app.inject({ url: '/api/loans?limit=100' });
    expect(response.statusCode, response.body).toBe(200);
    return (response.json() as { id: string }[]).map((loan) => loan.id);
  };
  const totalLoans = async () => {
    const response = await app.inject({ url: '/api/stats' });
    expect(response.statusCode, response.body).toBe(200);
    return (response.json() as { total_loans: number }).total_loans;
  };

  it('lists and stats are read on the standby: with its replay paused they miss a loan that GET by id shows', async () => {
    const first = await post(app, '/api/loans', { ...TERMS, borrower_id: 'usr_standby_1' });
    expect(first.statusCode, first.body).toBe(201);
    await waitForReplay(primary, standby);
    expect(await list()).toEqual([first.json().id]);
    // The standby's own sessions ran the list and then the stats query.
    expect(await appStatements(standby)).toContainEqual(expect.stringMatching(/FROM loans .*ORDER BY/));
    expect(await totalLoans()).toBe(1);
    expect(await appStatements(standby)).toContainEqual(expect.stringContaining('FROM loan_stats'));

    await queryValue(standby, 'SELECT pg_wal_replay_pause()::text AS value');
    try {
      await waitFor('the standby to pause replay', async () => {
        const state = await queryValue<string>(standby, 'SELECT pg_get_wal_replay_pause_state() AS value');
        return state === 'paused';
      });
      const second = await post(app, '/api/loans', { ...TERMS, borrower_id: 'usr_standby_2' });
      expect(second.statusCode, second.body).toBe(201);
      const secondId: string = second.json().id;

      const byId = await app.inject({ url: `/api/loans/${secondId}` });
      expect(byId.statusCode, byId.body).toBe(200);
      expect(byId.json().id).toBe(secondId);
      expect(await list()).toEqual([first.json().id]);
      expect(await totalLoans()).toBe(1);

      await queryValue(standby, 'SELECT pg_wal_replay_resume()::text AS value');
      await waitForReplay(primary, standby);
      expect(await list()).toEqual([secondId, first.json().id]);
      expect(await totalLoans()).toBe(2);
    } finally {
      await queryValue(standby, 'SELECT pg_wal_replay_resume()::text AS value');
    }
  });

  it(`${PAIRS} creates, each read back by id at once, are never stale; no write reaches the standby`, async () => {
    const stale: string[] = [];
    let next = 0;
    const worker = async () => {
      for (let index = next++; index < PAIRS; index = next++) {
        const created = await post(app, '/api/loans', { ...TERMS, borrower_id: `usr_pair_${index}` });
        if (created.statusCode !== 201) {
          stale.push(`create ${index}: ${created.statusCode} ${created.body}`);
          continue;
        }
        const read = await app.inject({ url: `/api/loans/${created.json().id}` });
        if (read.statusCode !== 200 || read.body !== created.body) {
          stale.push(`read ${index}: ${read.statusCode} ${read.body}, created ${created.body}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(stale).toEqual([]);

    // A write on the standby fails with 25006 (read_only_sql_transaction), which the standby logs as an
    // ERROR and the app as a 503 with a 'database unavailable' warning: none of them happened. (The code
    // itself is in no app log line; searching the lines for it matched random request ids.)
    expect(await standby.log()).not.toMatch(/ERROR|read-only transaction/);
    expect(logs.filter((line) => line.msg === 'database unavailable')).toEqual([]);
    expect(logs.filter((line) => /read-only transaction/.test(JSON.stringify(line)))).toEqual([]);
    expect(logs.filter((line) => Number(line.status) >= 500)).toEqual([]);
    await waitForReplay(primary, standby);
    expect(await totalLoans()).toBe(PAIRS + 2);
  });
});
