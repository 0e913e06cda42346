// Entrypoint: config → database (embedded or DATABASE_URL) → migrate (MIGRATE_ON_START) → listen → seed
// and API keys once the schema is current; graceful drain and close. With WEB_CONCURRENCY > 1 the
// process forks that many workers, each running all of this but the database start and migrations.
// First: V8's settings, before any other module runs.
import './platform/v8-flags.ts';
import cluster from 'node:cluster';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { buildApp } from './app.ts';
import { type Config, readConfigOrExit } from './config.ts';
import { seedOriginalLoans } from './loans/seed.ts';
import { prepareAuthentication } from './platform/auth.ts';
import { applyStatementTimeout, createPool, type Pool } from './platform/database.ts';
import { type DatabaseTarget, openDatabaseTarget } from './platform/database-target.ts';
import type { Lifecycle } from './platform/lifecycle.ts';
import { serverLogger } from './platform/logging.ts';
import { migrateUp, pendingMigrations } from './platform/migrations.ts';
import { runWorkers, WORKER_READY } from './platform/workers.ts';

const MIGRATION_POLL_MS = 2000;

/**
 * Waits (readiness 503, /api 503) until another step — `npm run db:migrate`, a Job — has migrated;
 * false when the process starts shutting down first. An unreachable database is asked again.
 */
async function waitForMigrations(pool: Pool, logger: Logger, lifecycle: Lifecycle): Promise<boolean> {
  let reported = false;
  while (!lifecycle.shuttingDown) {
    const pending = await pendingMigrations(pool).catch(() => undefined);
    if (pending?.length === 0) return true;
    if (pending && !reported) {
      logger.warn({ pending }, 'waiting for migrations: run npm run db:migrate (MIGRATE_ON_START=false)');
      reported = true;
    }
    await sleep(MIGRATION_POLL_MS);
  }
  return false;
}

async function seed(config: Config, pool: Pool, logger: Logger): Promise<void> {
  const inserted = await seedOriginalLoans(pool, config);
  logger.info({ inserted }, inserted > 0 ? 'seeded the original loans' : 'seed data already present');
}

/** What has to be true before /api serves: the schema, the seed (development), a way to authenticate. */
async function prepare(config: Config, pool: Pool, logger: Logger, lifecycle: Lifecycle): Promise<void> {
  if (!(await waitForMigrations(pool, logger, lifecycle))) return;
  if (config.seedOnStart) await seed(config, pool, logger);
  const authWarning = await prepareAuthentication(pool, config);
  if (authWarning) logger.warn(authWarning);
  lifecycle.starting = false;
}

/** The database (the embedded one started here when there is no DATABASE_URL), migrated if MIGRATE_ON_START. */
async function openDatabase(config: Config, logger: Logger): Promise<DatabaseTarget> {
  const target = await openDatabaseTarget(config, {
    log: (details, message) => logger.info(details, message),
  });
  try {
    if (config.migrateOnStart) {
      const applied = await migrateUp(target.url);
      logger.info({ applied }, applied.length > 0 ? 'migrations applied' : 'database schema is up to date');
    }
    return target;
  } catch (error) {
    await target.stop();
    throw error;
  }
}

function exitAfterStartFailed(logger: Logger, error: unknown): never {
  logger.fatal({ err: error }, `startup failed: ${error instanceof Error ? error.message : String(error)}`);
  logger.flush();
  process.exit(1);
}

/**
 * WEB_CONCURRENCY > 1: the database is opened, migrated and seeded here once, for the workers
 * (platform/workers.ts); two workers seeding at once would collide.
 */
async function runPrimary(config: Config, logger: Logger): Promise<void> {
  const prepareDatabase = async () => {
    const target = await openDatabase(config, logger);
    if (!config.seedOnStart) return target;
    const pool = createPool(target.url, config.database, () => {});
    try {
      // As one process would: a migration run elsewhere (MIGRATE_ON_START=false) may still be pending.
      if (await waitForMigrations(pool, logger, { starting: true, shuttingDown: false })) {
        await seed(config, pool, logger);
      }
      return target;
    } catch (error) {
      await target.stop();
      throw error;
    } finally {
      await pool.end().catch(() => {});
    }
  };
  const target = await prepareDatabase().catch((error) => exitAfterStartFailed(logger, error));
  const code = await runWorkers(config, logger, target);
  if (target.embedded) {
    await target.stop();
    logger.info('embedded PostgreSQL stopped');
  }
  logger.flush();
  process.exit(code);
}

async function main(): Promise<void> {
  const config = readConfigOrExit();
  const logger = serverLogger(config);
  if (config.webConcurrency > 1 && cluster.isPrimary) return runPrimary(config, logger);
  let target: DatabaseTarget | undefined;
  const pools: Pool[] = [];

  try {
    target = await openDatabase(config, logger);
    const databaseUrl = target.url;
    // Directly when a direct URL is given: a pooler's connections opened before would not see it.
    await applyStatementTimeout(
      config.migrationDatabaseUrl ?? databaseUrl,
      config.database.statementTimeoutMs,
    );

    const onIdleError = (error: Error) => logger.warn({ err: error }, 'idle database connection failed');
    const pool = createPool(databaseUrl, config.database, onIdleError);
    pools.push(pool);
    const readPool = config.databaseReadUrl
      ? createPool(config.databaseReadUrl, config.database, onIdleError)
      : pool;
    if (readPool !== pool) pools.push(readPool);

    const lifecycle: Lifecycle = { starting: true, shuttingDown: false };
    const app = await buildApp({ config, pool, readPool, lifecycle, logger });
    // Listening before the API is prepared: the probes answer (readiness 503) while it waits.
    await app.listen({ host: config.host, port: config.port });
    const prepared = prepare(config, pool, logger, lifecycle);

    // Order matters: stop being ready, keep serving while load balancers notice, stop accepting and
    // drain requests, close the pools, then stop the database.
    const shutdown = async (signal: string) => {
      if (lifecycle.shuttingDown) return;
      lifecycle.shuttingDown = true;
      if (config.shutdownDrainDelayMs > 0) {
        logger.info(
          { signal, delayMs: config.shutdownDrainDelayMs },
          'shutting down: not ready, still serving',
        );
        await sleep(config.shutdownDrainDelayMs);
      }
      logger.info({ signal }, 'shutting down: draining in-flight requests');
      setTimeout(() => {
        logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
        process.exit(1);
      }, config.shutdownTimeoutMs).unref();
      await app.close();
      logger.info('http server closed');
      await prepared.catch(() => {});
      for (const open of pools) await open.end();
      logger.info('database pool closed');
      if (target?.embedded) {
        await target.stop();
        logger.info('embedded PostgreSQL stopped');
      }
      logger.flush();
      process.exit(0);
    };
    // `on`, not `once`: a worker gets Ctrl-C from the terminal and again from its primary.
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    process.on('SIGINT', () => void shutdown('SIGINT'));
    await prepared;
    if (lifecycle.shuttingDown) return;
    if (cluster.isWorker) process.send?.(WORKER_READY);
    const base = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
    logger.info({ env: config.env, version: config.version }, `API: ${base}/api/loans  Docs: ${base}/docs`);
  } catch (error) {
    // Close our connections before the database goes away, so nothing is cut off mid-flight.
    for (const open of pools) await open.end().catch(() => {});
    await target?.stop();
    exitAfterStartFailed(logger, error);
  }
}

void main();
