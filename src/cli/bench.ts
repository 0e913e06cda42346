// npm run bench [-- --sizes 10000,1000000 --duration 10 --connections 50 --warmup 2 --repeat 1 --fresh]
// Seeds one database per size, then loads the real service and a bare Fastify + pg baseline with
// autocannon, endpoint by endpoint, and reports req/s, p50, p99 and the ratios. See BENCHMARKS.md.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon, { type Result } from 'autocannon';
import pg from 'pg';
import { loadConfig } from '../config.ts';
import { encodeCursor } from '../loans/cursor.ts';
import { withDatabase } from '../platform/database.ts';
import { migrateUp } from '../platform/migrations.ts';
import { progressBar, seedDatabase } from './seed.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RESULTS_FILE = `${ROOT}bench/results/latest.json`;
const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const SAMPLE_IDS = 1000;
const DEEP_PAGE_AT = 0.9;
const POST_BODY = JSON.stringify({
  borrower_id: 'bench_post_0001',
  amount: '1000.00',
  currency: 'INR',
  term_months: 12,
  interest_rate_apr: '12.00',
});

class UsageError extends Error {}

interface BenchArgs {
  sizes: number[];
  duration: number;
  warmup: number;
  connections: number;
  repeat: number;
  fresh: boolean;
  adminUrl: string;
}

function positiveInteger(name: string, text: string | undefined, max: number): number {
  const value = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || value < 1 || value > max) {
    throw new UsageError(`${name} must be an integer from 1 to ${max} (got "${text ?? ''}")`);
  }
  return value;
}

/** "10000", "10k" or "1m". */
function size(text: string): number {
  const match = /^(\d+)(k|m)?$/i.exec(text.trim());
  const value = match
    ? Number(match[1]) * { '': 1, k: 1_000, m: 1_000_000 }[(match[2] ?? '').toLowerCase()]!
    : 0;
  if (!match || value < 100 || value > 10_000_000) {
    throw new UsageError(`--sizes takes sizes from 100 to 10000000 such as 10000,1m (got "${text}")`);
  }
  return value;
}

function parseBenchArgs(argv: readonly string[], env: Record<string, string | undefined>): BenchArgs {
  const args: BenchArgs = {
    sizes: [10_000, 1_000_000],
    duration: 10,
    warmup: 2,
    connections: 50,
    repeat: 1,
    fresh: false,
    adminUrl: env.BENCH_DATABASE_URL || env.DATABASE_URL || DEFAULT_ADMIN_URL,
  };
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    const equals = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = equals > 0 ? arg.slice(0, equals) : arg;
    const value = () => (equals > 0 ? arg.slice(equals + 1) : argv[++index]);
    if (name === '--sizes') args.sizes = (value() ?? '').split(',').map(size);
    else if (name === '--duration') args.duration = positiveInteger(name, value(), 3600);
    else if (name === '--warmup') args.warmup = positiveInteger(name, value(), 600);
    else if (name === '--connections') args.connections = positiveInteger(name, value(), 10_000);
    else if (name === '--repeat') args.repeat = positiveInteger(name, value(), 100);
    else if (name === '--fresh') args.fresh = true;
    else throw new UsageError(`unknown argument "${arg}"`);
  }
  return args;
}

const label = (n: number) =>
  n % 1_000_000 === 0 ? `${n / 1_000_000}m` : n % 1_000 === 0 ? `${n / 1_000}k` : String(n);

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const log = (message: string) => process.stderr.write(`${message}\n`);

/**
 * The seeded database for `loans` loans, reused when it already holds exactly that many. It is never
 * benchmarked directly: each run works on a copy, so POST runs cannot change it.
 */
async function seededDatabase(args: BenchArgs, loans: number, config: ReturnType<typeof loadConfig>) {
  const name = `bl_bench_${label(loans)}`;
  const url = withDatabase(args.adminUrl, name);
  const exists = await withClient(args.adminUrl, async (admin) => {
    if (args.fresh) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
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
    await withClient(args.adminUrl, (admin) => admin.query(`DROP DATABASE ${name} WITH (FORCE)`));
  }
  await withClient(args.adminUrl, (admin) => admin.query(`CREATE DATABASE ${name}`));
  const started = performance.now();
  await seedDatabase(url, config, {
    loans: loans - 5,
    onProgress: progressBar(process.stderr, `seeding ${name}`),
  });
  await withClient(url, (db) => db.query('VACUUM (ANALYZE)'));
  log(`${name}: seeded ${loans} loans in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return name;
}

async function cloneForRun(adminUrl: string, template: string): Promise<string> {
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

interface Fixtures {
  ids: string[];
  deepCursor: string;
  deepPlan: string[];
}

async function fixtures(url: string): Promise<Fixtures> {
  return withClient(url, async (db) => {
    const ids = await db.query<{ id: string }>(`SELECT id FROM loans ORDER BY random() LIMIT ${SAMPLE_IDS}`);
    const count = await db.query<{ n: string }>('SELECT count(*) AS n FROM loans');
    const offset = Math.floor(Number(count.rows[0]!.n) * DEEP_PAGE_AT);
    const deep = await db.query<{ created_at: Date; id: string }>(
      'SELECT created_at, id FROM loans ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1',
      [offset],
    );
    const position = { createdAt: deep.rows[0]!.created_at.toISOString(), id: deep.rows[0]!.id };
    // The evidence that a deep page is an index range scan, not a scan of everything before it.
    const plan = await db.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
       SELECT * FROM loans WHERE (created_at, id) < ($1::timestamptz, $2::uuid)
        ORDER BY created_at DESC, id DESC LIMIT 51`,
      [position.createdAt, position.id],
    );
    return {
      ids: ids.rows.map((row) => row.id),
      deepCursor: encodeCursor(position),
      deepPlan: plan.rows.map((row) => row['QUERY PLAN']),
    };
  });
}

interface Server {
  name: 'service' | 'baseline';
  url: string;
  child: ChildProcess;
}

const children = new Set<ChildProcess>();

async function startServer(name: Server['name'], env: NodeJS.ProcessEnv): Promise<Server> {
  const script = `${ROOT}bench/${name === 'service' ? 'service-server.ts' : 'baseline-server.ts'}`;
  const child = fork(script, [], {
    env,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} server did not start within 30 s`)), 30_000);
    child.once('message', (message: { type?: string; port?: number }) => {
      clearTimeout(timer);
      if (message.type === 'listening' && message.port) resolve(message.port);
      else reject(new Error(`${name} server sent ${JSON.stringify(message)}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} server exited with code ${code} before listening`));
    });
  });
  return { name, url: `http://127.0.0.1:${port}`, child };
}

async function stopServer(server: Server): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

interface Endpoint {
  name: string;
  method: 'GET' | 'POST';
  path: string;
  /** Rotates the path per request (different loans, so not one cached row). */
  paths?: string[];
  body?: string;
}

function endpoints(fixture: Fixtures): Endpoint[] {
  return [
    {
      name: 'GET /api/loans/{id}',
      method: 'GET',
      path: `/api/loans/${fixture.ids[0]}`,
      paths: fixture.ids.map((id) => `/api/loans/${id}`),
    },
    { name: 'GET /api/loans (first page)', method: 'GET', path: '/api/loans' },
    {
      name: `GET /api/loans (cursor at ${DEEP_PAGE_AT * 100}%)`,
      method: 'GET',
      path: `/api/loans?cursor=${fixture.deepCursor}`,
    },
    { name: 'GET /api/stats', method: 'GET', path: '/api/stats' },
    // Last: it grows the table (of the run's copy only).
    { name: 'POST /api/loans', method: 'POST', path: '/api/loans', body: POST_BODY },
  ];
}

interface Measurement {
  reqPerSec: number;
  p50: number;
  p99: number;
  requests: number;
}

async function load(
  server: Server,
  endpoint: Endpoint,
  seconds: number,
  connections: number,
): Promise<Result> {
  let next = 0;
  const paths = endpoint.paths;
  const result = await autocannon({
    url: `${server.url}${endpoint.path}`,
    connections,
    duration: seconds,
    method: endpoint.method,
    ...(endpoint.body ? { body: endpoint.body, headers: { 'content-type': 'application/json' } } : {}),
    ...(paths
      ? { requests: [{ setupRequest: (request) => ({ ...request, path: paths[next++ % paths.length] }) }] }
      : {}),
  });
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(
      `${server.name} ${endpoint.name}: ${result.non2xx} non-2xx responses, ${result.errors} errors, ` +
        `${result.timeouts} timeouts (status codes ${JSON.stringify(result.statusCodeStats)})`,
    );
  }
  return result;
}

async function measure(server: Server, endpoint: Endpoint, args: BenchArgs): Promise<Measurement> {
  await load(server, endpoint, args.warmup, args.connections);
  const result = await load(server, endpoint, args.duration, args.connections);
  return {
    reqPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

function medianOf(runs: Measurement[]): Measurement & { runs: Measurement[] } {
  return {
    reqPerSec: median(runs.map((run) => run.reqPerSec)),
    p50: median(runs.map((run) => run.p50)),
    p99: median(runs.map((run) => run.p99)),
    requests: median(runs.map((run) => run.requests)),
    runs,
  };
}

interface EndpointResult {
  size: number;
  endpoint: string;
  service: Measurement & { runs: Measurement[] };
  baseline: Measurement & { runs: Measurement[] };
}

async function benchSize(
  args: BenchArgs,
  loans: number,
  config: ReturnType<typeof loadConfig>,
): Promise<{ results: EndpointResult[]; deepPlan: string[] }> {
  const template = await seededDatabase(args, loans, config);
  const database = await cloneForRun(args.adminUrl, template);
  const url = withDatabase(args.adminUrl, database);
  const servers: Server[] = [];
  try {
    const fixture = await fixtures(url);
    const env = {
      ...process.env,
      APP_ENV: process.env.APP_ENV || 'production',
      LOG_LEVEL: process.env.LOG_LEVEL || 'warn',
      LOG_PRETTY: 'false',
      DATABASE_URL: url,
      DATABASE_URL_FILE: undefined,
    };
    const service = await startServer('service', env);
    servers.push(service);
    const baseline = await startServer('baseline', env);
    servers.push(baseline);

    const results: EndpointResult[] = [];
    for (const endpoint of endpoints(fixture)) {
      const runs: Record<Server['name'], Measurement[]> = { service: [], baseline: [] };
      for (let round = 1; round <= args.repeat; round++) {
        for (const server of [service, baseline]) {
          log(`[${label(loans)}] ${endpoint.name} → ${server.name} (${round}/${args.repeat})`);
          runs[server.name].push(await measure(server, endpoint, args));
        }
      }
      results.push({
        size: loans,
        endpoint: endpoint.name,
        service: medianOf(runs.service),
        baseline: medianOf(runs.baseline),
      });
    }
    return { results, deepPlan: fixture.deepPlan };
  } finally {
    for (const server of servers) await stopServer(server);
    await withClient(args.adminUrl, (admin) =>
      admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`),
    );
  }
}

const fixed = (value: number, digits = 2) => value.toFixed(digits);

function markdownReport(results: EndpointResult[], sizes: number[]): string {
  const lines = [
    '| loans | endpoint | service req/s | p50 ms | p99 ms | baseline req/s | p50 ms | p99 ms | req/s service÷baseline | p99 service÷baseline |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const row of results) {
    lines.push(
      `| ${label(row.size)} | ${row.endpoint} | ${fixed(row.service.reqPerSec, 0)} | ${row.service.p50} | ${row.service.p99} | ` +
        `${fixed(row.baseline.reqPerSec, 0)} | ${row.baseline.p50} | ${row.baseline.p99} | ` +
        `${fixed(row.service.reqPerSec / row.baseline.reqPerSec)} | ${fixed(row.service.p99 / row.baseline.p99)} |`,
    );
  }
  const smallest = Math.min(...sizes);
  for (const larger of sizes.filter((size) => size !== smallest)) {
    lines.push(
      '',
      `Latency ratio ${label(larger)} ÷ ${label(smallest)} (1.00 = no growth with the table):`,
      '',
      '| endpoint | service p50 | service p99 | service req/s | baseline p50 | baseline p99 | baseline req/s |',
      '|---|--:|--:|--:|--:|--:|--:|',
    );
    for (const big of results.filter((row) => row.size === larger)) {
      const small = results.find((row) => row.size === smallest && row.endpoint === big.endpoint);
      if (!small) continue;
      lines.push(
        `| ${big.endpoint} | ${fixed(big.service.p50 / small.service.p50)} | ${fixed(big.service.p99 / small.service.p99)} | ` +
          `${fixed(big.service.reqPerSec / small.service.reqPerSec)} | ${fixed(big.baseline.p50 / small.baseline.p50)} | ` +
          `${fixed(big.baseline.p99 / small.baseline.p99)} | ${fixed(big.baseline.reqPerSec / small.baseline.reqPerSec)} |`,
      );
    }
  }
  return lines.join('\n');
}

async function main(argv: readonly string[]): Promise<void> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(argv, process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(
      `bench: ${error.message}; usage: npm run bench -- [--sizes 10000,1000000] [--duration 10] [--warmup 2] ` +
        '[--connections 50] [--repeat 1] [--fresh]',
    );
    process.exit(2);
  }
  // The service's configuration for seeding (maximum amounts) and for the forked service itself.
  const config = loadConfig({ ...process.env, APP_ENV: 'production', DATABASE_URL: args.adminUrl });
  const started = new Date();
  const server = await withClient(args.adminUrl, (db) =>
    db.query<{ version: string }>('SELECT version()').then((result) => result.rows[0]!.version),
  );
  const results: EndpointResult[] = [];
  const plans: Record<string, string[]> = {};
  for (const loans of args.sizes) {
    const run = await benchSize(args, loans, config);
    results.push(...run.results);
    plans[label(loans)] = run.deepPlan;
  }

  const report = markdownReport(results, args.sizes);
  console.log(report);
  for (const [size, plan] of Object.entries(plans)) {
    console.log(
      `\nDeep page plan (${size}): ${plan[0]?.trim()} · ${plan.find((line) => line.includes('Index'))?.trim()}`,
    );
  }
  await mkdir(`${ROOT}bench/results`, { recursive: true });
  await writeFile(
    RESULTS_FILE,
    `${JSON.stringify(
      {
        started: started.toISOString(),
        finished: new Date().toISOString(),
        machine: {
          cpus: cpus().length,
          cpu: cpus()[0]?.model,
          memory_gib: Math.round(totalmem() / 2 ** 30),
          load_average_at_end: loadavg(),
          node: process.version,
          postgres: server,
        },
        settings: { ...args, adminUrl: undefined },
        results,
        deep_page_plans: plans,
        report,
      },
      null,
      2,
    )}\n`,
  );
  log(`results written to ${RESULTS_FILE}`);
}

function stopChildren(): void {
  for (const child of children) child.kill('SIGTERM');
}

process.once('SIGINT', () => {
  stopChildren();
  process.exit(130);
});

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
  stopChildren();
  process.exit(1);
});
