// One endpoint under load with autocannon: a warm-up, then the measured run.
import autocannon, { type Result } from 'autocannon';
import type { Endpoint } from './endpoints.ts';
import type { Server } from './servers.ts';

export interface Measurement {
  reqPerSec: number;
  p50: number;
  p99: number;
  requests: number;
}

export interface LoadSettings {
  warmup: number;
  duration: number;
  connections: number;
  /** Sent with every request (the API key). */
  headers: Record<string, string>;
}

async function load(
  server: Server,
  endpoint: Endpoint,
  seconds: number,
  settings: LoadSettings,
): Promise<Result> {
  const next = endpoint.next;
  const result = await autocannon({
    url: `${server.url}${endpoint.path}`,
    connections: settings.connections,
    duration: seconds,
    method: endpoint.method,
    headers: {
      ...settings.headers,
      ...(endpoint.body ? { 'content-type': 'application/json' } : {}),
    },
    ...(endpoint.body ? { body: endpoint.body } : {}),
    ...(next
      ? {
          requests: [
            {
              setupRequest: (request) => {
                const { path, headers } = next();
                return { ...request, path, headers: { ...request.headers, ...headers } };
              },
            },
          ],
        }
      : {}),
  });
  const shortfall = endpoint.shortfall?.();
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0 || shortfall) {
    throw new Error(
      `${server.name} ${endpoint.name}: ${result.non2xx} non-2xx responses, ${result.errors} errors, ` +
        `${result.timeouts} timeouts (status codes ${JSON.stringify(result.statusCodeStats)})` +
        (shortfall ? `; ${shortfall}` : ''),
    );
  }
  return result;
}

export async function measure(
  server: Server,
  endpoint: Endpoint,
  settings: LoadSettings,
): Promise<Measurement> {
  await endpoint.prepare?.(settings.warmup + settings.duration);
  await load(server, endpoint, settings.warmup, settings);
  const result = await load(server, endpoint, settings.duration, settings);
  return {
    reqPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

export function medianOf(runs: Measurement[]): Measurement & { runs: Measurement[] } {
  return {
    reqPerSec: median(runs.map((run) => run.reqPerSec)),
    p50: median(runs.map((run) => run.p50)),
    p99: median(runs.map((run) => run.p99)),
    requests: median(runs.map((run) => run.requests)),
    runs,
  };
}
