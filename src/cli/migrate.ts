// npm run db:migrate: applies pending migrations to DATABASE_URL, or to the embedded database.
import { openDatabaseTarget } from '../platform/database-target.ts';
import { migrateUp } from '../platform/migrations.ts';
import { readConfigOrExit } from './cli-config.ts';

async function main(): Promise<void> {
  const config = readConfigOrExit();
  const target = await openDatabaseTarget(config, { log: (_details, message) => console.error(message) });
  try {
    const applied = await migrateUp(target.url);
    if (applied.length === 0) console.log('schema is up to date');
    for (const name of applied) console.log(`applied migration ${name}`);
  } finally {
    await target.stop();
  }
}

main().catch((error: unknown) => {
  console.error(`migration failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
