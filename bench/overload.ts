// The overload test: far more connections on a list than the service can serve, while a second wrk asks
// /liveness as an orchestrator would. The probe must stay fast, no request may wait past the limit, and
// what cannot be served must be refused at once with 503 (platform/overload.ts).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ms, TIMEOUT_SECONDS } from './measure.ts';
import { peakRssMiB, type Server } from './servers.ts';
import { wrk } from './wrk.ts';

export const LIVENESS_P99_TARGET_MS = 100;
export const MAX_WAIT_TARGET_MS = 2000;
// One probe every 20 ms: thousands of samples in a run, and next to no load of its own.
export const PROBE_DELAY_MS = 20;
const LIST_PATH = '/api/loans';

export interface OverloadResult {
  connections: number;
  seconds: number;
  list: {
    ok: number;
    okPerSec: number;
    /** Answered 503 by the overload check (the service's http_requests_shed_total). */
    shed: number;
    /** Other 503s: a request that waited past the pool's connection timeout for a database connection. */
    otherUnavailable: number;
    otherNon2xx: number;
    errors: number;
    p50: number;
    p99: number;
    max: number;
  };
  liveness: { requests: number; errors: number; non2xx: number; p50: number; p99: number; max: number };
  /**
   * The service's own view of the list requests of the run (http_request_duration_seconds, from its first
   * hook to the answer): the smallest histogram bound that holds them all, in seconds.
   */
  serviceSideWithinS: number;
  /**
   * The longest the service's event loop was blocked during the run (nodejs_eventloop_lag_max_seconds,
   * which prom-client resets at each scrape), in ms: a probe or a request can wait no less.
   */
  eventLoopMaxDelayMs: number;
  servicePeakRssMiB: number;
}

/**
 * The sum of a metric's series whose labels contain all of `labels` (Prometheus text format); a metric
 * without labels is its one series.
 */
function seriesSum(text: string, name: string, labels: string[] = []): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    if (!labels.every((label) => line.includes(label))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

const LIST_LABEL = `route="${LIST_PATH}"`;

/** The list route's duration histogram, all statuses together: cumulative count by upper bound (`le`). */
function listBuckets(text: string): Map<string, number> {
  const buckets = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('http_request_duration_seconds_bucket{') || !line.includes(LIST_LABEL)) continue;
    const bound = /le="([^"]+)"/.exec(line)![1]!;
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return buckets;
}

async function counters(server: Server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return {
    shed: seriesSum(text, 'http_requests_shed_total'),
    unavailable: seriesSum(text, 'http_requests_total', [LIST_LABEL, 'status_code="503"']),
    buckets: listBuckets(text),
    eventLoopMaxDelayS: seriesSum(text, 'nodejs_eventloop_lag_max_seconds'),
  };
}

/** The smallest bound that holds every list request answered between the two scrapes, in seconds. */
function allWithin(before: Map<string, number>, after: Map<string, number>): number {
  const inRun = (bound: string) => (after.get(bound) ?? 0) - (before.get(bound) ?? 0);
  const bound = [...after.keys()].find((le) => inRun(le) === inRun('+Inf'))!;
  return bound === '+Inf' ? Number.POSITIVE_INFINITY : Number(bound);
}

async function pathsFile(workDir: string, name: string, path: string): Promise<string> {
  const file = join(workDir, name);
  await writeFile(file, `${path}\n`);
  return file;
}

export async function overload(
  service: Server,
  settings: { connections: number; seconds: number; headers: Record<string, string>; workDir: string },
): Promise<OverloadResult> {
  const { connections, seconds, headers, workDir } = settings;
  const before = await counters(service);
  const [list, liveness] = await Promise.all([
    wrk({
      url: service.url,
      connections,
      seconds,
      timeoutSeconds: TIMEOUT_SECONDS,
      headers,
      pathsFile: await pathsFile(workDir, 'list.txt', LIST_PATH),
      method: 'GET',
    }),
    wrk({
      url: service.url,
      connections: 1,
      seconds,
      timeoutSeconds: TIMEOUT_SECONDS,
      headers: {},
      pathsFile: await pathsFile(workDir, 'liveness.txt', '/liveness'),
      method: 'GET',
      delayMs: PROBE_DELAY_MS,
    }),
  ]);
  const after = await counters(service);
  const shed = after.shed - before.shed;
  const unavailable = after.unavailable - before.unavailable;
  const ok = list.requests - list.non2xx;
  return {
    connections,
    seconds,
    list: {
      ok,
      okPerSec: ok / (list.durationUs / 1e6),
      shed,
      otherUnavailable: unavailable - shed,
      // Answers counted by the service after wrk stopped listening can make this slightly negative.
      otherNon2xx: Math.max(0, list.non2xx - unavailable),
      errors: list.errors,
      p50: ms(list.p50Us),
      p99: ms(list.p99Us),
      max: ms(list.maxUs),
    },
    liveness: {
      requests: liveness.requests,
      errors: liveness.errors,
      non2xx: liveness.non2xx,
      p50: ms(liveness.p50Us),
      p99: ms(liveness.p99Us),
      max: ms(liveness.maxUs),
    },
    serviceSideWithinS: allWithin(before.buckets, after.buckets),
    eventLoopMaxDelayMs: ms(after.eventLoopMaxDelayS * 1e6),
    servicePeakRssMiB: await peakRssMiB(service),
  };
}
