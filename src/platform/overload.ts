// Load shedding: past a configured event-loop delay or utilization, @fastify/under-pressure answers 503
// before authentication and any database work, so that the requests already admitted finish in time.
// The probes and /metrics are never shed: an orchestrator must not restart a pod that is only busy, and
// operators must still see why it sheds.
import { performance } from 'node:perf_hooks';
import underPressure, { type FastifyUnderPressureOptions } from '@fastify/under-pressure';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config.ts';
import { AppError } from './errors.ts';
import { requestPath } from './http.ts';
import { problemResponse } from './http-errors.ts';

const EXEMPT_ROUTES = new Set(['/liveness', '/health', '/readiness', '/metrics']);
// The plugin's default window (1 s) would let a burst queue for a whole second before shedding starts.
const SAMPLE_INTERVAL_MS = 500;
// As for the service's other 503s: long enough for a burst to pass, short enough not to lose the client.
const RETRY_AFTER_S = 5;
const WARNING_INTERVAL_MS = 10_000;

/** The plugin's names for the checks that can trip, as metric labels. */
const REASONS: Readonly<Record<string, string>> = {
  [underPressure.TYPE_EVENT_LOOP_DELAY]: 'event_loop_delay',
  [underPressure.TYPE_EVENT_LOOP_UTILIZATION]: 'event_loop_utilization',
};

type PressureHandler = NonNullable<FastifyUnderPressureOptions['pressureHandler']>;

function overloaded(): AppError {
  return new AppError('service-unavailable', {
    detail: `The service is overloaded; retry in ${RETRY_AFTER_S} s`,
    headers: { 'retry-after': String(RETRY_AFTER_S) },
  });
}

function whyShedding(type: string, value: number | undefined, overload: Config['overload']): string {
  if (type === underPressure.TYPE_EVENT_LOOP_UTILIZATION) {
    return `event loop utilization ${(value ?? 0).toFixed(2)} > ${overload.maxEventLoopUtilization}`;
  }
  // The plugin reports Infinity when its timer could not fire once in the window.
  return Number.isFinite(value)
    ? `event loop delay ${Math.round(value ?? 0)} ms > ${overload.maxEventLoopDelayMs} ms`
    : `event loop blocked for the whole ${SAMPLE_INTERVAL_MS} ms window`;
}

/**
 * Registers the shedding as an onRequest hook: call it after the hooks that every response needs
 * (request id, security headers, metrics) and before authentication.
 */
export async function registerOverload(
  app: FastifyInstance,
  deps: { config: Config; registry: Registry },
): Promise<void> {
  const { overload } = deps.config;
  const shed = new Counter({
    name: 'http_requests_shed_total',
    help: 'Requests answered 503 without being served because the process was overloaded, by the check that tripped',
    labelNames: ['reason'],
    registers: [deps.registry],
  });
  for (const reason of Object.values(REASONS)) shed.inc({ reason }, 0);
  if (overload.maxEventLoopDelayMs === 0 && overload.maxEventLoopUtilization === 0) return;

  // The windows that end before the first full one after start measure the start (schemas compiled,
  // routes built), not the load.
  let judgingFrom = Number.POSITIVE_INFINITY;
  app.addHook('onReady', async () => {
    judgingFrom = performance.now() + 2 * SAMPLE_INTERVAL_MS;
  });
  let lastWarnedAt = Number.NEGATIVE_INFINITY;
  // A nullish return lets the request through; any other value is sent as the answer and ends the hooks
  // (sending from here and returning nothing would let authentication run while the answer is sent).
  const shedOrPass = (request: FastifyRequest, reply: FastifyReply, type: string, value?: number) => {
    if (performance.now() < judgingFrom) return;
    if (request.routeOptions.url !== undefined && EXEMPT_ROUTES.has(request.routeOptions.url)) return;
    shed.inc({ reason: REASONS[type] ?? type });
    const now = Date.now();
    if (now - lastWarnedAt >= WARNING_INTERVAL_MS) {
      lastWarnedAt = now;
      app.log.warn({ reason: whyShedding(type, value, overload) }, 'overloaded: shedding requests with 503');
    }
    const problem = problemResponse(overloaded(), requestPath(request), request.id);
    reply.status(problem.status).headers(problem.headers);
    return problem.body;
  };

  await app.register(underPressure, {
    maxEventLoopDelay: overload.maxEventLoopDelayMs,
    maxEventLoopUtilization: overload.maxEventLoopUtilization,
    // The default ('cumulative') averages since the process started, so it would neither notice a new
    // overload nor forget an old one.
    eventLoopUtilizationMode: 'interval',
    sampleInterval: SAMPLE_INTERVAL_MS,
    // Its types say void; its runtime (and README) send any other return value.
    pressureHandler: shedOrPass as PressureHandler,
  });
}
