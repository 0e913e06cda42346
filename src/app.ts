import { performance } from 'node:perf_hooks';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Config, TrustProxy } from './config.ts';
import { LOAN_JOBS } from './loans/jobs.ts';
import { registerLoanMetrics } from './loans/loan-metrics.ts';
import { createCommandRunner } from './loans/loan-transaction.ts';
import { loansRoutes } from './loans/loans.routes.ts';
import { createLoansService } from './loans/loans.service.ts';
import { registerAuthentication, registerAuthorization } from './platform/auth.ts';
import { problemClientErrorHandler, registerRequestChecks } from './platform/client-errors.ts';
import type { Pool } from './platform/database.ts';
import { registerHealthRoutes } from './platform/health.ts';
import { BODY_LIMIT_BYTES, registerErrorHandling, sendProblem, toAppError } from './platform/http-errors.ts';
import { registerJsonBodyParser } from './platform/json-body.ts';
import {
  closeConnectionsWhileShuttingDown,
  type Lifecycle,
  refuseWhileStarting,
} from './platform/lifecycle.ts';
import { loggerOptions, logRequestCompleted, registerRequestLogging } from './platform/logging.ts';
import { createMetrics, type Metrics, registerMetrics } from './platform/metrics.ts';
import { registerOpenApi } from './platform/openapi.ts';
import { registerOverload } from './platform/overload.ts';
import { runPeriodically } from './platform/periodic.ts';
import { registerRateLimit } from './platform/rate-limit.ts';
import { requestIdFrom } from './platform/request-id.ts';
import { HEADERS_WITHOUT_HOOKS, registerSecurityHeaders } from './platform/security-headers.ts';
import { refuseUndeclaredQueryParameters, validatorCompiler } from './platform/validation.ts';
import { statsRoutes } from './stats/stats.routes.ts';
import { createStatsService } from './stats/stats.service.ts';

export interface AppDeps {
  config: Config;
  pool: Pool;
  /** Lists and stats read here (a standby, DATABASE_READ_URL); everything else, the primary `pool`. */
  readPool?: Pool;
  lifecycle?: Lifecycle;
  /** A ready logger (tests capture lines with it); otherwise one is built from config. */
  logger?: FastifyBaseLogger;
  /** The service's notion of now (tests move it); defaults to the system clock. */
  clock?: () => Date;
}

// How often Node looks for requests past their headers/request timeout; its default (30 s) would let
// a 10 s headers timeout run to 40 s.
const TIMEOUT_CHECK_INTERVAL_MS = 1000;

/** Fastify's trustProxy; its types lack the hop count that its runtime accepts, hence the function. */
function trustProxyOption(
  trust: TrustProxy,
): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof trust === 'number') return (_address, hop) => hop < trust;
  return typeof trust === 'boolean' ? trust : [...trust];
}

/**
 * A URL the router cannot decode (`/api/loans/%zz`) fails before any hook runs, so this handler does
 * what the hooks would: the problem+json answer, the request id, the log line and the count.
 */
function routerErrorHandler(metrics: Metrics) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now();
    reply.raw.once('finish', () => {
      const elapsedMs = performance.now() - started;
      logRequestCompleted(request, reply.statusCode, elapsedMs);
      metrics.requestCompleted(request, reply.statusCode, elapsedMs / 1000);
    });
    reply.header('x-request-id', request.id).headers(HEADERS_WITHOUT_HOOKS);
    return sendProblem(request, reply, toAppError(error));
  };
}

/** Builds the application without listening: the server listens, tests inject. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, pool } = deps;
  const readPool = deps.readPool ?? pool;
  const lifecycle = deps.lifecycle ?? { shuttingDown: false };
  const metrics = createMetrics({ config, pool });
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: loggerOptions(config) }),
    genReqId: requestIdFrom,
    // request.ip (logged as client_ip) is the X-Forwarded-For client only behind a trusted proxy.
    trustProxy: trustProxyOption(config.trustProxy),
    frameworkErrors: routerErrorHandler(metrics),
    // Fastify's own two lines per request are replaced by one line on response (platform/logging.ts).
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    // Clients that dribble a body or never finish their headers get 408 instead of holding a socket.
    // Node checks headersTimeout <= requestTimeout when it creates the server, hence both in `http`;
    // Fastify then sets requestTimeout and keepAliveTimeout again from its own options.
    http: {
      requestTimeout: config.http.requestTimeoutMs,
      headersTimeout: config.http.headersTimeoutMs,
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
      // Node would answer a missing Host with an empty 400; registerRequestChecks answers problem+json.
      requireHostHeader: false,
    },
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    clientErrorHandler: problemClientErrorHandler(config.http),
    routerOptions: { ignoreTrailingSlash: true },
    return503OnClosing: false,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  refuseUndeclaredQueryParameters(app);
  registerJsonBodyParser(app);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  // First, so that every answer carries them, refusals included.
  await registerSecurityHeaders(app, config);
  registerErrorHandling(app);
  registerRequestChecks(app);
  registerRequestLogging(app);
  registerMetrics(app, metrics);
  // Shed before anything costly: the answer still gets the headers above, and is logged and counted.
  await registerOverload(app, { config, registry: metrics.registry });
  // Nothing reads the database before the schema is current (MIGRATE_ON_START=false waits for it).
  refuseWhileStarting(app, lifecycle);
  // Who is calling, then how much they may call, then whether they may: bad keys count against the address.
  registerAuthentication(app, pool);
  await registerRateLimit(app, { config, registry: metrics.registry });
  registerAuthorization(app, config);
  await registerOpenApi(app, config);
  closeConnectionsWhileShuttingDown(app, lifecycle);
  registerHealthRoutes(app, { config, pool, lifecycle });

  const clock = deps.clock ?? (() => new Date());
  await app.register(loansRoutes, {
    loans: createLoansService({ pool, readPool, config, clock }),
    commands: createCommandRunner({
      pool,
      config,
      clock,
      metrics: registerLoanMetrics(metrics.registry, pool, config.database.connectTimeoutMs),
    }),
    publicBaseUrl: config.publicBaseUrl,
  });
  await app.register(statsRoutes, { stats: createStatsService({ pool: readPool, clock }) });

  const jobs = config.jobsInProcess ? Object.entries(LOAN_JOBS) : [];
  for (const [name, job] of jobs) runPeriodically(app, name, job.intervalMs, () => job.run({ pool, config }));
  return app;
}
