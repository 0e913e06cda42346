// What the bench prints: progress on stderr, the results as Markdown tables on stdout.
import type { Measurement } from './measure.ts';

export interface EndpointResult {
  size: number;
  endpoint: string;
  service: Measurement & { runs: Measurement[] };
  baseline: Measurement & { runs: Measurement[] };
}

export const log = (message: string) => process.stderr.write(`${message}\n`);

/** 10000 → "10k", 1000000 → "1m". */
export const label = (n: number) =>
  n % 1_000_000 === 0 ? `${n / 1_000_000}m` : n % 1_000 === 0 ? `${n / 1_000}k` : String(n);

const fixed = (value: number, digits = 2) => value.toFixed(digits);

export function markdownReport(results: EndpointResult[], sizes: number[]): string {
  const lines = [
    '| loans | endpoint | service req/s | p50 ms | p99 ms | baseline req/s | p50 ms | p99 ms | req/s service÷baseline | p99 service÷baseline |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const row of results) {
    lines.push(
      `| ${label(row.size)} | ${row.endpoint} | ${fixed(row.service.reqPerSec, 0)} | ${row.service.p50} | ${row.service.p99} | ` +
        `${fixed(row.baseline.reqPerSec, 0)} | ${row.baseline.p50} | ${row.baseline.p99} | ` +
        `${fixed(row.service.reqPerSec / row.baseline.reqPerSec)} | ${fixed(row.service.p99 / row.baseline.p99)} |`,
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
  return lines.join('\n');
}
