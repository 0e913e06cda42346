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
import { currencyExponent } from '../money/currencies.ts';
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
/** Repayments rotate over this many disbursed loans, so that no loan's row lock serializes the load. */
const REPAYMENT_LOANS = 1000;
const REPAYMENT_BODY = JSON.stringify({ amount: '1.00' });
/**
 * Rates no server here reaches on these writes (POST /api/loans did ~1,000 req/s on the baseline): they
 * size the pending loans to approve before a run (doubled, and raised to twice the fastest rate seen)
 * and the balance each repayment loan must have left for every run of the bench (doubled again).
 */
const APPROVE_RATE_GUESS = 2500;
const REPAYMENT_RATE_CEILING = 3000;

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
  repaymentIds: string[];
  deepCursor: string;
  deepPlan: string[];
}

/**
 * The smallest outstanding principal a repayment loan may have: twice what the bench could take from it at
 * REPAYMENT_RATE_CEILING over every run of both servers, and at least 1,000.00.
 */
function repaymentFloorMinor(args: BenchArgs): bigint {
  const requests = REPAYMENT_RATE_CEILING * (args.warmup + args.duration) * args.repeat * 2;
  return BigInt(Math.max(100_000, Math.ceil(requests / REPAYMENT_LOANS) * 100 * 2));
}

async function fixtures(url: string, args: BenchArgs): Promise<Fixtures> {
  return withClient(url, async (db) => {
    const ids = await db.query<{ id: string }>(`SELECT id FROM loans ORDER BY random() LIMIT ${SAMPLE_IDS}`);
    // "1.00" is a valid amount only in currencies with two minor digits.
    const currencies = await db.query<{ currency: string }>('SELECT DISTINCT currency FROM loan_stats');
    const floor = repaymentFloorMinor(args);
    const repayable = await db.query<{ id: string }>(
      `SELECT id FROM loans
        WHERE status = 'disbursed' AND currency = ANY($1) AND outstanding_principal_minor >= $2
        ORDER BY random() LIMIT ${REPAYMENT_LOANS}`,
      [
        currencies.rows.map((row) => row.currency.trim()).filter((code) => currencyExponent(code) === 2),
        floor.toString(),
      ],
    );
    if (repayable.rows.length < REPAYMENT_LOANS) {
      throw new Error(
        `only ${repayable.rows.length} disbursed loans in two-digit currencies have ${floor / 100n}.00 or more ` +
          `outstanding; the repayment endpoint needs ${REPAYMENT_LOANS} (use a larger size or fewer runs)`,
      );
    }
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
      repaymentIds: repayable.rows.map((row) => row.id),
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
  body?: string;
  /** The path and extra headers of each request, when they vary (different loans, unique keys). */
  next?: () => { path: string; headers?: Record<string, string> };
  /** Readies the run's database for one warm-up plus measured run of `seconds`. */
  prepare?: (seconds: number) => Promise<void>;
  /** Why the last run is not valid although the server answered it (a fixture ran out), if it is not. */
  shortfall?: () => string | undefined;
}

/**
 * Pending loans for the approve endpoint, each approved once: inserted (with their `created` events, as
 * the service writes them) into the run's copy before each run, and handed out in order.
 */
function pendingLoans(url: string): Pick<Endpoint, 'next' | 'prepare' | 'shortfall'> {
  const ids: string[] = [];
  let taken = 0;
  let exhausted = false;
  let fastest = APPROVE_RATE_GUESS;
  let last: { from: number; seconds: number } | undefined;
  return {
    async prepare(seconds) {
      if (last) fastest = Math.max(fastest, (taken - last.from) / last.seconds);
      const wanted = Math.ceil(fastest * seconds * 2);
      const missing = wanted - (ids.length - taken);
      if (missing > 0) {
        const inserted = await withClient(url, (db) =>
          db.query<{ id: string }>(
            `WITH loan AS (
               INSERT INTO loans (borrower_id, currency, amount_minor, term_months, interest_rate_apr, created_by)
               SELECT 'bench_approve_' || lpad(g::text, 7, '0'), 'INR', 100000, 12, 12.00, 'bench'
                 FROM generate_series($1::int, $2::int) g
               RETURNING id, borrower_id, currency, term_months, interest_rate_apr, created_at
             ), event AS (
               INSERT INTO loan_events (loan_id, type, from_status, to_status, actor, request_id, at, data)
               SELECT id, 'created', NULL, 'pending', 'bench', 'bench', created_at,
                      jsonb_build_object('borrower_id', borrower_id, 'amount', '1000.00', 'currency', currency,
                                         'term_months', term_months, 'interest_rate_apr', interest_rate_apr::text)
                 FROM loan
             )
             SELECT id FROM loan`,
            [ids.length + 1, ids.length + missing],
          ),
        );
        ids.push(...inserted.rows.map((row) => row.id));
        log(`  ${missing} pending loans to approve added (${ids.length - taken} unused)`);
      }
      last = { from: taken, seconds };
    },
    next() {
      if (taken < ids.length) return { path: `/api/loans/${ids[taken++]}/approve` };
      // An approved loan: 409, so the run fails, and shortfall() says why.
      exhausted = true;
      return { path: `/api/loans/${ids[0]}/approve` };
    },
    shortfall: () =>
      exhausted ? `ran out of pending loans after ${ids.length} (raise APPROVE_RATE_GUESS)` : undefined,
  };
}

function endpoints(fixture: Fixtures, url: string): Endpoint[] {
  let read = 0;
  let repaid = 0;
  // Each size runs on a fresh copy of its database, so keys need only be unique within one call.
  let keys = 0;
  return [
    {
      name: 'GET /api/loans/{id}',
      method: 'GET',
      path: `/api/loans/${fixture.ids[0]}`,
      next: () => ({ path: `/api/loans/${fixture.ids[read++ % fixture.ids.length]}` }),
    },
    { name: 'GET /api/loans (first page)', method: 'GET', path: '/api/loans' },
    {
      name: `GET /api/loans (cursor at ${DEEP_PAGE_AT * 100}%)`,
      method: 'GET',
      path: `/api/loans?cursor=${fixture.deepCursor}`,
    },
    { name: 'GET /api/stats', method: 'GET', path: '/api/stats' },
    // The writes come after the reads, which so see exactly the seeded loans; they change the run's copy only.
    {
      name: 'POST /api/loans/{id}/approve',
      method: 'POST',
      path: '/api/loans/{id}/approve',
      ...pendingLoans(url),
    },
    {
      name: 'POST /api/loans/{id}/repayments',
      method: 'POST',
      path: `/api/loans/${fixture.repaymentIds[0]}/repayments`,
      body: REPAYMENT_BODY,
      next: () => ({
        path: `/api/loans/${fixture.repaymentIds[repaid++ % fixture.repaymentIds.length]}/repayments`,
        headers: { 'idempotency-key': `bench-${++keys}` },
      }),
    },
    // Last: it grows the table.
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
  const next = endpoint.next;
  const result = await autocannon({
    url: `${server.url}${endpoint.path}`,
    connections,
    duration: seconds,
    method: endpoint.method,
    ...(endpoint.body ? { body: endpoint.body, headers: { 'content-type': 'application/json' } } : {}),
    ...(next
      ? {
          requests: [
            {
              setupRequest: (request) => {
                const { path, headers } = next();
                return { ...request, path, headers: { ...request.headers, ...headers } };
              },
            },
          ],
        }
      : {}),
  });
  const shortfall = endpoint.shortfall?.();
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0 || shortfall) {
    throw new Error(
      `${server.name} ${endpoint.name}: ${result.non2xx} non-2xx responses, ${result.errors} errors, ` +
        `${result.timeouts} timeouts (status codes ${JSON.stringify(result.statusCodeStats)})` +
        (shortfall ? `; ${shortfall}` : ''),
    );
  }
  return result;
}

async function measure(server: Server, endpoint: Endpoint, args: BenchArgs): Promise<Measurement> {
  await endpoint.prepare?.(args.warmup + args.duration);
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
    const fixture = await fixtures(url, args);
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
    for (const endpoint of endpoints(fixture, url)) {
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
