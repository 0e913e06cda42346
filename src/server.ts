// Entrypoint: config → database (embedded or DATABASE_URL) → migrate → seed → listen; graceful close.
import pino from 'pino';
import { buildApp } from './app.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { seedOriginalLoans } from './loans/seed.ts';
import { createPool, ensureDatabase, withDatabase } from './platform/database.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './platform/embedded-postgres.ts';
import { loggerOptions } from './platform/logging.ts';
import { migrateUp } from './platform/migrations.ts';

const EMBEDDED_DATABASE_NAME = 'branch_loans';

function readConfig(): Config {
  try {
    return loadConfig(process.env, { stdoutIsTty: process.stdout.isTTY });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Invalid configuration: ${error.message}`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  const logger = pino(loggerOptions(config));
  let embedded: EmbeddedDatabase | undefined;

  try {
    let databaseUrl = config.databaseUrl;
    if (databaseUrl === undefined) {
      logger.info(
        { dataDir: config.embedded.dataDir, port: config.embedded.port },
        'starting embedded PostgreSQL',
      );
      embedded = await startEmbeddedPostgres(config.embedded);
      await ensureDatabase(embedded.adminUrl, EMBEDDED_DATABASE_NAME);
      databaseUrl = withDatabase(embedded.adminUrl, EMBEDDED_DATABASE_NAME);
      logger.info({ url: databaseUrl }, 'embedded PostgreSQL is ready');
    }

    const applied = await migrateUp(databaseUrl);
    logger.info({ applied }, applied.length > 0 ? 'migrations applied' : 'database schema is up to date');

    const pool = createPool(databaseUrl, config.database, (error) =>
      logger.warn({ err: error }, 'idle database connection failed'),
    );
    if (config.seedOnStart) {
      const inserted = await seedOriginalLoans(pool);
      logger.info({ inserted }, inserted > 0 ? 'seeded the original loans' : 'seed data already present');
    }

    const lifecycle = { shuttingDown: false };
    const app = await buildApp({ config, pool, lifecycle, logger });
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
      await pool.end();
      logger.info('database pool closed');
      if (embedded) {
        await embedded.stop();
        logger.info('embedded PostgreSQL stopped');
      }
      logger.flush();
      process.exit(0);
    };
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    process.once('SIGINT', () => void shutdown('SIGINT'));
  } catch (error) {
    logger.fatal({ err: error }, `startup failed: ${error instanceof Error ? error.message : String(error)}`);
    await embedded?.stop();
    logger.flush();
    process.exit(1);
  }
}

void main();
