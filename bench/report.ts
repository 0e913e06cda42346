// What the bench prints: progress on stderr, the results as Markdown tables on stdout.
import type { Measurement } from './measure.ts';
import {
  LIVENESS_P99_TARGET_MS,
  MAX_WAIT_TARGET_MS,
  type OverloadResult,
  PROBE_DELAY_MS,
} from './overload.ts';

export interface EndpointResult {
  size: number;
  endpoint: string;
  service: Measurement & { runs: Measurement[] };
  baseline: Measurement & { runs: Measurement[] };
  /** The service with WEB_CONCURRENCY workers, when measured. */
  workers: (Measurement & { runs: Measurement[] }) | undefined;
  /** The most each server had resident by the end of this endpoint's runs (workers: all processes). */
  peakRssMiB: { service: number; workers: number | undefined; baseline: number };
}

export const log = (message: string) => process.stderr.write(`${message}\n`);

/** 10000 → "10k", 1000000 → "1m". */
export const label = (n: number) =>
  n % 1_000_000 === 0 ? `${n / 1_000_000}m` : n % 1_000 === 0 ? `${n / 1_000}k` : String(n);

const fixed = (value: number, digits = 2) => value.toFixed(digits);

const mark = (met: boolean) => (met ? 'met' : '**missed**');

export function markdownReport(
  results: EndpointResult[],
  sizes: number[],
  overloads: { size: number; result: OverloadResult }[],
  webConcurrency: number,
): string {
  const lines = [
    '| loans | endpoint | service req/s | p50 ms | p99 ms | errors | baseline req/s | p50 ms | p99 ms | errors | req/s service÷baseline | p99 service÷baseline | service peak RSS MiB |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const row of results) {
    const { service, baseline } = row;
    lines.push(
      `| ${label(row.size)} | ${row.endpoint} | ${fixed(service.reqPerSec, 0)} | ${service.p50} | ${service.p99} | ${service.errors} | ` +
        `${fixed(baseline.reqPerSec, 0)} | ${baseline.p50} | ${baseline.p99} | ${baseline.errors} | ` +
        `${fixed(service.reqPerSec / baseline.reqPerSec)} | ${fixed(service.p99 / baseline.p99)} | ${row.peakRssMiB.service} |`,
    );
  }
  const smallest = Math.min(...sizes);
  for (const larger of sizes.filter((size) => size !== smallest)) {
    lines.push(
      '',
      `Latency ratio ${label(larger)} ÷ ${label(smallest)} (1.00 = no growth with the table):`,
      '',
      '| endpoint | service p50 | service p99 | service req/s | baseline p50 | baseline p99 | baseline req/s |',
      '|---|--:|--:|--:|--:|--:|--:|',
    );
    for (const big of results.filter((row) => row.size === larger)) {
      const small = results.find((row) => row.size === smallest && row.endpoint === big.endpoint);
      if (!small) continue;
      lines.push(
        `| ${big.endpoint} | ${fixed(big.service.p50 / small.service.p50)} | ${fixed(big.service.p99 / small.service.p99)} | ` +
          `${fixed(big.service.reqPerSec / small.service.reqPerSec)} | ${fixed(big.baseline.p50 / small.baseline.p50)} | ` +
          `${fixed(big.baseline.p99 / small.baseline.p99)} | ${fixed(big.baseline.reqPerSec / small.baseline.reqPerSec)} |`,
      );
    }
  }
  if (results.some((row) => row.workers)) lines.push('', ...workersReport(results, webConcurrency));
  if (overloads.length > 0) lines.push('', ...overloadReport(overloads));
  return lines.join('\n');
}

function workersReport(results: EndpointResult[], webConcurrency: number): string[] {
  const lines = [
    `WEB_CONCURRENCY=${webConcurrency} (that many workers, each with its own pool) against one process, same run:`,
    '',
    '| loans | endpoint | one process req/s | p99 ms | workers req/s | p99 ms | errors | req/s workers÷one | workers÷baseline | workers peak RSS MiB (all processes) |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const row of results) {
    const { service, workers, baseline } = row;
    if (!workers) continue;
    lines.push(
      `| ${label(row.size)} | ${row.endpoint} | ${fixed(service.reqPerSec, 0)} | ${service.p99} | ` +
        `${fixed(workers.reqPerSec, 0)} | ${workers.p99} | ${workers.errors} | ${fixed(workers.reqPerSec / service.reqPerSec)} | ` +
        `${fixed(workers.reqPerSec / baseline.reqPerSec)} | ${row.peakRssMiB.workers} |`,
    );
  }
  return lines;
}

function overloadReport(overloads: { size: number; result: OverloadResult }[]): string[] {
  const lines = [
    'Overload: the service alone, wrk on `GET /api/loans` (first page) with many connections, and a second wrk',
    `asking \`/liveness\` once every ${PROBE_DELAY_MS} ms on one connection (latencies in ms):`,
    '',
    '| loans | connections | s | list 2xx/s | shed (503, overload check) | other 503 (pool wait) | other non-2xx | socket errors + timeouts | list p50 | p99 | max | liveness requests | p99 | max | ' +
      `liveness p99 < ${LIVENESS_P99_TARGET_MS} ms | no wait > ${MAX_WAIT_TARGET_MS / 1000} s | service-side: all list requests within s | event loop max delay ms | service peak RSS MiB |`,
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|--:|--:|--:|',
  ];
  for (const { size, result } of overloads) {
    const { list, liveness } = result;
    // A probe still unanswered when wrk stops is in no count: no answer at all is a miss too.
    const probeOk =
      liveness.requests > 0 &&
      liveness.errors === 0 &&
      liveness.non2xx === 0 &&
      liveness.p99 < LIVENESS_P99_TARGET_MS;
    const waitOk = list.max <= MAX_WAIT_TARGET_MS && list.errors === 0;
    lines.push(
      `| ${label(size)} | ${result.connections} | ${result.seconds} | ${fixed(list.okPerSec, 0)} | ${list.shed} | ` +
        `${list.otherUnavailable} | ${list.otherNon2xx} | ${list.errors} | ${list.p50} | ${list.p99} | ${list.max} | ` +
        `${liveness.requests} | ${liveness.p99} | ${liveness.max} | ${mark(probeOk)} | ${mark(waitOk)} | ${result.serviceSideWithinS} | ${result.eventLoopMaxDelayMs} | ${result.servicePeakRssMiB} |`,
    );
  }
  return lines;
}
