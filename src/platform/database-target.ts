import { realpath } from 'node:fs/promises';
import pg from 'pg';
import type { Config } from '../config.ts';
import { ensureDatabase, withDatabase } from './database.ts';
import { embeddedAdminUrl, startEmbeddedPostgres } from './embedded-postgres.ts';
import { type DataDirLocation, locateDataDir, runsAsPostgresUser } from './embedded-postgres-locations.ts';

const EMBEDDED_DATABASE_NAME = 'branch_loans';

export interface DatabaseTarget {
  url: string;
  /** True when this process started the embedded server (and `stop` stops it). */
  embedded: boolean;
  /** Stops the embedded server, if one was started; call it after the last pool has ended. */
  stop(): Promise<void>;
}

type Log = (details: Record<string, unknown>, message: string) => void;

function startingMessage(configuredDir: string, { dataDir, blockedBy }: DataDirLocation): string {
  if (blockedBy === undefined) return 'starting embedded PostgreSQL';
  return (
    `starting embedded PostgreSQL with its data in ${dataDir}, linked from ${configuredDir}: ` +
    `the postgres user it runs as cannot enter ${blockedBy}`
  );
}

/**
 * The database to use: `url` when given, else DATABASE_URL, else an embedded PostgreSQL started here,
 * with the application database created on it.
 */
export async function openDatabaseTarget(
  config: Config,
  options: { url?: string | undefined; log?: Log } = {},
): Promise<DatabaseTarget> {
  const log = options.log ?? (() => {});
  const url = options.url ?? config.databaseUrl;
  if (url !== undefined) return { url, embedded: false, stop: async () => {} };

  const location = locateDataDir(config.embedded.dataDir, runsAsPostgresUser());
  const running = await runningEmbeddedServer(config.embedded.port, location.dataDir);
  if (running) {
    log(
      { dataDir: location.dataDir, port: config.embedded.port },
      'using the embedded PostgreSQL already running',
    );
    await ensureDatabase(running, EMBEDDED_DATABASE_NAME);
    return { url: withDatabase(running, EMBEDDED_DATABASE_NAME), embedded: false, stop: async () => {} };
  }
  log(
    { dataDir: location.dataDir, port: config.embedded.port },
    startingMessage(config.embedded.dataDir, location),
  );
  const server = await startEmbeddedPostgres(config.embedded);
  try {
    await ensureDatabase(server.adminUrl, EMBEDDED_DATABASE_NAME);
  } catch (error) {
    await server.stop();
    throw error;
  }
  const embeddedUrl = withDatabase(server.adminUrl, EMBEDDED_DATABASE_NAME);
  log({ url: embeddedUrl }, 'embedded PostgreSQL is ready');
  return { url: embeddedUrl, embedded: true, stop: () => server.stop() };
}

/**
 * The admin URL of an embedded server already serving `dataDir` on `port` (the service runs while a CLI
 * such as `npm run keys` is used), so that the CLI shares it instead of failing on the locked directory.
 */
async function runningEmbeddedServer(port: number, dataDir: string): Promise<string | undefined> {
  const adminUrl = embeddedAdminUrl(port);
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ dir: string }>(`SELECT current_setting('data_directory') AS dir`);
    const [served, ours] = await Promise.all([realpath(rows[0]!.dir), realpath(dataDir)]);
    return served === ours ? adminUrl : undefined;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => {});
  }
}
