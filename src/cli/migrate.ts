// npm run db:migrate [-- --database-url URL]: applies pending migrations to that database, to
// MIGRATION_DATABASE_URL (direct, not through a pooler: migrations hold a session advisory lock), to
// DATABASE_URL, or to the embedded database; then stores the service's statement timeout with its role.
import { readConfigOrExit } from '../config.ts';
import { applyStatementTimeout } from '../platform/database.ts';
import { openDatabaseTarget } from '../platform/database-target.ts';
import { migrateUp } from '../platform/migrations.ts';
import { argsOrExit, parseArgs } from './args.ts';

const USAGE = 'usage: npm run db:migrate -- [--database-url postgres://…]';

async function main(argv: readonly string[]): Promise<void> {
  const args = argsOrExit('migrate', USAGE, () =>
    parseArgs(argv, { 'database-url': { type: 'string' }, help: { type: 'boolean', short: 'h' } }),
  );
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const config = readConfigOrExit({ databaseUrl: args['database-url'] });
  const url = args['database-url'] ?? config.migrationDatabaseUrl;
  const target = await openDatabaseTarget(config, {
    url,
    log: (_details, message) => console.error(message),
  });
  try {
    const applied = await migrateUp(target.url);
    await applyStatementTimeout(target.url, config.database.statementTimeoutMs);
    if (applied.length === 0) console.log('schema is up to date');
    for (const name of applied) console.log(`applied migration ${name}`);
  } finally {
    await target.stop();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`migration failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
