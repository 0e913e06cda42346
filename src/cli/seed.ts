// npm run db:seed [-- --loans N] [--database-url URL]: migrates, inserts the original five loans
// (idempotent) and, with --loans, N random loans for benchmarks.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, readConfigOrExit } from '../config.ts';
import { seedRandomLoans } from '../loans/random-loans.ts';
import { seedOriginalLoans } from '../loans/seed.ts';
import { createPool } from '../platform/database.ts';
import { openDatabaseTarget } from '../platform/database-target.ts';
import { migrateUp } from '../platform/migrations.ts';
import { argsOrExit, integerArg, parseArgs } from './args.ts';
import { progressBar } from './progress.ts';

const USAGE = 'usage: npm run db:seed -- [--loans N] [--database-url postgres://…]';
const MAX_RANDOM_LOANS = 10_000_000;

export interface SeedArgs {
  /** Random loans to add; 0 adds only the original five. */
  loans: number;
  databaseUrl: string | undefined;
  help: boolean;
}

export function parseSeedArgs(argv: readonly string[]): SeedArgs {
  const values = parseArgs(argv, {
    loans: { type: 'string' },
    'database-url': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  return {
    loans: values.loans === undefined ? 0 : integerArg('--loans', values.loans, 1, MAX_RANDOM_LOANS),
    databaseUrl: values['database-url'],
    help: values.help ?? false,
  };
}

export interface SeedReport {
  appliedMigrations: string[];
  originalInserted: number;
  randomInserted: number;
}

/** Migrates the database at `url`, then inserts the original loans and `loans` random ones. */
export async function seedDatabase(
  url: string,
  config: Config,
  options: { loans: number; onProgress?: (done: number, total: number) => void },
): Promise<SeedReport> {
  const appliedMigrations = await migrateUp(url);
  const pool = createPool(url, config.database, () => {});
  try {
    const originalInserted = await seedOriginalLoans(pool, config);
    const randomInserted =
      options.loans > 0
        ? await seedRandomLoans(pool, config, options.loans, { onProgress: options.onProgress })
        : 0;
    return { appliedMigrations, originalInserted, randomInserted };
  } finally {
    await pool.end();
  }
}

function describe(report: SeedReport, seconds: string): string[] {
  const lines = report.appliedMigrations.map((name) => `applied migration ${name}`);
  if (report.appliedMigrations.length === 0) lines.push('schema is up to date');
  lines.push(
    report.originalInserted > 0
      ? `inserted ${report.originalInserted} original loans`
      : 'original loans already present, nothing inserted',
  );
  if (report.randomInserted > 0) {
    lines.push(`inserted ${report.randomInserted} random loans (the seed took ${seconds} s)`);
  }
  return lines;
}

async function main(argv: readonly string[]): Promise<void> {
  const args = argsOrExit('seed', USAGE, () => parseSeedArgs(argv));
  if (args.help) {
    console.log(USAGE);
    return;
  }

  const config = readConfigOrExit({ databaseUrl: args.databaseUrl });
  const target = await openDatabaseTarget(config, { log: (_details, message) => console.error(message) });
  try {
    const started = performance.now();
    const report = await seedDatabase(target.url, config, {
      loans: args.loans,
      onProgress: progressBar(process.stderr, 'random loans'),
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    for (const line of describe(report, seconds)) console.log(line);
  } finally {
    await target.stop();
  }
}

// Only when run as a command: the bench and the tests import seedDatabase.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`seed failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
