// The served OpenAPI document passes two outside linters without an error: Redocly CLI with its
// `recommended` ruleset (redocly.yaml) and Spectral with the OWASP API Security ruleset (.spectral.yaml).
// Both run offline from node_modules, once each, on the document exactly as GET /openapi.json serves it.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.ts';
import { REPO_ROOT } from '../helpers/process.ts';

const LINT_TIMEOUT_MS = 120_000;

interface Finding {
  rule: string;
  severity: 'error' | 'warning' | 'other';
  where: string;
  message: string;
}

interface RedoclyReport {
  totals: { errors: number; warnings: number };
  problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
}
interface SpectralResult {
  code: string;
  severity: number;
  path: (string | number)[];
  message: string;
}

/** Runs a linter from node_modules/.bin; its exit status says only whether it found errors, so it is kept. */
function lint(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      join(REPO_ROOT, 'node_modules/.bin', bin),
      args,
      {
        cwd: REPO_ROOT,
        timeout: LINT_TIMEOUT_MS,
        maxBuffer: 64 * 1024 * 1024,
        // No usage data and no update check: the linters must not need the network.
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function parse<T>(linter: string, run: { code: number; stdout: string; stderr: string }): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`${linter} did not report (exit ${run.code}):\n${run.stderr}\n${run.stdout}`);
  }
}

/** A JSON pointer, as Redocly reports locations. */
const pointer = (path: (string | number)[]) =>
  `#/${path.map((part) => String(part).replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`;

const show = (findings: Finding[]) =>
  findings.map((f) => `${f.severity} ${f.rule} at ${f.where}: ${f.message}`).join('\n');

interface Operation {
  operationId?: string;
  security?: Record<string, string[]>[];
  responses: Record<string, { headers?: Record<string, unknown> }>;
}

// Stable names for client generators: renaming one breaks every generated client.
const OPERATION_IDS = {
  'GET /api/loans': 'listLoans',
  'POST /api/loans': 'createLoan',
  'GET /api/loans/{id}': 'getLoan',
  'POST /api/loans/{id}/approve': 'approveLoan',
  'POST /api/loans/{id}/reject': 'rejectLoan',
  'POST /api/loans/{id}/disburse': 'disburseLoan',
  'POST /api/loans/{id}/default': 'defaultLoan',
  'POST /api/loans/{id}/repayments': 'recordRepayment',
  'GET /api/loans/{id}/repayments': 'listRepayments',
  'GET /api/loans/{id}/schedule': 'getSchedule',
  'GET /api/loans/{id}/events': 'listLoanEvents',
  'GET /api/loan-quote': 'getLoanQuote',
  'GET /api/stats': 'getStats',
  'GET /health': 'getHealth',
  'GET /liveness': 'getLiveness',
  'GET /readiness': 'getReadiness',
};
const API_KEY = [{ bearerApiKey: [] }, { headerApiKey: [] }];

let directory: string;
let document: string;
let redocly: Finding[];
let spectral: Finding[];

beforeAll(async () => {
  const t = await buildTestApp({ LOG_LEVEL: 'warn' });
  try {
    const response = await t.app.inject({ url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    document = response.body;
  } finally {
    await t.close();
  }
  directory = await mkdtemp(join(tmpdir(), 'openapi-lint-'));
  const file = join(directory, 'openapi.json');
  await writeFile(file, document);

  const [redoclyRun, spectralRun] = await Promise.all([
    lint('redocly', ['lint', '--config', 'redocly.yaml', '--format', 'json', file]),
    lint('spectral', ['lint', file, '--ruleset', '.spectral.yaml', '--format', 'json', '--quiet']),
  ]);
  redocly = parse<RedoclyReport>('redocly', redoclyRun).problems.map((p) => ({
    rule: p.ruleId,
    severity: p.severity === 'error' ? 'error' : p.severity === 'warn' ? 'warning' : 'other',
    where: p.location[0]?.pointer ?? '',
    message: p.message,
  }));
  spectral = parse<SpectralResult[]>('spectral', spectralRun).map((r) => ({
    rule: r.code,
    severity: r.severity === 0 ? 'error' : r.severity === 1 ? 'warning' : 'other',
    where: pointer(r.path),
    message: r.message,
  }));
}, LINT_TIMEOUT_MS);

afterAll(async () => {
  if (directory) await rm(directory, { recursive: true, force: true });
});

describe('the served OpenAPI document', () => {
  it('has no error under Redocly’s recommended ruleset', () => {
    const errors = redocly.filter((f) => f.severity === 'error');
    expect(errors, `Redocly errors:\n${show(errors)}`).toEqual([]);
    // Proof that the ruleset ran: the liveness probe has no 4xx answer, which `recommended` warns about.
    expect(redocly).toContainEqual(
      expect.objectContaining({ rule: 'operation-4xx-response', where: '#/paths/~1liveness/get/responses' }),
    );
  });

  it('has no error under Spectral’s OWASP API Security ruleset', () => {
    const errors = spectral.filter((f) => f.severity === 'error');
    expect(errors, `Spectral errors:\n${show(errors)}`).toEqual([]);
    // Proof that the ruleset ran: the probes are open by design (API.md §6), which OWASP warns about.
    expect(spectral).toContainEqual(
      expect.objectContaining({
        rule: 'owasp:api2:2023-read-restricted',
        where: '#/paths/~1health/get/security',
      }),
    );
  });
});

describe('what the document says about access', () => {
  const operations = () =>
    Object.entries(JSON.parse(document).paths as Record<string, Record<string, Operation>>).flatMap(
      ([path, item]) =>
        Object.entries(item).map(([method, operation]): [string, Operation] => [
          `${method.toUpperCase()} ${path}`,
          operation,
        ]),
    );

  it('names every operation with a stable operationId', () => {
    expect(Object.fromEntries(operations().map(([key, op]) => [key, op.operationId]))).toEqual(OPERATION_IDS);
  });

  it('asks an API key of every /api operation, with its 401, 403 where a key can lack the role, and 429', () => {
    for (const [key, op] of operations()) {
      if (!key.includes(' /api/')) {
        expect(op.security, key).toEqual([]);
        continue;
      }
      expect(op.security, key).toEqual(API_KEY);
      expect(Object.keys(op.responses['401']!.headers!), key).toContain('WWW-Authenticate');
      expect(Object.keys(op.responses['429']!.headers!), key).toContain('Retry-After');
      // A GET needs the viewer role, which every key has.
      expect(op.responses['403'] !== undefined, key).toBe(key.startsWith('POST '));
      for (const [status, response] of Object.entries(op.responses).filter(([s]) => /^[24]/.test(s))) {
        expect(Object.keys(response.headers ?? {}), `${key} ${status}`).toEqual(
          expect.arrayContaining([
            'RateLimit-Limit',
            'RateLimit-Remaining',
            'RateLimit-Reset',
            'RateLimit-Policy',
          ]),
        );
      }
    }
  });

  it('publishes the validator’s custom messages only as an x- extension', () => {
    expect(document).not.toContain('"errorMessage"');
    expect(document).toContain('"x-error-message":"must be a UUID"');
  });
});
