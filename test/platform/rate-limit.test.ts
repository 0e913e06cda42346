// Rate limits (API.md §6): per API key, else per client address; /api only; shared through Redis.
import { createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { generateKey, insertKey } from '../../src/platform/api-keys.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { freePort } from '../helpers/ports.ts';
import { sleep } from '../helpers/process.ts';
import { redisMissing, skipWithoutRedis, TEST_REDIS_URL, uniqueClientAddress } from '../helpers/redis.ts';

const PER_KEY = 5;
const PER_ADDRESS = 3;
const LIMITS = {
  RATE_LIMIT_ENABLED: 'true',
  RATE_LIMIT_PER_MINUTE: String(PER_KEY),
  RATE_LIMIT_ANONYMOUS_PER_MINUTE: String(PER_ADDRESS),
};
const OPEN_ROUTES = [
  '/health',
  '/liveness',
  '/readiness',
  '/metrics',
  '/openapi.json',
  '/docs',
  '/docs/json',
];

async function newKeySecret(t: TestApp, name: string): Promise<string> {
  const secret = generateKey('test');
  await insertKey(t.pool, secret, { name, role: 'viewer' });
  return secret;
}

const get = (app: FastifyInstance, from: string, key?: string) =>
  app.inject({
    url: '/api/loans',
    remoteAddress: from,
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });

const budget = (response: LightMyRequestResponse) => ({
  status: response.statusCode,
  limit: response.headers['ratelimit-limit'],
  remaining: response.headers['ratelimit-remaining'],
  policy: response.headers['ratelimit-policy'],
});

/** Seconds until the window ends: 60 at its start, a little less after a slow test. */
function expectSecondsLeft(header: unknown) {
  expect(header).toMatch(/^\d+$/);
  expect(Number(header)).toBeGreaterThanOrEqual(50);
  expect(Number(header)).toBeLessThanOrEqual(60);
}

const WHOSE = {
  key: 'this API key',
  address: 'requests from this address without a valid API key',
};

function expectRateLimited(response: LightMyRequestResponse, limit: number, whose: keyof typeof WHOSE) {
  expect(response.statusCode).toBe(429);
  expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  expect(response.json()).toEqual({
    type: 'https://branchloans.com/problems/rate-limited',
    title: 'Too many requests',
    status: 429,
    detail: `The limit for ${WHOSE[whose]} is ${limit} requests a minute; retry in ${response.headers['retry-after']} s`,
    instance: '/api/loans',
    request_id: response.headers['x-request-id'],
  });
  expect(response.headers['ratelimit-limit']).toBe(String(limit));
  expect(response.headers['ratelimit-remaining']).toBe('0');
  expect(response.headers['ratelimit-policy']).toBe(`${limit};w=60`);
  expectSecondsLeft(response.headers['retry-after']);
  expect(response.headers['ratelimit-reset']).toBe(response.headers['retry-after']);
}

async function metric(app: FastifyInstance, name: string): Promise<string | undefined> {
  const body = (await app.inject({ url: '/metrics' })).body;
  return body.split('\n').find((line) => line.startsWith(`${name} `));
}

describe('rate limits, counted in the process', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ AUTH_REQUIRED: 'true', ...LIMITS });
  });
  afterAll(() => t.close());

  it('lets a key make exactly its limit of requests a minute, then answers 429 with Retry-After', async () => {
    const key = await newKeySecret(t, 'counted');
    const from = uniqueClientAddress();
    const allowed = [];
    for (let i = 0; i < PER_KEY; i++) allowed.push(await get(t.app, from, key));
    expect(allowed.map(budget)).toEqual(
      [4, 3, 2, 1, 0].map((remaining) => ({
        status: 200,
        limit: '5',
        remaining: String(remaining),
        policy: '5;w=60',
      })),
    );
    for (const response of allowed) expectSecondsLeft(response.headers['ratelimit-reset']);

    expectRateLimited(await get(t.app, from, key), PER_KEY, 'key');
    expectRateLimited(await get(t.app, from, key), PER_KEY, 'key');
  });

  it('counts requests without a key and with bad keys against the address, so keys cannot be brute-forced', async () => {
    const from = uniqueClientAddress();
    const attempts = [];
    for (let i = 0; i < PER_ADDRESS; i++) attempts.push(await get(t.app, from, generateKey('test')));
    expect(attempts.map(budget)).toEqual(
      [2, 1, 0].map((remaining) => ({
        status: 401,
        limit: '3',
        remaining: String(remaining),
        policy: '3;w=60',
      })),
    );
    expectRateLimited(await get(t.app, from, generateKey('test')), PER_ADDRESS, 'address');
    expectRateLimited(await get(t.app, from), PER_ADDRESS, 'address');

    // A good key from the same address has a budget of its own.
    expect(budget(await get(t.app, from, await newKeySecret(t, 'same address')))).toEqual({
      status: 200,
      limit: '5',
      remaining: '4',
      policy: '5;w=60',
    });
    // Another address is not affected.
    expect(budget(await get(t.app, uniqueClientAddress()))).toMatchObject({ status: 401, remaining: '2' });
  });

  it('gives every key its own budget', async () => {
    const from = uniqueClientAddress();
    const first = await newKeySecret(t, 'first');
    for (let i = 0; i < PER_KEY; i++) expect((await get(t.app, from, first)).statusCode).toBe(200);
    expectRateLimited(await get(t.app, from, first), PER_KEY, 'key');
    expect(budget(await get(t.app, from, await newKeySecret(t, 'second')))).toMatchObject({
      status: 200,
      remaining: '4',
    });
  });

  it('never limits the probes, the metrics or the documentation', async () => {
    const from = uniqueClientAddress();
    for (let i = 0; i <= PER_ADDRESS; i++) await get(t.app, from);
    expectRateLimited(await get(t.app, from), PER_ADDRESS, 'address');
    for (const url of OPEN_ROUTES) {
      for (let i = 0; i <= PER_ADDRESS; i++) {
        const response = await t.app.inject({ url, remoteAddress: from });
        expect(response.statusCode, url).toBeLessThan(400);
        expect(response.headers['ratelimit-limit'], url).toBeUndefined();
      }
    }
  });
});

describe('rate limits switched off', () => {
  it('are off by default outside staging and production: no budget headers, no 429', async () => {
    const t = await buildTestApp({ RATE_LIMIT_ANONYMOUS_PER_MINUTE: '1' });
    try {
      for (let i = 0; i < 3; i++) {
        const response = await get(t.app, '192.0.2.1');
        expect(response.statusCode).toBe(200);
        expect(response.headers['ratelimit-limit']).toBeUndefined();
      }
    } finally {
      await t.close();
    }
  });
});

describe.skipIf(await skipWithoutRedis())('rate limits shared through Redis', () => {
  let t: TestApp;
  let replica: FastifyInstance;
  beforeAll(async () => {
    const missing = await redisMissing();
    if (missing) throw new Error(missing);
    t = await buildTestApp({ ...LIMITS, REDIS_URL: TEST_REDIS_URL });
    // A second instance of the service on the same database and Redis, as a replica runs.
    replica = await buildApp({ config: t.config, pool: t.pool, logger: pino({ level: 'silent' }) });
  });
  afterAll(async () => {
    await replica?.close();
    await t?.close();
  });

  it('gives an address exactly its limit in total across two instances, not the limit each', async () => {
    const from = uniqueClientAddress();
    const answers = [];
    for (const app of [t.app, replica, t.app, replica, t.app]) answers.push(await get(app, from));
    expect(answers.map((response) => response.statusCode)).toEqual([200, 200, 200, 429, 429]);
    expect(answers.map((response) => response.headers['ratelimit-remaining'])).toEqual([
      '2',
      '1',
      '0',
      '0',
      '0',
    ]);
    expectRateLimited(answers[3]!, PER_ADDRESS, 'address');
  });

  it('gives a key exactly its limit in total across two instances', async () => {
    const key = await newKeySecret(t, 'shared');
    const from = uniqueClientAddress();
    const statuses = [];
    for (let i = 0; i <= PER_KEY; i++)
      statuses.push((await get(i % 2 ? replica : t.app, from, key)).statusCode);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it('counts the very first request of an instance that has just started', async () => {
    const fresh = await buildApp({ config: t.config, pool: t.pool, logger: pino({ level: 'silent' }) });
    try {
      expect(budget(await get(fresh, uniqueClientAddress()))).toEqual({
        status: 200,
        limit: '3',
        remaining: '2',
        policy: '3;w=60',
      });
    } finally {
      await fresh.close();
    }
  });

  it('counts no store errors while Redis answers', async () => {
    await get(t.app, uniqueClientAddress());
    expect(await metric(t.app, 'rate_limit_store_errors_total')).toBe('rate_limit_store_errors_total 0');
  });
});

describe('rate limits with Redis unreachable', () => {
  it('serves every request without waiting (fail open), counts each in a metric and logs once', async () => {
    const t = await buildTestApp({ ...LIMITS, REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    try {
      const from = uniqueClientAddress();
      const requests = PER_ADDRESS + 2;
      for (let i = 0; i < requests; i++) {
        const started = performance.now();
        const response = await get(t.app, from);
        expect(performance.now() - started).toBeLessThan(1000);
        expect(response.statusCode).toBe(200);
        // The budget is unknown, so none is announced.
        expect(response.headers['ratelimit-remaining']).toBeUndefined();
      }
      expect(await metric(t.app, 'rate_limit_store_errors_total')).toBe(
        `rate_limit_store_errors_total ${requests}`,
      );
      const warnings = t.logs.filter((line) => String(line.msg).startsWith('rate limit store unavailable'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 'warn', reason: expect.stringContaining('ECONNREFUSED') });
    } finally {
      await t.close();
    }
  });

  it('serves requests while Redis accepts connections but never answers, and hangs up when the app closes', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const t = await buildTestApp({ ...LIMITS, REDIS_URL: `redis://127.0.0.1:${port}` });
    try {
      await t.app.ready();
      await expect.poll(() => sockets.size).toBeGreaterThan(0);
      const started = performance.now();
      expect((await get(t.app, uniqueClientAddress())).statusCode).toBe(200);
      expect(performance.now() - started).toBeLessThan(1000);

      await t.app.close();
      await expect.poll(() => sockets.size).toBe(0);
      // No reconnection after the close.
      await sleep(500);
      expect(sockets.size).toBe(0);
    } finally {
      await t.close();
      silent.close();
    }
  });
});
