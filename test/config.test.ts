import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('defaults to development on 127.0.0.1:8000 with the embedded database and seeding', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      env: 'development',
      host: '127.0.0.1',
      port: 8000,
      databaseUrl: undefined,
      seedOnStart: true,
      log: { level: 'debug', pretty: false },
      loanMaxAmount: { default: '50000', byCurrency: {} },
      embedded: { port: 54329 },
    });
    expect(config.embedded.dataDir).toMatch(/\/\.data\/postgres$/);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each([
    ['staging', 'info'],
    ['production', 'warn'],
  ])('uses the %s log level %s and never seeds there', (env, level) => {
    const config = loadConfig({ APP_ENV: env, DATABASE_URL: 'postgres://u:p@db:5432/loans' });
    expect(config.log.level).toBe(level);
    expect(config.seedOnStart).toBe(false);
  });

  it('pretty-prints logs only for development on a terminal', () => {
    expect(loadConfig({}, { stdoutIsTty: true }).log.pretty).toBe(true);
    expect(loadConfig({ APP_ENV: 'test' }, { stdoutIsTty: true }).log.pretty).toBe(false);
  });

  it('reads DATABASE_URL from DATABASE_URL_FILE', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cfg-')), 'url');
    writeFileSync(file, 'postgres://app:secret@db:5432/loans\n');
    expect(loadConfig({ DATABASE_URL_FILE: file }).databaseUrl).toBe('postgres://app:secret@db:5432/loans');
  });

  it.each([
    [undefined, false],
    ['false', false],
    ['true', true],
    ['2', 2],
    [
      '10.0.0.0/8, 192.168.1.10,loopback,::1,fd00::/8',
      ['10.0.0.0/8', '192.168.1.10', 'loopback', '::1', 'fd00::/8'],
    ],
  ])('reads TRUST_PROXY=%j as %j', (value, expected) => {
    expect(loadConfig(value === undefined ? {} : { TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });

  it('parses per-currency maximum amounts', () => {
    const config = loadConfig({
      LOAN_MAX_AMOUNT: '75000',
      LOAN_MAX_AMOUNT_BY_CURRENCY: 'vnd=1000000000, KWD=15000.500',
    });
    expect(config.loanMaxAmount).toEqual({
      default: '75000',
      byCurrency: { VND: '1000000000', KWD: '15000.500' },
    });
  });

  it.each([
    [{ APP_ENV: 'prod' }, 'APP_ENV', 'must be one of development, test, staging, production (got "prod")'],
    [{ PORT: 'abc' }, 'PORT', 'must be an integer from 1 to 65535 (got "abc")'],
    [{ PORT: '70000' }, 'PORT', 'must be an integer from 1 to 65535 (got "70000")'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', expect.stringContaining('must be one of fatal, error')],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL', 'must start with postgres:// (got mysql://)'],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL', expect.stringContaining('is not a valid URL')],
    [
      { APP_ENV: 'production' },
      'DATABASE_URL',
      expect.stringContaining('is required when APP_ENV=production'),
    ],
    [
      { DATABASE_URL: 'postgres://a', DATABASE_URL_FILE: '/x' },
      'DATABASE_URL',
      expect.stringContaining('both set'),
    ],
    [{ DATABASE_URL_FILE: '/nonexistent/url' }, 'DATABASE_URL_FILE', 'cannot be read: ENOENT'],
    [{ DATABASE_POOL_MAX: '0' }, 'DATABASE_POOL_MAX', expect.stringContaining('from 1 to 500')],
    [{ EMBEDDED_PG_PORT: '5432' }, 'EMBEDDED_PG_PORT', expect.stringContaining('must not be 5432')],
    [{ SEED_ON_START: 'yes' }, 'SEED_ON_START', 'must be true or false (got "yes")'],
    [{ LOAN_MAX_AMOUNT: '100.50' }, 'LOAN_MAX_AMOUNT', 'must be a positive whole number (got "100.50")'],
    [{ LOAN_MAX_AMOUNT: '0' }, 'LOAN_MAX_AMOUNT', 'must be a positive whole number (got "0")'],
    [
      { LOAN_MAX_AMOUNT_BY_CURRENCY: 'ABC=5' },
      'LOAN_MAX_AMOUNT_BY_CURRENCY',
      'has an unknown currency "ABC"',
    ],
    [
      { LOAN_MAX_AMOUNT_BY_CURRENCY: 'VND=5.5' },
      'LOAN_MAX_AMOUNT_BY_CURRENCY',
      expect.stringContaining('valid in VND'),
    ],
    ...['yes', '0', '256', '10.0.0.0/33', '10.0.0.1,', 'proxy.internal', '1.2.3.4/8/1'].map(
      (value): [Record<string, string>, string, string] => [
        { TRUST_PROXY: value },
        'TRUST_PROXY',
        `must be true, false, a hop count from 1 to 255, or comma-separated IP addresses/CIDR ranges (got "${value}")`,
      ],
    ),
  ])('rejects %j naming %s', (env, variable, problem) => {
    const error = errorOf(env as Record<string, string>);
    expect(error.variable).toBe(variable);
    expect(error.message.startsWith(`${variable} `)).toBe(true);
    expect(error.message.slice(variable.length + 1)).toEqual(problem);
    expect(error.message).not.toContain('\n');
  });
});

describe('loadConfig: HTTP server timeouts', () => {
  it('defaults to 30 s per request, 10 s for the headers and 72 s idle keep-alive', () => {
    expect(loadConfig({}).http).toEqual({
      requestTimeoutMs: 30000,
      headersTimeoutMs: 10000,
      keepAliveTimeoutMs: 72000,
    });
  });

  it('reads the three timeouts, down to one second', () => {
    const config = loadConfig({
      HTTP_REQUEST_TIMEOUT_MS: '1000',
      HTTP_HEADERS_TIMEOUT_MS: '1000',
      HTTP_KEEP_ALIVE_TIMEOUT_MS: '1000',
    });
    expect(config.http).toEqual({ requestTimeoutMs: 1000, headersTimeoutMs: 1000, keepAliveTimeoutMs: 1000 });
  });

  it('shortens the default headers timeout to a request timeout under 10 s', () => {
    expect(loadConfig({ HTTP_REQUEST_TIMEOUT_MS: '4000' }).http.headersTimeoutMs).toBe(4000);
  });

  it.each([
    ['HTTP_REQUEST_TIMEOUT_MS', '999'],
    ['HTTP_REQUEST_TIMEOUT_MS', '0'],
    ['HTTP_REQUEST_TIMEOUT_MS', '600001'],
    ['HTTP_HEADERS_TIMEOUT_MS', '500'],
    ['HTTP_KEEP_ALIVE_TIMEOUT_MS', '72s'],
  ])('rejects %s=%s naming it', (variable, value) => {
    const error = errorOf({ [variable]: value });
    expect(error.variable).toBe(variable);
    expect(error.message).toBe(`${variable} must be an integer from 1000 to 600000 (got "${value}")`);
  });

  it('refuses a headers timeout longer than the request timeout, naming HTTP_HEADERS_TIMEOUT_MS', () => {
    const error = errorOf({ HTTP_REQUEST_TIMEOUT_MS: '5000', HTTP_HEADERS_TIMEOUT_MS: '6000' });
    expect(error.variable).toBe('HTTP_HEADERS_TIMEOUT_MS');
    expect(error.message).toBe(
      'HTTP_HEADERS_TIMEOUT_MS must not exceed HTTP_REQUEST_TIMEOUT_MS (5000) (got "6000")',
    );
  });
});

describe('IDEMPOTENCY_WAIT_MS', () => {
  it('accepts 0 (do not wait) and any wait below the statement timeout', () => {
    expect(loadConfig({ IDEMPOTENCY_WAIT_MS: '0' }).idempotency.waitMs).toBe(0);
    expect(
      loadConfig({ IDEMPOTENCY_WAIT_MS: '4999', DATABASE_STATEMENT_TIMEOUT_MS: '5000' }).idempotency.waitMs,
    ).toBe(4999);
  });

  it('refuses a wait that is not below DATABASE_STATEMENT_TIMEOUT_MS', () => {
    const error = errorOf({ IDEMPOTENCY_WAIT_MS: '5000', DATABASE_STATEMENT_TIMEOUT_MS: '5000' });
    expect(error.variable).toBe('IDEMPOTENCY_WAIT_MS');
    expect(error.message).toBe(
      'IDEMPOTENCY_WAIT_MS must be below DATABASE_STATEMENT_TIMEOUT_MS (5000) (got "5000")',
    );
  });
});

describe('PUBLIC_BASE_URL', () => {
  it('is unset by default, so links are relative', () => {
    expect(loadConfig({}).publicBaseUrl).toBeUndefined();
  });

  it.each([
    ['https://api.branchloans.com', 'https://api.branchloans.com'],
    ['https://api.branchloans.com/', 'https://api.branchloans.com'],
    ['http://127.0.0.1:8000', 'http://127.0.0.1:8000'],
  ])('takes the origin %s', (value, origin) => {
    expect(loadConfig({ PUBLIC_BASE_URL: value }).publicBaseUrl).toBe(origin);
  });

  it.each([
    'api.branchloans.com',
    'ftp://branchloans.com',
    'https://branchloans.com/api',
    'https://x.com?a=1',
  ])('refuses %s, which is not an http(s) origin', (value) => {
    expect(errorOf({ PUBLIC_BASE_URL: value }).variable).toBe('PUBLIC_BASE_URL');
  });
});

describe('authentication, rate limits and CORS', () => {
  const server = { DATABASE_URL: 'postgres://u:p@db:5432/loans' };

  it('requires authentication and limits rates in staging and production, not in development and test', () => {
    for (const env of ['staging', 'production']) {
      const config = loadConfig({ APP_ENV: env, ...server });
      expect([config.auth.required, config.rateLimit.enabled]).toEqual([true, true]);
    }
    for (const env of ['development', 'test']) {
      const config = loadConfig({ APP_ENV: env });
      expect([config.auth.required, config.rateLimit.enabled]).toEqual([false, false]);
    }
    expect(loadConfig({ AUTH_REQUIRED: 'true' }).auth.required).toBe(true);
  });

  it('refuses AUTH_REQUIRED=false in staging and production', () => {
    const error = errorOf({ APP_ENV: 'production', AUTH_REQUIRED: 'false', ...server });
    expect(error.message).toBe(
      'AUTH_REQUIRED cannot be false when APP_ENV=production: authentication is always on there',
    );
  });

  it('tags keys by environment and checks a bootstrap key file', () => {
    expect(loadConfig({ APP_ENV: 'production', ...server }).auth.keyTag).toBe('prod');
    const dir = mkdtempSync(join(tmpdir(), 'bl-config-'));
    const file = join(dir, 'bootstrap');
    const key = `bl_prod_${'A'.repeat(43)}`;
    writeFileSync(file, `${key}\n`);
    expect(loadConfig({ BOOTSTRAP_ADMIN_KEY_FILE: file }).auth.bootstrapAdminKey).toBe(key);
    writeFileSync(file, 'hunter2\n');
    const error = errorOf({ BOOTSTRAP_ADMIN_KEY_FILE: file });
    expect(error.variable).toBe('BOOTSTRAP_ADMIN_KEY_FILE');
    expect(error.message).not.toContain('hunter2');
  });

  it('reads the rate limits and REDIS_URL', () => {
    expect(loadConfig({}).rateLimit).toEqual({
      enabled: false,
      perKeyPerMinute: 600,
      perAddressPerMinute: 120,
      redisUrl: undefined,
    });
    const config = loadConfig({
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_PER_MINUTE: '60',
      RATE_LIMIT_ANONYMOUS_PER_MINUTE: '10',
      REDIS_URL: 'redis://127.0.0.1:6379/0',
    });
    expect(config.rateLimit).toEqual({
      enabled: true,
      perKeyPerMinute: 60,
      perAddressPerMinute: 10,
      redisUrl: 'redis://127.0.0.1:6379/0',
    });
    expect(errorOf({ REDIS_URL: 'http://x' }).variable).toBe('REDIS_URL');
    expect(errorOf({ RATE_LIMIT_PER_MINUTE: '0' }).variable).toBe('RATE_LIMIT_PER_MINUTE');
  });

  it('takes CORS origins only as origins', () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: 'https://a.example, http://127.0.0.1:3000' }).corsOrigins).toEqual([
      'https://a.example',
      'http://127.0.0.1:3000',
    ]);
    expect(errorOf({ CORS_ORIGINS: 'https://a.example/app' }).variable).toBe('CORS_ORIGINS');
    expect(errorOf({ CORS_ORIGINS: '*' }).variable).toBe('CORS_ORIGINS');
  });
});

describe('running beyond one machine', () => {
  const server = { DATABASE_URL: 'postgres://u:p@db:5432/loans' };

  it('migrates and runs jobs in process in development only, by default', () => {
    expect(loadConfig({})).toMatchObject({
      migrateOnStart: true,
      jobsInProcess: true,
      shutdownDrainDelayMs: 0,
    });
    expect(loadConfig({ APP_ENV: 'test' })).toMatchObject({ migrateOnStart: true, jobsInProcess: false });
    for (const env of ['staging', 'production']) {
      expect(loadConfig({ APP_ENV: env, ...server })).toMatchObject({
        migrateOnStart: false,
        jobsInProcess: false,
      });
    }
    expect(
      loadConfig({ APP_ENV: 'production', ...server, MIGRATE_ON_START: 'true', JOBS_IN_PROCESS: 'true' }),
    ).toMatchObject({ migrateOnStart: true, jobsInProcess: true });
  });

  it('takes the read, migration and drain settings', () => {
    const config = loadConfig({
      ...server,
      DATABASE_READ_URL: 'postgres://u:p@db-ro:5432/loans',
      MIGRATION_DATABASE_URL: 'postgres://u:p@db-rw:5432/loans',
      SHUTDOWN_DRAIN_DELAY_MS: '5000',
    });
    expect(config).toMatchObject({
      databaseReadUrl: 'postgres://u:p@db-ro:5432/loans',
      migrationDatabaseUrl: 'postgres://u:p@db-rw:5432/loans',
      shutdownDrainDelayMs: 5000,
    });
    expect(errorOf({ DATABASE_READ_URL: 'mysql://x/y' }).message).toBe(
      'DATABASE_READ_URL must start with postgres:// (got mysql://)',
    );
    expect(errorOf({ SHUTDOWN_DRAIN_DELAY_MS: '-1' }).variable).toBe('SHUTDOWN_DRAIN_DELAY_MS');
  });
});

describe('load shedding (OVERLOAD_*)', () => {
  it('sheds past a 200 ms event-loop delay by default, with the utilization check off', () => {
    expect(loadConfig({}).overload).toEqual({ maxEventLoopDelayMs: 200, maxEventLoopUtilization: 0 });
    expect(
      loadConfig({ APP_ENV: 'production', DATABASE_URL: 'postgres://u:p@db/l' }).overload.maxEventLoopDelayMs,
    ).toBe(200);
    // Test runs load the machine in bursts of their own: off unless a test turns it on.
    expect(loadConfig({ APP_ENV: 'test' }).overload.maxEventLoopDelayMs).toBe(0);
  });

  it('takes both limits, and 0 for off', () => {
    const config = loadConfig({
      OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
      OVERLOAD_MAX_EVENT_LOOP_UTILIZATION: '0.98',
    });
    expect(config.overload).toEqual({ maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0.98 });
    expect(loadConfig({ OVERLOAD_MAX_EVENT_LOOP_UTILIZATION: '.9' }).overload.maxEventLoopUtilization).toBe(
      0.9,
    );
    expect(loadConfig({ OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '1000' }).overload.maxEventLoopDelayMs).toBe(1000);
  });

  it.each(['-1', '1.5', '200ms', '60001'])(
    'refuses OVERLOAD_MAX_EVENT_LOOP_DELAY_MS=%s naming it',
    (value) => {
      expect(errorOf({ OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: value }).message).toBe(
        `OVERLOAD_MAX_EVENT_LOOP_DELAY_MS must be an integer from 0 to 60000 (got "${value}")`,
      );
    },
  );

  it.each(['1', '1.0', '0.98x', '-0.5', '98%'])(
    'refuses OVERLOAD_MAX_EVENT_LOOP_UTILIZATION=%s naming it',
    (value) => {
      expect(errorOf({ OVERLOAD_MAX_EVENT_LOOP_UTILIZATION: value }).message).toBe(
        `OVERLOAD_MAX_EVENT_LOOP_UTILIZATION must be 0 (off) or a fraction below 1 such as 0.98 (got "${value}")`,
      );
    },
  );
});
