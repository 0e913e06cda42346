import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Config } from '../config.ts';
import type { LoanMetrics } from '../loans/loan-commands.ts';
import { LOAN_ACTIONS, LOAN_STATUSES, nextStatus } from '../loans/loan-status.ts';
import { observeQueries, type Pool } from './database.ts';

export interface Metrics {
  registry: Registry;
  /** Business counters, fed by the loan commands once their transaction has committed. */
  loans: LoanMetrics;
  /** Counts a finished request by method, route template and status. */
  requestCompleted(request: FastifyRequest, statusCode: number, seconds: number): void;
  /** Stops timing the pool's queries (the pool may outlive the app). */
  stop(): void;
}

// Sub-millisecond to 10 s: most API requests take 1–20 ms.
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// A query takes from well under a millisecond up to the statement timeout (5 s by default).
const QUERY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const UNMATCHED_ROUTE = 'unmatched';
const PG_DEFAULT_POOL_MAX = 10;

/** The route template keeps label cardinality bounded; unknown paths share one label. */
export function routeLabel(request: FastifyRequest): string {
  return request.routeOptions.url ?? UNMATCHED_ROUTE;
}

/** The app's metrics, in a registry of its own so that tests can build several apps in one process. */
export function createMetrics(deps: { config: Config; pool: Pool }): Metrics {
  const { config, pool } = deps;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'build_info',
    help: 'Build information; the value is always 1',
    labelNames: ['version', 'commit'],
    registers: [registry],
  }).set({ version: config.version, commit: config.commit }, 1);

  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });

  const stopTimingQueries = registerQueryMetrics(registry, pool);
  registerPoolMetrics(registry, pool);
  registerDatabaseProbe(registry, pool, config.database.connectTimeoutMs);

  return {
    registry,
    loans: loanMetrics(registry),
    requestCompleted(request, statusCode, seconds) {
      const labels = { method: request.method, route: routeLabel(request), status_code: String(statusCode) };
      requests.inc(labels);
      duration.observe(labels, seconds);
    },
    stop: stopTimingQueries,
  };
}

/** Counts every response, tracks requests in flight, and serves GET /metrics. */
export function registerMetrics(app: FastifyInstance, metrics: Metrics): void {
  const inFlight = new Gauge({
    name: 'http_requests_in_flight',
    help: 'HTTP requests currently being served',
    registers: [metrics.registry],
  });
  // 'close' fires once per response, also when the client goes away before it is sent (and
  // onResponse never runs), so the gauge cannot drift upwards.
  app.addHook('onRequest', async (_request, reply) => {
    inFlight.inc();
    reply.raw.once('close', () => inFlight.dec());
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.requestCompleted(request, reply.statusCode, reply.elapsedTime / 1000);
  });
  app.addHook('onClose', async () => metrics.stop());

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
}

/** Times every query run through the pool; returns the function that stops it. */
function registerQueryMetrics(registry: Registry, pool: Pool): () => void {
  const queryDuration = new Histogram({
    name: 'db_query_duration_seconds',
    help: 'Duration of database queries run through the pool, by outcome (ok or error)',
    labelNames: ['outcome'],
    buckets: QUERY_BUCKETS,
    registers: [registry],
  });
  // Both series exist from the start, so that an error ratio is 0 rather than empty.
  queryDuration.zero({ outcome: 'ok' });
  queryDuration.zero({ outcome: 'error' });
  return observeQueries(pool, (seconds, ok) =>
    queryDuration.observe({ outcome: ok ? 'ok' : 'error' }, seconds),
  );
}

function registerPoolMetrics(registry: Registry, pool: Pool): void {
  const poolGauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  poolGauge('db_pool_total_connections', 'Open connections in the database pool', () => pool.totalCount);
  poolGauge('db_pool_idle_connections', 'Open connections in the pool not in use', () => pool.idleCount);
  poolGauge(
    'db_pool_waiting_clients',
    'Requests waiting for a connection because all of them are in use',
    () => pool.waitingCount,
  );
  poolGauge(
    'db_pool_max_connections',
    'Largest number of connections the pool opens',
    () => pool.options.max ?? PG_DEFAULT_POOL_MAX,
  );
}

type Probe = { ok: true; loansByStatus: Map<string, number> } | { ok: false };

/**
 * At each scrape, one query reads loans per status from the trigger-maintained loan_stats table (a
 * few dozen rows, never a scan of loans). Its success is database_up. A failure never fails the
 * scrape: database_up becomes 0 and loans_by_status has no samples until the database answers.
 */
function registerDatabaseProbe(registry: Registry, pool: Pool, timeoutMs: number): void {
  const probe = oncePerScrape(async (): Promise<Probe> => {
    try {
      const rows = await withTimeout(
        pool.query<{ status: string; loans: string }>(
          'SELECT status, sum(loans)::text AS loans FROM loan_stats GROUP BY status',
        ),
        timeoutMs,
      );
      return { ok: true, loansByStatus: new Map(rows.rows.map((row) => [row.status, Number(row.loans)])) };
    } catch {
      return { ok: false };
    }
  });

  new Gauge({
    name: 'database_up',
    help: 'Whether the database answered the scrape-time query (1) or not (0)',
    registers: [registry],
    async collect() {
      this.set((await probe()).ok ? 1 : 0);
    },
  });
  new Gauge({
    name: 'loans_by_status',
    help: 'Loans per status (every status, 0 when none), from the maintained loan_stats aggregates',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const result = await probe();
      this.reset();
      if (!result.ok) return;
      for (const status of LOAN_STATUSES) this.set({ status }, result.loansByStatus.get(status) ?? 0);
    },
  });
}

/**
 * prom-client collects every metric of a scrape concurrently: the gauges that read the same probe
 * share one run of it, started by the first of them.
 */
function oncePerScrape<T>(run: () => Promise<T>): () => Promise<T> {
  let current: Promise<T> | undefined;
  return () => {
    current ??= run().finally(() => {
      current = undefined;
    });
    return current;
  };
}

/** Bounds the scrape well within Prometheus' scrape timeout, whatever the statement timeout is. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Each status change that an action can make, including to repaid by a clearing repayment. */
function transitionPairs(): { from: string; to: string }[] {
  const pairs: { from: string; to: string }[] = [];
  for (const from of LOAN_STATUSES) {
    for (const action of LOAN_ACTIONS) {
      const to = nextStatus(from, action);
      if (to === undefined) continue;
      if (to !== from) pairs.push({ from, to });
      if (action === 'repayments') pairs.push({ from, to: 'repaid' });
    }
  }
  return pairs;
}

function loanMetrics(registry: Registry): LoanMetrics {
  const created = new Counter({
    name: 'loans_created_total',
    help: 'Loans created, by currency',
    labelNames: ['currency'],
    registers: [registry],
  });
  const transitions = new Counter({
    name: 'loan_transitions_total',
    help: 'Loan status changes, by from and to status',
    labelNames: ['from', 'to'],
    registers: [registry],
  });
  // The pairs are few and known: with every series present from the start, the first transition
  // after a restart is seen by rate() and increase().
  for (const pair of transitionPairs()) transitions.inc(pair, 0);
  const repayments = new Counter({
    name: 'repayments_total',
    help: 'Repayments recorded, by currency',
    labelNames: ['currency'],
    registers: [registry],
  });
  const repaidAmount = new Counter({
    name: 'repayments_amount_minor_total',
    help:
      'Sum of repaid amounts in integer MINOR units of the currency (INR paise, KWD fils; VND has none), ' +
      'by currency: divide by 10^exponent for major units. Never add currencies together',
    labelNames: ['currency'],
    registers: [registry],
  });

  return {
    loanCreated: (currency) => created.inc({ currency }),
    transition: (from, to) => transitions.inc({ from, to }),
    repayment(currency, amountMinor) {
      repayments.inc({ currency });
      // The metric boundary is the one place money becomes a float: a Prometheus sample is a
      // float64, exact for running totals below 2^53 minor units. The ledger stays the record.
      repaidAmount.inc({ currency }, Number(amountMinor));
    },
  };
}
