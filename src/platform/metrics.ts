import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Config } from '../config.ts';
import { observeQueries, type Pool } from './database.ts';
import { routeLabel } from './http.ts';

export interface Metrics {
  /** Features register their own metrics here. */
  registry: Registry;
  /** Counts a finished request by method, route template and status. */
  requestCompleted(request: FastifyRequest, statusCode: number, seconds: number): void;
  /** Stops timing the pool's queries (the pool may outlive the app). */
  stop(): void;
}

// Sub-millisecond to 10 s: most API requests take 1–20 ms.
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// A query takes from well under a millisecond up to the statement timeout (5 s by default).
const QUERY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const PG_DEFAULT_POOL_MAX = 10;

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

/**
 * At each scrape, `SELECT 1` within the timeout: database_up. A failure never fails the scrape.
 */
function registerDatabaseProbe(registry: Registry, pool: Pool, timeoutMs: number): void {
  new Gauge({
    name: 'database_up',
    help: 'Whether the database answered the scrape-time query (1) or not (0)',
    registers: [registry],
    async collect() {
      const answered = await withTimeout(pool.query('SELECT 1'), timeoutMs).then(
        () => true,
        () => false,
      );
      this.set(answered ? 1 : 0);
    },
  });
}

/** Bounds the scrape well within Prometheus' scrape timeout, whatever the statement timeout is. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
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
