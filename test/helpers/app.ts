import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildApp } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { createPool, type Pool } from '../../src/platform/database.ts';
import type { Lifecycle } from '../../src/platform/lifecycle.ts';
import { loggerOptions } from '../../src/platform/logging.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';

export interface TestApp {
  app: FastifyInstance;
  pool: Pool;
  config: Config;
  db: TestDatabase;
  lifecycle: Lifecycle;
  /** Every log line the app wrote, parsed. */
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ APP_ENV: 'test', DATABASE_URL: 'postgres://unused@127.0.0.1:1/unused', ...env });
}

/** The app on a fresh database of its own, with its logs captured. */
export async function buildTestApp(env: Record<string, string> = {}, clock?: () => Date): Promise<TestApp> {
  const db = await createTestDatabase();
  const config = testConfig({ LOG_LEVEL: 'info', ...env });
  const pool = createPool(db.url, config.database, () => {});
  const logs: Record<string, unknown>[] = [];
  const logger = pino(loggerOptions(config), { write: (line: string) => logs.push(JSON.parse(line)) });
  const lifecycle = { shuttingDown: false };
  const app = await buildApp({ config, pool, lifecycle, logger, clock });
  return {
    app,
    pool,
    config,
    db,
    lifecycle,
    logs,
    async close() {
      await app.close();
      await pool.end();
      await db.drop();
    },
  };
}

export const JSON_HEADERS = { 'content-type': 'application/json' };
