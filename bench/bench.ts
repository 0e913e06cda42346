// npm run bench [-- --sizes 10000,1000000 --duration 10 --connections 50 --warmup 2 --repeat 1 --fresh]
// Seeds one database per size, then loads the real service and a bare Fastify + pg baseline with wrk,
// endpoint by endpoint, and reports req/s, p50, p99, errors, the ratios and the service's peak memory;
// then overloads the service alone. See BENCHMARKS.md.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { argsOrExit, integerArg, parseArgs, UsageError } from '../src/cli/args.ts';
import { type Config, readConfigOrExit } from '../src/config.ts';
import { withDatabase } from '../src/platform/database.ts';
import { cloneForRun, dropDatabase, seededDatabase, withClient } from './databases.ts';
import { endpoints, fixtures } from './endpoints.ts';
import { type Measurement, measure, medianOf } from './measure.ts';
import { type OverloadResult, overload } from './overload.ts';
import { type EndpointResult, label, log, markdownReport } from './report.ts';
import {
  buildService,
  PRODUCTION_MEMORY_LIMIT_MIB,
  peakRssMiB,
  type Server,
  startBaseline,
  startService,
  stopAllServers,
  stopServer,
} from './servers.ts';

const USAGE =
  'usage: npm run bench -- [--sizes 10000,1000000] [--duration 10] [--warmup 2] [--connections 50] ' +
  '[--repeat 1] [--overload-connections 500] [--web-concurrency 2] [--memory-limit 2048] [--fresh] ' +
  '[--database-url postgres://…]\n' +
  '  --overload-connections: connections of the overload test (0: skip it); it runs as long as --duration\n' +
  '  --web-concurrency: also measure the service with this many workers (WEB_CONCURRENCY; 1: skip it)\n' +
  "  --memory-limit: MiB of the service's memory cgroup, the production container's by default (needs root; 0: none)";
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const RESULTS_FILE = `${RESULTS_DIR}latest.json`;
/** The server the bench creates its databases on, unless --database-url or DATABASE_URL names one. */
const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

interface BenchArgs {
  sizes: number[];
  duration: number;
  warmup: number;
  connections: number;
  repeat: number;
  overloadConnections: number;
  webConcurrency: number;
  /** MiB of the service's memory cgroup; 0: none. */
  memoryLimitMib: number;
  fresh: boolean;
  databaseUrl: string | undefined;
  help: boolean;
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

function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const values = parseArgs(argv, {
    sizes: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    repeat: { type: 'string' },
    'overload-connections': { type: 'string' },
    'web-concurrency': { type: 'string' },
    'memory-limit': { type: 'string' },
    fresh: { type: 'boolean' },
    'database-url': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  const positive = (flag: string, text: string | undefined, fallback: number, max: number) =>
    text === undefined ? fallback : integerArg(flag, text, 1, max);
  return {
    sizes: values.sizes === undefined ? [10_000, 1_000_000] : values.sizes.split(',').map(size),
    duration: positive('--duration', values.duration, 10, 3600),
    warmup: positive('--warmup', values.warmup, 2, 600),
    connections: positive('--connections', values.connections, 50, 10_000),
    repeat: positive('--repeat', values.repeat, 1, 100),
    overloadConnections:
      values['overload-connections'] === undefined
        ? 500
        : integerArg('--overload-connections', values['overload-connections'], 0, 10_000),
    webConcurrency: positive('--web-concurrency', values['web-concurrency'], 2, 64),
    memoryLimitMib:
      values['memory-limit'] === undefined
        ? PRODUCTION_MEMORY_LIMIT_MIB
        : integerArg('--memory-limit', values['memory-limit'], 0, 1_048_576),
    fresh: values.fresh ?? false,
    databaseUrl: values['database-url'],
    help: values.help ?? false,
  };
}

interface SizeRun {
  results: EndpointResult[];
  overload: OverloadResult | undefined;
  deepPlan: string[];
}

/**
 * The service as production runs it, with every feature on: request log lines at info, authentication,
 * and its rate limiter, with a budget no run here can spend (600 a minute per key, the production
 * default, would refuse all but the first second).
 */
function serviceEnvironment(url: string, config: Config): Record<string, string> {
  return {
    DATABASE_URL: url,
    DATABASE_POOL_MAX: String(config.database.poolMax),
    LOG_LEVEL: 'info',
    RATE_LIMIT_PER_MINUTE: '1000000',
  };
}

async function benchSize(
  args: BenchArgs,
  adminUrl: string,
  loans: number,
  config: Config,
  appDir: string,
): Promise<SizeRun> {
  const template = await seededDatabase(adminUrl, loans, { fresh: args.fresh, config });
  const database = await cloneForRun(adminUrl, template);
  const url = withDatabase(adminUrl, database);
  const workDir = await mkdtemp(join(tmpdir(), 'bl-bench-'));
  const servers: Server[] = [];
  try {
    const fixture = await fixtures(url, args);
    const environment = serviceEnvironment(url, config);
    const service = await startService(
      'service',
      appDir,
      environment,
      join(workDir, 'service.log'),
      args.memoryLimitMib,
    );
    servers.push(service);
    if (args.webConcurrency > 1) {
      const workers = { ...environment, WEB_CONCURRENCY: String(args.webConcurrency) };
      servers.push(
        await startService('workers', appDir, workers, join(workDir, 'workers.log'), args.memoryLimitMib),
      );
    }
    const baseline = await startBaseline([
      '--database-url',
      url,
      '--pool-max',
      String(config.database.poolMax),
    ]);
    servers.push(baseline);

    const workers = servers.find((server) => server.name === 'workers');
    const headers = { authorization: `Bearer ${fixture.apiKey}` };
    const load = { ...args, headers, workDir };
    const results: EndpointResult[] = [];
    for (const endpoint of endpoints(fixture, url)) {
      const runs: Record<Server['name'], Measurement[]> = { service: [], workers: [], baseline: [] };
      for (let round = 1; round <= args.repeat; round++) {
        // Each round starts with another server, so that none is always first after a fixture's writes.
        const turn = (round - 1) % servers.length;
        for (const server of [...servers.slice(turn), ...servers.slice(0, turn)]) {
          log(`[${label(loans)}] ${endpoint.name} → ${server.name} (${round}/${args.repeat})`);
          runs[server.name].push(await measure(server, endpoint, load));
        }
      }
      results.push({
        size: loans,
        endpoint: endpoint.name,
        service: medianOf(runs.service),
        workers: workers && medianOf(runs.workers),
        baseline: medianOf(runs.baseline),
        peakRssMiB: {
          service: await peakRssMiB(service),
          workers: workers && (await peakRssMiB(workers)),
          baseline: await peakRssMiB(baseline),
        },
      });
    }
    let overloaded: OverloadResult | undefined;
    if (args.overloadConnections > 0) {
      log(`[${label(loans)}] overload: ${args.overloadConnections} connections on GET /api/loans → service`);
      overloaded = await overload(service, {
        connections: args.overloadConnections,
        seconds: args.duration,
        headers,
        workDir,
      });
    }
    return { results, overload: overloaded, deepPlan: fixture.deepPlan };
  } finally {
    for (const server of servers) await stopServer(server);
    await dropDatabase(adminUrl, database);
    await rm(workDir, { recursive: true, force: true });
  }
}

async function main(argv: readonly string[]): Promise<void> {
  const args = argsOrExit('bench', USAGE, () => parseBenchArgs(argv));
  if (args.help) {
    console.log(USAGE);
    return;
  }
  // The service's settings for seeding (maximum amounts, pool size), and the server to bench on.
  const config = readConfigOrExit({ databaseUrl: args.databaseUrl });
  const adminUrl = config.databaseUrl ?? DEFAULT_ADMIN_URL;
  const started = new Date();
  const server = await withClient(adminUrl, (db) =>
    db.query<{ version: string }>('SELECT version()').then((result) => result.rows[0]!.version),
  );
  const appDir = await buildService(await mkdtemp(join(tmpdir(), 'bl-bench-app-')));
  const results: EndpointResult[] = [];
  const overloads: { size: number; result: OverloadResult }[] = [];
  const plans: Record<string, string[]> = {};
  try {
    for (const loans of args.sizes) {
      const run = await benchSize(args, adminUrl, loans, config, appDir);
      results.push(...run.results);
      if (run.overload) overloads.push({ size: loans, result: run.overload });
      plans[label(loans)] = run.deepPlan;
    }
  } finally {
    await rm(appDir, { recursive: true, force: true });
  }

  const report = markdownReport(results, args.sizes, overloads, args.webConcurrency);
  console.log(report);
  for (const [size, plan] of Object.entries(plans)) {
    console.log(
      `\nDeep page plan (${size}): ${plan[0]?.trim()} · ${plan.find((line) => line.includes('Index'))?.trim()}`,
    );
  }
  const {
    sizes,
    duration,
    warmup,
    connections,
    repeat,
    overloadConnections,
    webConcurrency,
    memoryLimitMib,
    fresh,
  } = args;
  await mkdir(RESULTS_DIR, { recursive: true });
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
        settings: {
          sizes,
          duration,
          warmup,
          connections,
          repeat,
          memoryLimitMib,
          overloadConnections,
          webConcurrency,
          fresh,
        },
        load_generator: 'wrk, 1 thread',
        results,
        overloads,
        deep_page_plans: plans,
        report,
      },
      null,
      2,
    )}\n`,
  );
  log(`results written to ${RESULTS_FILE}`);
}

process.once('SIGINT', () => {
  stopAllServers();
  process.exit(130);
});

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
  stopAllServers();
  process.exit(1);
});
