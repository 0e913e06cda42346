// Load shedding: with the event loop held busy on purpose, /api answers 503 problem+json with Retry-After
// while the probes and /metrics keep answering. A real listening server, because the pressure is measured
// on the event loop that also serves the sockets.
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PROBLEM_BASE } from '../../src/platform/errors.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { sleep } from '../helpers/process.ts';

const SPIN_MS = 500;
const WAIT_MS = 15_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

async function listening(
  env: Record<string, string>,
): Promise<{ t: TestApp; get: (path: string) => Promise<Answer> }> {
  const t = await buildTestApp(env);
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  const get = async (path: string): Promise<Answer> => {
    const response = await fetch(base + path);
    return {
      status: response.status,
      headers: Object.fromEntries(response.headers),
      body: await response.text(),
    };
  };
  return { t, get };
}

let stopBlocking: (() => void) | undefined;
afterEach(() => stopBlocking?.());

/** Keeps the event loop busy in slices of SPIN_MS, with one turn of the loop (sockets included) between them. */
function blockEventLoop(): void {
  let blocking = true;
  const spin = () => {
    if (!blocking) return;
    const until = performance.now() + SPIN_MS;
    while (performance.now() < until) {}
    setImmediate(spin);
  };
  setImmediate(spin);
  stopBlocking = () => {
    blocking = false;
  };
}

async function until(get: () => Promise<Answer>, status: number): Promise<Answer> {
  const deadline = performance.now() + WAIT_MS;
  for (;;) {
    const answer = await get();
    if (answer.status === status || performance.now() > deadline) return answer;
  }
}

function shedCounts(metrics: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [, reason = '', count] of metrics.matchAll(
    /^http_requests_shed_total\{reason="(\w+)"\} (\d+)$/gm,
  )) {
    counts[reason] = Number(count);
  }
  return counts;
}

describe('under a blocked event loop', () => {
  let t: TestApp;
  let get: (path: string) => Promise<Answer>;
  beforeAll(async () => {
    ({ t, get } = await listening({ AUTH_REQUIRED: 'true', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '200' }));
  });
  afterAll(() => t.close());

  it('sheds /api with 503 problem+json and Retry-After before authentication, and keeps the probes up', async () => {
    expect((await get('/api/loans')).status).toBe(401);

    blockEventLoop();
    const shed = await until(() => get('/api/loans'), 503);
    expect(shed.status).toBe(503);
    expect(shed.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(shed.headers['retry-after']).toBe('5');
    expect(shed.headers['x-request-id']).toMatch(UUID);
    expect(shed.headers['x-content-type-options']).toBe('nosniff');
    expect(JSON.parse(shed.body)).toEqual({
      type: `${PROBLEM_BASE}service-unavailable`,
      title: 'Service unavailable',
      status: 503,
      detail: 'The service is overloaded; retry in 5 s',
      instance: '/api/loans',
      request_id: shed.headers['x-request-id'],
    });

    const liveness = await get('/liveness');
    expect([liveness.status, JSON.parse(liveness.body)]).toEqual([200, { status: 'alive' }]);
    expect((await get('/readiness')).status).toBe(200);
    expect((await get('/health')).status).toBe(200);
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    // Still shedding after the probes: they were answered under pressure.
    expect((await get('/api/stats')).status).toBe(503);
    stopBlocking?.();

    expect(shedCounts(metrics.body).event_loop_delay).toBeGreaterThanOrEqual(1);
    expect(shedCounts(metrics.body).event_loop_utilization).toBe(0);
    const warnings = t.logs.filter((line) => line.msg === 'overloaded: shedding requests with 503');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      level: 'warn',
      // A slice of the spin may cover a whole window of the plugin's timer.
      reason: expect.stringMatching(
        /^event loop (delay \d+ ms > 200 ms|blocked for the whole 500 ms window)$/,
      ),
    });
    expect(t.logs).toContainEqual(
      expect.objectContaining({ msg: 'request completed', path: '/api/stats', status: 503 }),
    );
  });

  it('stops shedding once the event loop is free again', async () => {
    blockEventLoop();
    expect((await until(() => get('/api/loans'), 503)).status).toBe(503);
    stopBlocking?.();
    expect((await until(() => get('/api/loans'), 401)).status).toBe(401);
  });
});

describe('event loop utilization', () => {
  let t: TestApp;
  let get: (path: string) => Promise<Answer>;
  beforeAll(async () => {
    ({ t, get } = await listening({
      OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
      OVERLOAD_MAX_EVENT_LOOP_UTILIZATION: '0.9',
    }));
  });
  afterAll(() => t.close());

  it('sheds past the configured utilization, counted under its own reason', async () => {
    blockEventLoop();
    expect((await until(() => get('/api/loans'), 503)).status).toBe(503);
    const metrics = await get('/metrics');
    stopBlocking?.();
    expect(shedCounts(metrics.body)).toEqual({
      event_loop_delay: 0,
      event_loop_utilization: expect.any(Number),
    });
    expect(shedCounts(metrics.body).event_loop_utilization).toBeGreaterThanOrEqual(1);
  });
});

describe('without pressure, or with the checks off', () => {
  it('serves every request and counts nothing shed', async () => {
    // A limit no ordinary request comes near, even on a busy test machine.
    const { t, get } = await listening({ OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '1000' });
    try {
      // Past the first windows after start, which are never judged.
      await sleep(2 * SPIN_MS + 200);
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) => get(i % 2 ? '/api/loans' : '/api/stats')),
      );
      expect(answers.map((answer) => answer.status)).toEqual(Array(40).fill(200));
      expect(shedCounts((await get('/metrics')).body)).toEqual({
        event_loop_delay: 0,
        event_loop_utilization: 0,
      });
    } finally {
      await t.close();
    }
  });

  it('does not shed the first requests after a start that held the event loop', async () => {
    const t = await buildTestApp({ OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '200' });
    try {
      const until = performance.now() + 2 * SPIN_MS;
      while (performance.now() < until) {}
      await sleep(50);
      expect((await t.app.inject({ url: '/api/loans' })).statusCode).toBe(200);
      const metrics = await t.app.inject({ url: '/metrics' });
      expect(shedCounts(metrics.body)).toEqual({
        event_loop_delay: 0,
        event_loop_utilization: 0,
      });
    } finally {
      await t.close();
    }
  });

  it('sheds nothing when both limits are 0, however busy the loop', async () => {
    const t = await buildTestApp({
      OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
      OVERLOAD_MAX_EVENT_LOOP_UTILIZATION: '0',
    });
    try {
      await t.app.ready();
      blockEventLoop();
      // Well past the first windows after start, which are never judged.
      const started = performance.now();
      const statuses: number[] = [];
      while (performance.now() - started < 5 * SPIN_MS) {
        statuses.push((await t.app.inject({ url: '/api/loans' })).statusCode);
      }
      const metrics = await t.app.inject({ url: '/metrics' });
      stopBlocking?.();
      expect(statuses).toEqual(Array(statuses.length).fill(200));
      expect(shedCounts(metrics.body)).toEqual({ event_loop_delay: 0, event_loop_utilization: 0 });
    } finally {
      await t.close();
    }
  });
});
