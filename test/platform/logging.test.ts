import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loggerOptions, redactConnectionStrings, redactLine } from '../../src/platform/logging.ts';
import { buildTestApp, type TestApp, testConfig } from '../helpers/app.ts';
import { loanIn } from '../helpers/loans.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
  // Fails like a driver error would, with the connection string in its message.
  t.app.get('/test/db-error', async () => {
    throw new Error('connect to postgres://app:s3cret@db:5432/loans failed');
  });
});
afterAll(() => t.close());

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const linesOf = (logs: Record<string, unknown>[], requestId: string) =>
  logs.filter((line) => line.request_id === requestId);

/** Another app on the test database, configured by `env`, with its own captured logs. */
async function appWith(env: Record<string, string>) {
  const config = testConfig({ LOG_LEVEL: 'info', ...env });
  const logs: Record<string, unknown>[] = [];
  const logger = pino(loggerOptions(config), { write: (line: string) => logs.push(JSON.parse(line)) });
  const app = await buildApp({ config, pool: t.pool, logger });
  return { app, logs };
}

async function clientIpSeen(app: FastifyInstance, logs: Record<string, unknown>[], forwardedFor: string) {
  const requestId = `ip-${logs.length}`;
  await app.inject({
    url: '/liveness',
    headers: { 'x-request-id': requestId, 'x-forwarded-for': forwardedFor },
  });
  return linesOf(logs, requestId)[0]?.client_ip;
}

describe('the request log line', () => {
  it('is one JSON line per request with id, route template, status, duration, actor and client address', async () => {
    const id = await loanIn(t.app, 'pending');
    const response = await t.app.inject({
      url: `/api/loans/${id}`,
      headers: { 'x-request-id': 'abc-1' },
    });
    expect(response.statusCode).toBe(200);

    const lines = linesOf(t.logs, 'abc-1');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual({
      level: 'info',
      time: expect.stringMatching(ISO_TIME),
      pid: process.pid,
      hostname: expect.any(String),
      request_id: 'abc-1',
      method: 'GET',
      route: '/api/loans/:id',
      path: `/api/loans/${id}`,
      status: 200,
      duration_ms: expect.any(Number),
      actor: 'anonymous',
      client_ip: '127.0.0.1',
      msg: 'request completed',
    });
    expect(lines[0]!.duration_ms).toBeGreaterThan(0);

    await t.app.inject({ url: '/api/loans?limit=1', headers: { 'x-request-id': 'abc-2' } });
    expect(linesOf(t.logs, 'abc-2')[0]).toMatchObject({ route: '/api/loans', path: '/api/loans' });
  });

  it('logs errors and unknown routes too, with their status', async () => {
    await t.app.inject({ url: '/nothing/here', headers: { 'x-request-id': 'abc-404' } });
    await t.app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: { 'x-request-id': 'abc-415', 'content-type': 'text/plain' },
      payload: 'x',
    });
    expect(linesOf(t.logs, 'abc-404')).toEqual([
      expect.objectContaining({ msg: 'request completed', route: 'unmatched', status: 404 }),
    ]);
    expect(linesOf(t.logs, 'abc-415')).toEqual([
      expect.objectContaining({ msg: 'request completed', route: '/api/loans', status: 415 }),
    ]);
  });

  it('takes the client address from X-Forwarded-For only when TRUST_PROXY trusts the proxy', async () => {
    expect(await clientIpSeen(t.app, t.logs, '203.0.113.7')).toBe('127.0.0.1');

    const cases: [Record<string, string>, string, string][] = [
      [{ TRUST_PROXY: 'false' }, '203.0.113.7', '127.0.0.1'],
      [{ TRUST_PROXY: 'true' }, '203.0.113.7', '203.0.113.7'],
      // The peer (127.0.0.1) is the trusted proxy; a spoofed entry further left is not believed.
      [{ TRUST_PROXY: '127.0.0.1' }, '198.51.100.1, 203.0.113.7', '203.0.113.7'],
      [{ TRUST_PROXY: '127.0.0.0/8,10.0.0.0/8' }, '203.0.113.7', '203.0.113.7'],
      [{ TRUST_PROXY: '10.0.0.0/8' }, '203.0.113.7', '127.0.0.1'],
      [{ TRUST_PROXY: '1' }, '198.51.100.1, 203.0.113.7', '203.0.113.7'],
      [{ TRUST_PROXY: '2' }, '198.51.100.1, 203.0.113.7', '198.51.100.1'],
    ];
    for (const [env, forwardedFor, expected] of cases) {
      const { app, logs } = await appWith(env);
      try {
        expect(await clientIpSeen(app, logs, forwardedFor), JSON.stringify(env)).toBe(expected);
      } finally {
        await app.close();
      }
    }
  });
});

describe('the time of a line', () => {
  it('is the millisecond the line was written, in UTC', () => {
    const times: unknown[] = [];
    const logger = pino(loggerOptions(testConfig({ LOG_LEVEL: 'info' })), {
      write: (line: string) => times.push(JSON.parse(line).time),
    });
    vi.useFakeTimers({ now: Date.parse('2026-12-02T23:59:59.998Z') });
    try {
      logger.info('one');
      logger.info('two');
      vi.advanceTimersByTime(1);
      logger.info('three');
      vi.advanceTimersByTime(1);
      logger.info('four');
    } finally {
      vi.useRealTimers();
    }
    expect(times).toEqual([
      '2026-12-02T23:59:59.998Z',
      '2026-12-02T23:59:59.998Z',
      '2026-12-02T23:59:59.999Z',
      '2026-12-03T00:00:00.000Z',
    ]);
  });
});

describe('errors', () => {
  it('are logged once at error level with their stack, and never sent to the client', async () => {
    const response = await t.app.inject({ url: '/test/db-error', headers: { 'x-request-id': 'err-1' } });
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toMatch(/s3cret|postgres|connect to/);

    const lines = linesOf(t.logs, 'err-1');
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      ['error', 'request failed'],
      ['info', 'request completed'],
    ]);
    const err = lines[0]!.err as { type: string; message: string; stack: string };
    expect(err.type).toBe('Error');
    expect(err.message).toBe('connect to postgres://app:[redacted]@db:5432/loans failed');
    expect(err.stack).toMatch(
      /^Error: connect to postgres:\/\/app:\[redacted\]@db:5432\/loans failed\n\s+at /,
    );
    expect(lines[1]).toMatchObject({ status: 500, route: '/test/db-error' });
    expect(JSON.stringify(t.logs)).not.toContain('s3cret');
  });
});

describe('redaction', () => {
  it('never logs Authorization, X-API-Key or cookies', async () => {
    const secrets = {
      authorization: 'Bearer tok-secret-1',
      'x-api-key': 'key-secret-2',
      cookie: 'session=cookie-secret-3',
    };
    await t.app.inject({ url: '/api/loans', headers: { ...secrets, 'x-request-id': 'hdr-1' } });
    t.app.log.info({ headers: secrets }, 'headers at the top');
    t.app.log.info({ request: { headers: secrets } }, 'headers one level down');
    t.app.log.info(
      { response: { headers: { 'set-cookie': ['session=cookie-secret-4'] } } },
      'response headers',
    );

    expect(linesOf(t.logs, 'hdr-1')).toHaveLength(1);
    const logged = (msg: string) => t.logs.find((line) => line.msg === msg);
    const redacted = { authorization: '[redacted]', 'x-api-key': '[redacted]', cookie: '[redacted]' };
    expect(logged('headers at the top')?.headers).toEqual(redacted);
    expect(logged('headers one level down')?.request).toEqual({ headers: redacted });
    expect(logged('response headers')?.response).toEqual({ headers: { 'set-cookie': '[redacted]' } });
    expect(JSON.stringify(t.logs)).not.toMatch(/tok-secret|key-secret|cookie-secret/);
  });

  it('finds credential headers and passwords at any depth, and leaves other lines as they were', () => {
    t.app.log.info(
      { job: { upstream: { headers: { Authorization: 'Bearer deep-1', accept: 'text/plain' } } } },
      'deep headers',
    );
    t.app.log.info({ target: { db: { password: 'deep-2', user: 'app' } } }, 'deep password');
    t.app.log.info({ note: 'a "headers": field in a string, password: none' }, 'no secrets');

    const [headers, password, plain] = t.logs.slice(-3) as Record<string, unknown>[];
    expect(headers!.job).toEqual({
      upstream: { headers: { Authorization: '[redacted]', accept: 'text/plain' } },
    });
    expect(password!.target).toEqual({ db: { password: '[redacted]', user: 'app' } });
    expect(plain!.note).toBe('a "headers": field in a string, password: none');
    // Byte for byte, also a line that is parsed because it has a `headers` field without credentials.
    for (const fields of [{ note: 'a "headers": x' }, { headers: { accept: 'text/plain', 'x-n': 1.5 } }]) {
      const line = `${JSON.stringify({ level: 'info', msg: 'no secrets', ...fields })}\n`;
      expect(redactLine(line)).toBe(line);
    }
    expect(JSON.stringify(t.logs)).not.toMatch(/deep-1|deep-2/);
  });

  it('hides passwords of connection strings in messages, errors, causes and fields', () => {
    t.app.log.error(new Error('cannot reach postgres://app:s3cret@db:5432/x'));
    t.app.log.warn('trying postgresql://u:p%40ss@10.0.0.5/loans then host=db password=hunter2 user=app');
    t.app.log.info(
      { url: 'postgres://app:pa"ss\\word@db/x', nested: { list: ['redis://:r3dis@cache:6379'] } },
      'fields',
    );
    t.app.log.error(
      { err: new Error('outer', { cause: new Error('inner postgres://a:c4use@db/x') }) },
      'with a cause',
    );

    const text = JSON.stringify(t.logs.slice(-4));
    expect(text).not.toMatch(/s3cret|p%40ss|hunter2|pa\\"ss|word@|r3dis|c4use/);
    const [thrown, message, fields, caused] = t.logs.slice(-4) as Record<string, never>[];
    expect(thrown!.msg).toBe('cannot reach postgres://app:[redacted]@db:5432/x');
    expect(message!.msg).toBe(
      'trying postgresql://u:[redacted]@10.0.0.5/loans then host=db password=[redacted] user=app',
    );
    expect(fields!.url).toBe('postgres://app:[redacted]@db/x');
    expect(fields!.nested).toEqual({ list: ['redis://:[redacted]@cache:6379'] });
    expect(JSON.stringify(caused!.err)).toContain('inner postgres://a:[redacted]@db/x');
  });

  it.each([
    ['postgres://app@db:5432/x', 'postgres://app@db:5432/x'],
    ['postgres://db:5432/x', 'postgres://db:5432/x'],
    ['see https://example.com/a@b', 'see https://example.com/a@b'],
    ['{"u":"postgres://a:b@h/d","v":"x@y"}', '{"u":"postgres://a:[redacted]@h/d","v":"x@y"}'],
    ['{"u":"postgres://db:5432/d","v":"x@y"}', '{"u":"postgres://db:5432/d","v":"x@y"}'],
    ['Server=db;User Id=app;Password=s3cret;', 'Server=db;User Id=app;Password=[redacted];'],
    ['no secrets here', 'no secrets here'],
  ])('redactConnectionStrings(%j)', (line, expected) => {
    expect(redactConnectionStrings(line)).toBe(expected);
  });
});
