// One endpoint under load with wrk: a warm-up, then the measured run.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Endpoint } from './endpoints.ts';
import type { Server } from './servers.ts';
import { type WrkResult, wrk } from './wrk.ts';

export interface Measurement {
  reqPerSec: number;
  /** Milliseconds. */
  p50: number;
  p99: number;
  requests: number;
  /** Socket errors and timeouts (a non-2xx answer fails the run instead). */
  errors: number;
}

export interface LoadSettings {
  warmup: number;
  duration: number;
  connections: number;
  /** Sent with every request (the API key). */
  headers: Record<string, string>;
  /** A directory for the files wrk reads (paths, bodies). */
  workDir: string;
}

// Long enough that a slow answer shows in the latencies instead of as an error.
export const TIMEOUT_SECONDS = 10;

let runs = 0;

async function load(
  server: Server,
  endpoint: Endpoint,
  seconds: number,
  settings: LoadSettings,
): Promise<WrkResult> {
  const pathsFile = join(settings.workDir, 'paths.txt');
  await writeFile(pathsFile, `${endpoint.paths().join('\n')}\n`);
  let bodyFile: string | undefined;
  if (endpoint.body !== undefined) {
    bodyFile = join(settings.workDir, 'body.json');
    await writeFile(bodyFile, endpoint.body);
  }
  runs += 1;
  const result = await wrk({
    url: server.url,
    connections: settings.connections,
    seconds,
    timeoutSeconds: TIMEOUT_SECONDS,
    headers: settings.headers,
    pathsFile,
    method: endpoint.method,
    bodyFile,
    // Both servers write to the same copy of the database, so keys must differ between runs too.
    keyPrefix: endpoint.uniqueKeys ? `bench-${runs}-` : undefined,
  });
  // The answered requests, those still in flight when wrk stopped, and one request wrk builds first.
  const shortfall = endpoint.used?.(result.requests + settings.connections + 1);
  if (result.non2xx > 0 || shortfall) {
    throw new Error(
      `${server.name} ${endpoint.name}: ${result.non2xx} of ${result.requests} answers were not 2xx` +
        (shortfall ? `; ${shortfall}` : ''),
    );
  }
  return result;
}

export const ms = (microseconds: number) => Math.round(microseconds / 100) / 10;

export async function measure(
  server: Server,
  endpoint: Endpoint,
  settings: LoadSettings,
): Promise<Measurement> {
  await endpoint.prepare?.(settings.warmup + settings.duration);
  await load(server, endpoint, settings.warmup, settings);
  const result = await load(server, endpoint, settings.duration, settings);
  return {
    reqPerSec: result.requests / (result.durationUs / 1e6),
    p50: ms(result.p50Us),
    p99: ms(result.p99Us),
    requests: result.requests,
    errors: result.errors,
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
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
    runs,
  };
}
