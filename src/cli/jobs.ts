// npm run jobs -- <job>: runs one periodic job once and exits (a Kubernetes CronJob, cron, a person).
// The jobs and what they do are in loans/jobs.ts; the service runs them itself only with JOBS_IN_PROCESS.
import { readConfigOrExit } from '../config.ts';
import { LOAN_JOBS } from '../loans/jobs.ts';
import { createPool } from '../platform/database.ts';
import { openDatabaseTarget } from '../platform/database-target.ts';
import { argsOrExit, parseArgs, UsageError } from './args.ts';

const JOB_NAMES = Object.keys(LOAN_JOBS) as (keyof typeof LOAN_JOBS)[];
const USAGE = `usage: npm run jobs -- ${JOB_NAMES.join(' | ')}`;

function parseJobsArgs(argv: readonly string[]): keyof typeof LOAN_JOBS {
  const [name, ...rest] = argv;
  if (name === undefined) throw new UsageError('a job is required');
  if (!(JOB_NAMES as string[]).includes(name)) throw new UsageError(`unknown job "${name}"`);
  parseArgs(rest, {});
  return name as keyof typeof LOAN_JOBS;
}

async function main(argv: readonly string[]): Promise<void> {
  const name = argsOrExit('jobs', USAGE, () => parseJobsArgs(argv));
  const config = readConfigOrExit();
  const target = await openDatabaseTarget(config, { log: (_details, message) => console.error(message) });
  try {
    const pool = createPool(target.url, config.database, () => {});
    try {
      const changed = await LOAN_JOBS[name].run({ pool, config });
      console.log(`${name}: ${changed} rows`);
    } finally {
      await pool.end();
    }
  } finally {
    await target.stop();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`jobs failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
