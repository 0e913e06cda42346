// The only module that reads the environment. Everything else receives a frozen Config.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { normalizeCurrency } from './money/currencies.ts';
import { parseMoney } from './money/money.ts';
import { keyPrefix } from './platform/api-keys.ts';

const APP_ENVS = ['development', 'test', 'staging', 'production'] as const;
export type AppEnv = (typeof APP_ENVS)[number];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type TrustProxy = boolean | number | readonly string[];

export interface Config {
  env: AppEnv;
  host: string;
  port: number;
  /**
   * How long a client may take to send a whole request (body included) and its header section, and how
   * long an idle keep-alive connection stays open. Slow clients get 408 instead of holding sockets.
   */
  http: { requestTimeoutMs: number; headersTimeoutMs: number; keepAliveTimeoutMs: number };
  /** undefined: the app starts its own embedded PostgreSQL. */
  databaseUrl: string | undefined;
  /** A standby (or its pooler) for lists and stats; unset: they read the primary too. */
  databaseReadUrl: string | undefined;
  /** A direct, non-pooled URL for `db:migrate` (session advisory locks); unset: DATABASE_URL. */
  migrationDatabaseUrl: string | undefined;
  /** Apply pending migrations when the server starts; otherwise readiness stays 503 until they are. */
  migrateOnStart: boolean;
  /** Run the periodic jobs (loans/jobs.ts) in this process; else `npm run jobs` (a CronJob) does. */
  jobsInProcess: boolean;
  database: { poolMax: number; connectTimeoutMs: number; statementTimeoutMs: number };
  embedded: { dataDir: string; port: number };
  log: { level: LogLevel; pretty: boolean };
  /**
   * Which proxies may set X-Forwarded-For (Fastify's `trustProxy`): none (false), any (true), the
   * nearest N hops, or these addresses/ranges. Only then is the forwarded client address believed.
   */
  trustProxy: TrustProxy;
  auth: {
    /** Off: requests without a key are anonymous with full access (development and test only). */
    required: boolean;
    /** A key (`bl_<env>_<random>`) registered as an admin key at start, idempotently. */
    bootstrapAdminKey: string | undefined;
    keyTag: string;
  };
  rateLimit: {
    enabled: boolean;
    /** Requests per minute per API key, and per client address for requests without a key. */
    perKeyPerMinute: number;
    perAddressPerMinute: number;
    /** Counters shared by every replica; unset: each process counts for itself. */
    redisUrl: string | undefined;
  };
  /** Origins that browsers may call the API from (CORS); none by default. */
  corsOrigins: readonly string[];
  /** Scheme and host that clients use (e.g. https://api.branchloans.com), for absolute links; else links are relative. */
  publicBaseUrl: string | undefined;
  seedOnStart: boolean;
  /** Largest loan amount in major units, per currency; `default` applies to the others. */
  loanMaxAmount: { default: string; byCurrency: Readonly<Record<string, string>> };
  shutdownTimeoutMs: number;
  /** After SIGTERM: keep serving (readiness 503) this long, so load balancers stop sending first. */
  shutdownDrainDelayMs: number;
  /** Worker processes (node:cluster) sharing the port; 1 serves from this process. */
  webConcurrency: number;
  /**
   * Past either limit, requests other than the probes and /metrics are shed with 503
   * (platform/overload.ts); 0 turns a check off.
   */
  overload: { maxEventLoopDelayMs: number; maxEventLoopUtilization: number };
  /** How long a request waits for another one holding its Idempotency-Key; how long keys are kept. */
  idempotency: { waitMs: number; ttlHours: number };
  version: string;
  commit: string;
}

/** Per-environment defaults: environments differ in data, not in branches. */
interface EnvDefaults {
  logLevel: LogLevel;
  seedOnStart: boolean;
  embeddedAllowed: boolean;
  /** Authentication can be switched off only where this is false. */
  authForced: boolean;
  rateLimitEnabled: boolean;
  /** The `<env>` of the API keys made here: `bl_<env>_<random>`. */
  keyTag: string;
  /** Test runs load the machine in bursts of their own: load shedding is off there unless a test turns it on. */
  maxEventLoopDelayMs: number;
  /** Staging and production migrate as a step of their own (a compose service, a Kubernetes Job). */
  migrateOnStart: boolean;
  jobsInProcess: boolean;
}
const ENV_DEFAULTS: Record<AppEnv, EnvDefaults> = {
  development: {
    logLevel: 'debug',
    seedOnStart: true,
    embeddedAllowed: true,
    authForced: false,
    rateLimitEnabled: false,
    keyTag: 'dev',
    maxEventLoopDelayMs: 200,
    migrateOnStart: true,
    jobsInProcess: true,
  },
  test: {
    logLevel: 'warn',
    seedOnStart: false,
    embeddedAllowed: true,
    authForced: false,
    rateLimitEnabled: false,
    keyTag: 'test',
    maxEventLoopDelayMs: 0,
    migrateOnStart: true,
    jobsInProcess: false,
  },
  staging: {
    logLevel: 'info',
    seedOnStart: false,
    embeddedAllowed: false,
    authForced: true,
    rateLimitEnabled: true,
    keyTag: 'staging',
    maxEventLoopDelayMs: 200,
    migrateOnStart: false,
    jobsInProcess: false,
  },
  production: {
    logLevel: 'warn',
    seedOnStart: false,
    embeddedAllowed: false,
    authForced: true,
    rateLimitEnabled: true,
    keyTag: 'prod',
    maxEventLoopDelayMs: 200,
    migrateOnStart: false,
    jobsInProcess: false,
  },
};

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')} (got "${value}")`);
  }
  return value as T;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed < min || parsed > max) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max} (got "${value}")`);
  }
  return parsed;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new ConfigError(name, `must be true or false (got "${value}")`);
}

// proxy-addr's names for the loopback, link-local and private ranges.
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isAddressOrRange(value: string): boolean {
  if (PROXY_RANGE_NAMES.has(value)) return true;
  const [address = '', prefix, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** TRUST_PROXY: true/false, a hop count, or comma-separated IP addresses and CIDR ranges. */
function trustProxy(env: Env): TrustProxy {
  const name = 'TRUST_PROXY';
  const value = env[name]?.trim();
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops >= 1 && hops <= 255) return hops;
  } else {
    const entries = value.split(',').map((entry) => entry.trim());
    if (entries.every(isAddressOrRange)) return Object.freeze(entries);
  }
  throw new ConfigError(
    name,
    `must be true, false, a hop count from 1 to 255, or comma-separated IP addresses/CIDR ranges (got "${value}")`,
  );
}

/** NAME, or the contents of the file named by NAME_FILE (Docker and Kubernetes secrets). */
function secret(env: Env, name: string): string | undefined {
  const file = env[`${name}_FILE`];
  if (env[name] && file) throw new ConfigError(name, `and ${name}_FILE are both set; set only one`);
  if (!file) return env[name] || undefined;
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch (error) {
    throw new ConfigError(
      `${name}_FILE`,
      `cannot be read: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
}

/** The http(s) origin `value` is (scheme, host, port; a trailing slash allowed), or undefined. */
function originOf(value: string): string | undefined {
  try {
    const { protocol, origin } = new URL(value);
    return /^https?:$/.test(protocol) && value.replace(/\/$/, '') === origin ? origin : undefined;
  } catch {
    return undefined;
  }
}

/** PUBLIC_BASE_URL: an http(s) origin with no path, query or fragment; never taken from a request's Host. */
function publicBaseUrl(env: Env): string | undefined {
  const value = env.PUBLIC_BASE_URL;
  if (!value) return undefined;
  const origin = originOf(value);
  if (origin === undefined) {
    throw new ConfigError(
      'PUBLIC_BASE_URL',
      `must be an http(s) origin such as https://api.example.com (got "${value}")`,
    );
  }
  return origin;
}

function authentication(env: Env, appEnv: AppEnv): Config['auth'] {
  const { authForced, keyTag } = ENV_DEFAULTS[appEnv];
  const required = boolean(env, 'AUTH_REQUIRED', authForced);
  if (authForced && !required) {
    throw new ConfigError(
      'AUTH_REQUIRED',
      `cannot be false when APP_ENV=${appEnv}: authentication is always on there`,
    );
  }
  const name = 'BOOTSTRAP_ADMIN_KEY';
  const bootstrapAdminKey = secret(env, name);
  if (bootstrapAdminKey !== undefined && keyPrefix(bootstrapAdminKey) === undefined) {
    throw new ConfigError(
      env[`${name}_FILE`] ? `${name}_FILE` : name,
      `must hold a key of the form bl_${keyTag}_<at least 43 characters of A-Z a-z 0-9 _ ->`,
    );
  }
  return Object.freeze({ required, bootstrapAdminKey, keyTag });
}

function rateLimits(env: Env, appEnv: AppEnv): Config['rateLimit'] {
  const redisUrl = secret(env, 'REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\/\S+$/.test(redisUrl)) {
    throw new ConfigError('REDIS_URL', 'must start with redis:// or rediss://');
  }
  return Object.freeze({
    enabled: boolean(env, 'RATE_LIMIT_ENABLED', ENV_DEFAULTS[appEnv].rateLimitEnabled),
    perKeyPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
    perAddressPerMinute: integer(env, 'RATE_LIMIT_ANONYMOUS_PER_MINUTE', 120, 1, 1_000_000),
    redisUrl,
  });
}

/** CORS_ORIGINS: comma-separated origins such as https://app.branchloans.com. */
function corsOrigins(env: Env): readonly string[] {
  const origins = (env.CORS_ORIGINS ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    if (originOf(origin) !== origin) {
      throw new ConfigError(
        'CORS_ORIGINS',
        `must list origins such as https://app.example.com (got "${origin}")`,
      );
    }
  }
  return Object.freeze(origins);
}

/** A PostgreSQL URL from NAME or NAME_FILE. */
function postgresUrl(env: Env, name: string): string | undefined {
  const url = secret(env, name);
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(name, 'is not a valid URL (expected postgres://user:password@host:5432/db)');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError(name, `must start with postgres:// (got ${parsed.protocol}//)`);
  }
  return url;
}

function maxAmount(name: string, currency: string, amount: string): string {
  const parsed = parseMoney(amount, currency);
  if (!parsed.ok || parsed.value <= 0n) {
    const what = currency === 'JPY' ? 'a positive whole number' : `a positive amount valid in ${currency}`;
    throw new ConfigError(name, `must be ${what} (got "${amount}")`);
  }
  return amount;
}

/** LOAN_MAX_AMOUNT_BY_CURRENCY="VND=1000000000,JPY=5000000". */
function maxAmountByCurrency(env: Env): Record<string, string> {
  const name = 'LOAN_MAX_AMOUNT_BY_CURRENCY';
  const result: Record<string, string> = {};
  for (const entry of (env[name] ?? '').split(',').filter((part) => part.trim() !== '')) {
    const [code = '', amount = ''] = entry.split('=').map((part) => part.trim());
    const currency = normalizeCurrency(code);
    if (!currency) throw new ConfigError(name, `has an unknown currency "${code}"`);
    result[currency] = maxAmount(name, currency, amount);
  }
  return result;
}

const HTTP_TIMEOUT_MIN_MS = 1000;
const HTTP_TIMEOUT_MAX_MS = 600000;

function httpTimeouts(env: Env): Config['http'] {
  const ms = (name: string, fallback: number) =>
    integer(env, name, fallback, HTTP_TIMEOUT_MIN_MS, HTTP_TIMEOUT_MAX_MS);
  const requestTimeoutMs = ms('HTTP_REQUEST_TIMEOUT_MS', 30000);
  // The headers are part of the request: only a shorter request timeout shortens their default.
  const headersTimeoutMs = ms('HTTP_HEADERS_TIMEOUT_MS', Math.min(10000, requestTimeoutMs));
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new ConfigError(
      'HTTP_HEADERS_TIMEOUT_MS',
      `must not exceed HTTP_REQUEST_TIMEOUT_MS (${requestTimeoutMs}) (got "${headersTimeoutMs}")`,
    );
  }
  // Longer than the proxies' idle timeout (nginx upstream keepalive 60 s), so they close first.
  const keepAliveTimeoutMs = ms('HTTP_KEEP_ALIVE_TIMEOUT_MS', 72000);
  return Object.freeze({ requestTimeoutMs, headersTimeoutMs, keepAliveTimeoutMs });
}

/** A request waiting for its key's lock must give up (409) before the database cancels it (503). */
function idempotencyWaitMs(env: Env, statementTimeoutMs: number): number {
  const waitMs = integer(env, 'IDEMPOTENCY_WAIT_MS', 2000, 0, 60000);
  if (waitMs >= statementTimeoutMs) {
    throw new ConfigError(
      'IDEMPOTENCY_WAIT_MS',
      `must be below DATABASE_STATEMENT_TIMEOUT_MS (${statementTimeoutMs}) (got "${waitMs}")`,
    );
  }
  return waitMs;
}

/** OVERLOAD_MAX_EVENT_LOOP_UTILIZATION: 0 (off) or a fraction below 1 such as 0.98. */
function eventLoopUtilization(env: Env): number {
  const name = 'OVERLOAD_MAX_EVENT_LOOP_UTILIZATION';
  const value = env[name];
  if (value === undefined || value === '') return 0;
  if (!/^(0|0?\.\d+)$/.test(value)) {
    throw new ConfigError(name, `must be 0 (off) or a fraction below 1 such as 0.98 (got "${value}")`);
  }
  return Number(value);
}

// The delay is the mean over half a second of how late a 10 ms timer fires (platform/overload.ts).
function overload(env: Env, appEnv: AppEnv): Config['overload'] {
  return Object.freeze({
    maxEventLoopDelayMs: integer(
      env,
      'OVERLOAD_MAX_EVENT_LOOP_DELAY_MS',
      ENV_DEFAULTS[appEnv].maxEventLoopDelayMs,
      0,
      60000,
    ),
    maxEventLoopUtilization: eventLoopUtilization(env),
  });
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Settings that command-line flags give instead of the environment, checked like the variables they replace. */
export interface ConfigOverrides {
  env?: AppEnv;
  databaseUrl?: string;
}

function withOverrides(env: Env, overrides: ConfigOverrides): Env {
  return {
    ...env,
    ...(overrides.env !== undefined && { APP_ENV: overrides.env }),
    ...(overrides.databaseUrl !== undefined && {
      DATABASE_URL: overrides.databaseUrl,
      DATABASE_URL_FILE: undefined,
    }),
  };
}

export function loadConfig(
  environment: Env = process.env,
  options: { stdoutIsTty?: boolean; overrides?: ConfigOverrides } = {},
): Config {
  const env = withOverrides(environment, options.overrides ?? {});
  const appEnv = oneOf(env, 'APP_ENV', APP_ENVS, 'development');
  const defaults = ENV_DEFAULTS[appEnv];
  const url = postgresUrl(env, 'DATABASE_URL');
  if (url === undefined && !defaults.embeddedAllowed) {
    throw new ConfigError(
      'DATABASE_URL',
      `is required when APP_ENV=${appEnv} (the embedded database is for development)`,
    );
  }
  const port = integer(env, 'PORT', 8000, 1, 65535);
  const embeddedPort = integer(env, 'EMBEDDED_PG_PORT', 54329, 1024, 65535);
  if (embeddedPort === 5432)
    throw new ConfigError('EMBEDDED_PG_PORT', 'must not be 5432, where a system PostgreSQL may run');

  const database = Object.freeze({
    poolMax: integer(env, 'DATABASE_POOL_MAX', 10, 1, 500),
    connectTimeoutMs: integer(env, 'DATABASE_CONNECT_TIMEOUT_MS', 2000, 100, 60000),
    statementTimeoutMs: integer(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 5000, 100, 600000),
  });

  return Object.freeze({
    env: appEnv,
    host: env.HOST || '127.0.0.1',
    port,
    http: httpTimeouts(env),
    databaseUrl: url,
    databaseReadUrl: postgresUrl(env, 'DATABASE_READ_URL'),
    migrationDatabaseUrl: postgresUrl(env, 'MIGRATION_DATABASE_URL'),
    migrateOnStart: boolean(env, 'MIGRATE_ON_START', defaults.migrateOnStart),
    jobsInProcess: boolean(env, 'JOBS_IN_PROCESS', defaults.jobsInProcess),
    database,
    embedded: Object.freeze({
      dataDir: resolve(env.EMBEDDED_PG_DATA_DIR || '.data/postgres'),
      port: embeddedPort,
    }),
    log: Object.freeze({
      level: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, defaults.logLevel),
      pretty: boolean(env, 'LOG_PRETTY', (options.stdoutIsTty ?? false) && appEnv === 'development'),
    }),
    trustProxy: trustProxy(env),
    auth: authentication(env, appEnv),
    rateLimit: rateLimits(env, appEnv),
    corsOrigins: corsOrigins(env),
    publicBaseUrl: publicBaseUrl(env),
    seedOnStart: boolean(env, 'SEED_ON_START', defaults.seedOnStart),
    loanMaxAmount: Object.freeze({
      // A whole number, so that it is exact in every currency, including those without minor units.
      default: maxAmount('LOAN_MAX_AMOUNT', 'JPY', env.LOAN_MAX_AMOUNT || '50000'),
      byCurrency: Object.freeze(maxAmountByCurrency(env)),
    }),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10000, 100, 600000),
    shutdownDrainDelayMs: integer(env, 'SHUTDOWN_DRAIN_DELAY_MS', 0, 0, 120000),
    webConcurrency: integer(env, 'WEB_CONCURRENCY', 1, 1, 64),
    overload: overload(env, appEnv),
    idempotency: Object.freeze({
      waitMs: idempotencyWaitMs(env, database.statementTimeoutMs),
      ttlHours: integer(env, 'IDEMPOTENCY_TTL_HOURS', 24, 24, 8760),
    }),
    version: packageVersion(),
    commit: env.GIT_COMMIT || 'unknown',
  });
}

/** The configuration of this process, or a one-line `Invalid configuration: …` on stderr and exit code 1. */
export function readConfigOrExit(overrides: ConfigOverrides = {}): Config {
  try {
    return loadConfig(process.env, { stdoutIsTty: process.stdout.isTTY, overrides });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Invalid configuration: ${error.message}`);
    process.exit(1);
  }
}
