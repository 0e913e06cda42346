// Entrypoint: config → database (embedded or DATABASE_URL) → migrate → seed → API keys → listen; graceful close.
import pino from 'pino';
import { buildApp } from './app.ts';
import { readConfigOrExit } from './config.ts';
import { seedOriginalLoans } from './loans/seed.ts';
import { prepareAuthentication } from './platform/auth.ts';
import { createPool, type Pool } from './platform/database.ts';
import { type DatabaseTarget, openDatabaseTarget } from './platform/database-target.ts';
import { loggerOptions } from './platform/logging.ts';
import { migrateUp } from './platform/migrations.ts';

async function main(): Promise<void> {
  const config = readConfigOrExit();
  const logger = pino(loggerOptions(config));
  let target: DatabaseTarget | undefined;
  let pool: Pool | undefined;

  try {
    target = await openDatabaseTarget(config, { log: (details, message) => logger.info(details, message) });
    const databaseUrl = target.url;

    const applied = await migrateUp(databaseUrl);
    logger.info({ applied }, applied.length > 0 ? 'migrations applied' : 'database schema is up to date');

    const openPool = createPool(databaseUrl, config.database, (error) =>
      logger.warn({ err: error }, 'idle database connection failed'),
    );
    pool = openPool;
    if (config.seedOnStart) {
      const inserted = await seedOriginalLoans(openPool, config);
      logger.info({ inserted }, inserted > 0 ? 'seeded the original loans' : 'seed data already present');
    }
    const authWarning = await prepareAuthentication(openPool, config);
    if (authWarning) logger.warn(authWarning);

    const lifecycle = { shuttingDown: false };
    const app = await buildApp({ config, pool: openPool, lifecycle, logger });
    await app.listen({ host: config.host, port: config.port });
    const base = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
    logger.info({ env: config.env, version: config.version }, `API: ${base}/api/loans  Docs: ${base}/docs`);

    // Order matters: stop accepting and drain requests, close the pool, then stop the database.
    const shutdown = async (signal: string) => {
      if (lifecycle.shuttingDown) return;
      lifecycle.shuttingDown = true;
      logger.info({ signal }, 'shutting down: draining in-flight requests');
      setTimeout(() => {
        logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
        process.exit(1);
      }, config.shutdownTimeoutMs).unref();
      await app.close();
      logger.info('http server closed');
      await openPool.end();
      logger.info('database pool closed');
      if (target?.embedded) {
        await target.stop();
        logger.info('embedded PostgreSQL stopped');
      }
      logger.flush();
      process.exit(0);
    };
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    process.once('SIGINT', () => void shutdown('SIGINT'));
  } catch (error) {
    logger.fatal({ err: error }, `startup failed: ${error instanceof Error ? error.message : String(error)}`);
    // Close our connections before the database goes away, so nothing is cut off mid-flight.
    await pool?.end().catch(() => {});
    await target?.stop();
    logger.flush();
    process.exit(1);
  }
}

void main();
