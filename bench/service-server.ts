// Forked by `npm run bench`: the real service (buildApp with its pool, every plugin and hook) on a
// random loopback port, in a process of its own so that it never shares an event loop with the load.
// Configured as in production, on the run's database: `--database-url URL`.
import { buildApp } from '../src/app.ts';
import { argsOrExit, parseArgs, UsageError } from '../src/cli/args.ts';
import { readConfigOrExit } from '../src/config.ts';
import { createPool } from '../src/platform/database.ts';

const USAGE = 'usage: node --import tsx bench/service-server.ts --database-url postgres://…';

const databaseUrl = argsOrExit('service-server', USAGE, () => {
  const url = parseArgs(process.argv.slice(2), { 'database-url': { type: 'string' } })['database-url'];
  if (url === undefined) throw new UsageError('--database-url is required');
  return url;
});
const config = readConfigOrExit({ env: 'production', databaseUrl });
const pool = createPool(databaseUrl, config.database, () => {});
const app = await buildApp({ config, pool });
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.send?.({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 });

const stop = async () => {
  await app.close();
  await pool.end();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
// The bench went away: do not outlive it.
process.on('disconnect', () => void stop());
