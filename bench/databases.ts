// The bench's databases on the admin server: one seeded database per size, and a throwaway copy per run.
import pg from 'pg';
import { progressBar } from '../src/cli/progress.ts';
import { seedDatabase } from '../src/cli/seed.ts';
import type { Config } from '../src/config.ts';
import { withDatabase } from '../src/platform/database.ts';
import { migrateUp } from '../src/platform/migrations.ts';
import { label, log } from './report.ts';

export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * The seeded database for `loans` loans, reused when it already holds exactly that many (unless
 * `fresh`). It is never benchmarked directly: each run works on a copy, so POST runs cannot change it.
 */
export async function seededDatabase(
  adminUrl: string,
  loans: number,
  options: { fresh: boolean; config: Config },
): Promise<string> {
  const name = `bl_bench_${label(loans)}`;
  const url = withDatabase(adminUrl, name);
  const exists = await withClient(adminUrl, async (admin) => {
    if (options.fresh) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    return found.rowCount === 1;
  });
  if (exists) {
    await migrateUp(url);
    const count = await withClient(url, (db) => db.query<{ n: string }>('SELECT count(*) AS n FROM loans'));
    if (Number(count.rows[0]!.n) === loans) {
      log(`${name}: reusing (${loans} loans)`);
      return name;
    }
    log(`${name}: has ${count.rows[0]!.n} loans, not ${loans}; recreating`);
    await withClient(adminUrl, (admin) => admin.query(`DROP DATABASE ${name} WITH (FORCE)`));
  }
  await withClient(adminUrl, (admin) => admin.query(`CREATE DATABASE ${name}`));
  const started = performance.now();
  await seedDatabase(url, options.config, {
    loans: loans - 5,
    onProgress: progressBar(process.stderr, `seeding ${name}`),
  });
  await withClient(url, (db) => db.query('VACUUM (ANALYZE)'));
  log(`${name}: seeded ${loans} loans in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return name;
}

/** A fresh copy of `template` for one run. */
export async function cloneForRun(adminUrl: string, template: string): Promise<string> {
  const name = `${template}_run`;
  await withClient(adminUrl, async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template} STRATEGY FILE_COPY`);
        return;
      } catch (error) {
        // 55006: an autovacuum worker is still connected to the template; it leaves within seconds.
        if ((error as { code?: string }).code !== '55006' || attempt === 10) throw error;
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      }
    }
  });
  return name;
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await withClient(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}
