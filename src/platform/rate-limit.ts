// Rate limits (API.md §6): a budget per API key, or per client address for requests without a valid
// key, on /api routes only (those with `config.role`). @fastify/rate-limit counts, in Redis when
// REDIS_URL is set (one budget for all replicas) or else in this process. Redis trouble never fails a
// request: it is served without a limit (fail open) and counted in rate_limit_store_errors_total.
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config.ts';
import { AppError } from './errors.ts';

const WINDOW_SECONDS = 60;
// A healthy Redis answers in well under a millisecond; past these, requests go on without a limit.
const REDIS_CONNECT_TIMEOUT_MS = 1000;
const REDIS_COMMAND_TIMEOUT_MS = 500;
const STORE_ERROR_LOG_INTERVAL_MS = 60_000;

/** What the limiter reports for a counted request (@fastify/rate-limit's createRateLimit result). */
interface Budget {
  max: number;
  remaining: number;
  ttlInSeconds: number;
  isExceeded: boolean;
}

/** The budget a request is counted in: its API key's, or its client address's (an IPv6 /64 as one). */
function budgetKey(request: FastifyRequest): string {
  return request.apiKey ? `key:${request.apiKey.id}` : `address:${normalizeIP(request.ip)}`;
}

/** IETF draft-ietf-httpapi-ratelimit-headers-07: the limit, what is left, and seconds until it refills. */
function budgetHeaders(budget: Budget): Record<string, string> {
  return {
    'ratelimit-limit': String(budget.max),
    'ratelimit-remaining': String(budget.remaining),
    'ratelimit-reset': String(budget.ttlInSeconds),
    'ratelimit-policy': `${budget.max};w=${WINDOW_SECONDS}`,
  };
}

function rateLimited(request: FastifyRequest, budget: Budget): AppError {
  const whose = request.apiKey ? 'this API key' : 'requests from this address without a valid API key';
  return new AppError('rate-limited', {
    detail: `The limit for ${whose} is ${budget.max} requests a minute; retry in ${budget.ttlInSeconds} s`,
    headers: { 'retry-after': String(Math.max(1, budget.ttlInSeconds)) },
  });
}

/**
 * Counts requests served without a limit because the store failed, and logs the failure at most once
 * a minute, however many requests (or reconnection attempts) fail.
 */
function storeFailures(app: FastifyInstance, registry: Registry) {
  const servedUnlimited = new Counter({
    name: 'rate_limit_store_errors_total',
    help: 'Requests served without a rate limit because the rate-limit store (Redis) failed',
    registers: [registry],
  });
  let lastLoggedAt = Number.NEGATIVE_INFINITY;
  const log = (error: Error) => {
    const now = Date.now();
    if (now - lastLoggedAt < STORE_ERROR_LOG_INTERVAL_MS) return;
    lastLoggedAt = now;
    app.log.warn(
      { reason: error.message },
      'rate limit store unavailable: requests are served without a limit until it answers',
    );
  };
  return {
    log,
    servedUnlimited(error: Error) {
      servedUnlimited.inc();
      log(error);
    },
  };
}

/**
 * A client that never makes a request wait: with no connection a command fails at once (no offline
 * queue), a command without an answer fails after REDIS_COMMAND_TIMEOUT_MS, and in the background it
 * keeps reconnecting (ioredis' default backoff, up to 2 s apart) until Redis is back.
 */
async function connectRedis(
  app: FastifyInstance,
  url: string,
  onError: (error: Error) => void,
): Promise<Redis> {
  // Loaded only when used: the client holds some 10 MB of a process that has no REDIS_URL.
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, {
    connectionName: 'branch-loans-rate-limit',
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  redis.on('error', onError);
  // Before serving, give the connection a moment, so that the first requests are counted too.
  app.addHook('onReady', () => settled(redis, REDIS_CONNECT_TIMEOUT_MS));
  app.addHook('onClose', async () => redis.disconnect());
  return redis;
}

/** Resolves once the client is ready, has failed once, or `ms` have passed: it never fails the start. */
function settled(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done).off('error', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.once('ready', done).once('error', done);
  });
}

/**
 * Registers the limit as an onRequest hook. Call it after registerAuthentication (which says whose the
 * request is) and before registerAuthorization (which refuses), so that bad keys are counted against
 * their address.
 */
export async function registerRateLimit(
  app: FastifyInstance,
  deps: { config: Config; registry: Registry },
): Promise<void> {
  const { env, rateLimit: limits } = deps.config;
  if (!limits.enabled) return;
  const failures = storeFailures(app, deps.registry);
  const redis = limits.redisUrl ? await connectRedis(app, limits.redisUrl, failures.log) : undefined;

  // `global: false`: the plugin adds no route hooks of its own (they would run after the app's
  // hooks, so after authorization); the one hook below runs where it is registered.
  await app.register(rateLimit, {
    global: false,
    timeWindow: WINDOW_SECONDS * 1000,
    max: (request) => (request.apiKey ? limits.perKeyPerMinute : limits.perAddressPerMinute),
    keyGenerator: budgetKey,
    redis,
    // Staging and production may share one Redis; their budgets must not.
    nameSpace: `branch-loans:${env}:rate-limit:`,
  });
  const count = app.createRateLimit();

  app.addHook('onRequest', async (request, reply) => {
    if (!request.routeOptions.config.role) return;
    const budget = await count(request).catch((error: Error) => failures.servedUnlimited(error));
    // isAllowed means "on the plugin's allow list", and there is none.
    if (!budget || budget.isAllowed) return;
    reply.headers(budgetHeaders(budget));
    if (budget.isExceeded) throw rateLimited(request, budget);
  });
}
