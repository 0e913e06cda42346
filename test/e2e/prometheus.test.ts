// A real Prometheus (Debian's package) scrapes the running service on loopback, with the project's scrape
// job and rules. After traffic through every route, errors included, every query of the Grafana dashboard
// returns data, the service's counters hold exactly what the traffic did, and every rule evaluates.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { loanIn, newKey, post } from '../helpers/loans.ts';
import { REPO_ROOT, waitFor } from '../helpers/process.ts';
import {
  API_JOB,
  type PanelQuery,
  panelQueries,
  parseLabelValues,
  type QueryResult,
  type RunningPrometheus,
  readDashboard,
  regexEscape,
  ruleGroups,
  skipWithoutPrometheus,
  startPrometheus,
  substituteVariables,
  testPrometheusConfig,
} from '../helpers/prometheus.ts';

const SETUP_TIMEOUT_MS = 120_000;
const SCRAPES_AFTER_TRAFFIC = 3;
// Prometheus holds only seconds of data here; Grafana would size these from the time range and the
// datasource's scrape interval.
const GRAFANA_INTERVALS = { __rate_interval: '30s', __interval: '15s', __range: '5m' };
const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'patch']);
const LOAN_STATUSES = ['pending', 'approved', 'rejected', 'disbursed', 'repaid', 'defaulted'];

/** The queries of the README's ```promql blocks: runs of lines between comments and blank lines. */
function readmeQueries(): string[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const queries: string[] = [];
  for (const [, block] of readme.matchAll(/```promql\n([\s\S]*?)```/g)) {
    let lines: string[] = [];
    for (const line of [...block!.split('\n'), '']) {
      if (line.trim() === '' || line.trim().startsWith('#')) {
        if (lines.length > 0) queries.push(lines.join('\n'));
        lines = [];
      } else {
        lines.push(line);
      }
    }
  }
  return queries;
}

interface RulesResponse {
  status: string;
  data: {
    groups: {
      name: string;
      lastEvaluation: string;
      rules: { name: string; type: string; health: string; lastError?: string; lastEvaluation: string }[];
    }[];
  };
}

/** What the traffic did, to compare with what Prometheus scraped. */
interface Traffic {
  repaidMinorInr: number;
  documentedRoutes: string[];
}

/** Every route of the contract, the lifecycle end to end, and the client errors the API answers. */
async function driveTraffic(t: TestApp): Promise<Traffic> {
  const { app } = t;
  const get = async (url: string, status: number) => {
    const response = await app.inject({ url });
    expect(response.statusCode, `GET ${url}: ${response.body}`).toBe(status);
    return response;
  };

  // Lifecycle: 4 INR loans and 1 USD loan, through approve, reject, disburse, default and a clearing repayment.
  const repaid = await loanIn(app, 'repaid');
  await loanIn(app, 'rejected');
  await loanIn(app, 'defaulted', { currency: 'USD', amount: '500.00' });
  const approved = await loanIn(app, 'approved');
  const disbursed = await loanIn(app, 'disbursed');
  const schedule = (await get(`/api/loans/${repaid}/schedule`, 200)).json() as { total_repayable: string };

  for (const url of [
    '/api/loans',
    `/api/loans/${repaid}`,
    `/api/loans/${repaid}/repayments`,
    `/api/loans/${repaid}/events`,
    '/api/loan-quote?amount=1000.00&currency=INR&term_months=6&interest_rate_apr=12.00',
    '/api/stats',
    '/api/stats?currency=USD',
    '/health',
    '/liveness',
    '/readiness',
  ]) {
    await get(url, 200);
  }

  // Client errors: 400, 404 on a route and off any route, 405, 409, 422.
  await get('/api/loans/not-a-uuid', 400);
  await get(`/api/loans/${randomUUID()}`, 404);
  await get('/no/such/path', 404);
  expect((await app.inject({ method: 'DELETE', url: '/api/loans' })).statusCode).toBe(405);
  expect((await post(app, `/api/loans/${approved}/approve`)).statusCode).toBe(409);
  const overpayment = await post(
    app,
    `/api/loans/${disbursed}/repayments`,
    { amount: '99999999.00' },
    { 'idempotency-key': newKey() },
  );
  expect(overpayment.statusCode, overpayment.body).toBe(422);

  const document = (await get('/openapi.json', 200)).json() as { paths: Record<string, object> };
  const documentedRoutes = Object.entries(document.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((method) => HTTP_METHODS.has(method))
      .map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
  );
  // INR has two decimals: the minor units are the digits of the amount.
  expect(schedule.total_repayable).toMatch(/^\d+\.\d{2}$/);
  return { repaidMinorInr: Number(schedule.total_repayable.replace('.', '')), documentedRoutes };
}

describe.skipIf(skipWithoutPrometheus())('Prometheus scraping the running service', () => {
  let t: TestApp | undefined;
  let prometheus: RunningPrometheus | undefined;
  let instance: string;
  let traffic: Traffic;
  /** The job and the instance under test, as every dashboard query selects them. */
  let selector: string;

  beforeAll(async () => {
    t = await buildTestApp({ LOG_LEVEL: 'warn' });
    const origin = await t.app.listen({ host: '127.0.0.1', port: 0 });
    instance = new URL(origin).host;
    selector = `job="${API_JOB}", instance="${instance}"`;
    prometheus = await startPrometheus(testPrometheusConfig(instance));
    const running = prometheus;
    await waitFor('the first scrape', async () => (await value(running, `up{${selector}}`)) === 1, {
      timeoutMs: 30_000,
      intervalMs: 200,
    });

    traffic = await driveTraffic(t);
    const trafficEnded = Date.now() / 1000;

    // Scrapes (and then rule evaluations) that started after the traffic see all of it.
    await waitFor(
      `${SCRAPES_AFTER_TRAFFIC} scrapes after the traffic`,
      async () =>
        ((await value(running, `timestamp(up{${selector}})`)) ?? 0) >=
        trafficEnded + SCRAPES_AFTER_TRAFFIC - 1,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    const lastScrape = (await value(running, `timestamp(up{${selector}})`))!;
    await waitFor(
      'every rule group to evaluate after the last scrape',
      async () => {
        const rules = await running.api<RulesResponse>('/api/v1/rules');
        return rules.data.groups.every((group) => Date.parse(group.lastEvaluation) / 1000 > lastScrape);
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    try {
      await prometheus?.stop();
    } finally {
      await t?.close();
    }
  });

  /** The value of a single-sample instant query, or undefined when it has none. */
  async function value(prom: RunningPrometheus, expr: string): Promise<number | undefined> {
    const result = await prom.query(expr);
    expect(result.status, `${expr}: ${result.error}`).toBe('success');
    const samples = result.data?.result ?? [];
    expect(samples.length, expr).toBeLessThanOrEqual(1);
    return samples[0] ? Number(samples[0].value[1]) : undefined;
  }

  /** label value → sample value, for a query that returns one series per value of `label`. */
  async function byLabel(expr: string, label: string): Promise<Record<string, number>> {
    const result = await prometheus!.query(expr);
    expect(result.status, `${expr}: ${result.error}`).toBe('success');
    return Object.fromEntries(
      (result.data?.result ?? []).map((sample) => [sample.metric[label] ?? '', Number(sample.value[1])]),
    );
  }

  function nonEmpty(result: QueryResult): boolean {
    return result.status === 'success' && (result.data?.result.length ?? 0) > 0;
  }

  async function emptyQueries(queries: PanelQuery[], variables: Record<string, string>): Promise<string[]> {
    const failures: string[] = [];
    for (const query of queries) {
      const expr = substituteVariables(query.expr, { ...GRAFANA_INTERVALS, ...variables });
      const result = await prometheus!.query(expr);
      if (!nonEmpty(result)) {
        failures.push(`${query.panel} ${query.refId}: ${result.error ?? 'no data'} — ${expr}`);
      }
    }
    return failures;
  }

  it('scrapes the service with the project’s job and instance labels', async () => {
    expect(await value(prometheus!, `up{${selector}}`)).toBe(1);
    expect(await byLabel(`up`, 'job')).toEqual({ [API_JOB]: 1 });
  });

  it('returns data for every panel query of the dashboard, for all routes and for one', async () => {
    const queries = panelQueries(readDashboard());
    expect(queries.length).toBeGreaterThan(30);
    const thisInstance = regexEscape(instance);
    expect(await emptyQueries(queries, { instance: thisInstance, route: '.*' })).toEqual([]);
    expect(
      await emptyQueries(queries, { instance: thisInstance, route: regexEscape('/api/loans/:id') }),
    ).toEqual([]);
  });

  it('returns data for the example queries of the README', async () => {
    const queries = readmeQueries();
    expect(queries.length).toBeGreaterThan(3);
    const failures: string[] = [];
    for (const query of queries) {
      const result = await prometheus!.query(query);
      if (!nonEmpty(result)) failures.push(`${result.error ?? 'no data'} — ${query}`);
    }
    expect(failures).toEqual([]);
  });

  it('offers this instance and every route scraped in the dashboard’s variables', async () => {
    const values: Record<string, string[]> = {};
    for (const variable of readDashboard().templating.list) {
      const { selector: match, label } = parseLabelValues(
        substituteVariables(variable.query, { instance: regexEscape(instance) }),
      );
      const response = await prometheus!.api<{ status: string; data: string[] }>(
        `/api/v1/label/${label}/values?match[]=${encodeURIComponent(match)}`,
      );
      expect(response.status).toBe('success');
      values[variable.name] = response.data;
    }
    expect(values.instance).toEqual([instance]);
    expect(values.route).toEqual(
      expect.arrayContaining([
        '/api/loans',
        '/api/loans/:id',
        '/api/loans/:id/repayments',
        '/metrics',
        'unmatched',
      ]),
    );
  });

  it('counts every documented route under its route template', async () => {
    const scraped = await prometheus!.query(`count by (method, route) (http_requests_total{${selector}})`);
    const routes = (scraped.data?.result ?? []).map(({ metric }) => `${metric.method} ${metric.route}`);
    expect(traffic.documentedRoutes.length).toBeGreaterThan(10);
    expect(routes).toEqual(expect.arrayContaining([...traffic.documentedRoutes, 'GET /metrics']));
  });

  it('counts client errors by route and status, and no 5xx', async () => {
    const errors = await prometheus!.query(
      `sum by (method, route, status_code) (http_requests_total{${selector}, status_code=~"4..|5.."})`,
    );
    const counted = Object.fromEntries(
      (errors.data?.result ?? []).map(({ metric, value: [, count] }) => [
        `${metric.method} ${metric.route} ${metric.status_code}`,
        Number(count),
      ]),
    );
    expect(counted).toEqual({
      'GET /api/loans/:id 400': 1,
      'GET /api/loans/:id 404': 1,
      'GET unmatched 404': 1,
      'DELETE unmatched 405': 1,
      'POST /api/loans/:id/approve 409': 1,
      'POST /api/loans/:id/repayments 422': 1,
    });
    for (const window of ['5m', '30m', '1h', '2h', '6h', '1d', '3d']) {
      expect(await value(prometheus!, `slo:http_request_errors:ratio_rate${window}`), window).toBe(0);
    }
  });

  it('holds exactly the loans, transitions and repayments the traffic made', async () => {
    expect(await byLabel(`loans_created_total{${selector}}`, 'currency')).toEqual({ INR: 4, USD: 1 });
    const transitions = await prometheus!.query(`loan_transitions_total{${selector}} > 0`);
    expect(
      Object.fromEntries(
        (transitions.data?.result ?? []).map(({ metric, value: [, count] }) => [
          `${metric.from} → ${metric.to}`,
          Number(count),
        ]),
      ),
    ).toEqual({
      'pending → approved': 4,
      'pending → rejected': 1,
      'approved → disbursed': 3,
      'disbursed → defaulted': 1,
      'disbursed → repaid': 1,
    });
    expect(await byLabel(`repayments_total{${selector}}`, 'currency')).toEqual({ INR: 1 });
    expect(await byLabel(`repayments_amount_minor_total{${selector}}`, 'currency')).toEqual({
      INR: traffic.repaidMinorInr,
    });
    expect(await byLabel(`loans_by_status{${selector}}`, 'status')).toEqual(
      Object.fromEntries(LOAN_STATUSES.map((status) => [status, status === 'pending' ? 0 : 1])),
    );
  });

  it('reports the database, the pool, the request in flight and the build', async () => {
    expect(await value(prometheus!, `database_up{${selector}}`)).toBe(1);
    expect(await value(prometheus!, `db_pool_max_connections{${selector}}`)).toBe(t!.config.database.poolMax);
    expect(await value(prometheus!, `db_pool_waiting_clients{${selector}}`)).toBe(0);
    // The scrape itself is the one request in flight while the gauge is read.
    expect(await value(prometheus!, `http_requests_in_flight{${selector}}`)).toBe(1);
    expect(
      await value(
        prometheus!,
        `build_info{${selector}, version="${t!.config.version}", commit="${t!.config.commit}"}`,
      ),
    ).toBe(1);
  });

  it('evaluates every rule: recorded ratios have data, alert expressions run, series they read exist', async () => {
    const rules = ruleGroups().flatMap((group) => group.rules);
    const failures: string[] = [];
    for (const rule of rules) {
      const result = await prometheus!.query(rule.expr);
      if (result.status !== 'success') failures.push(`${rule.alert ?? rule.record}: ${result.error}`);
      else if (rule.record && !nonEmpty(result)) failures.push(`${rule.record}: no data`);
    }
    expect(failures).toEqual([]);

    const read = new Set(
      rules.flatMap((rule) => [...rule.expr.matchAll(/\b([a-z_][\w:]*)\{/g)].map((m) => m[1]!)),
    );
    const missing: string[] = [];
    for (const name of read) {
      if (!nonEmpty(await prometheus!.query(`count({__name__="${name}", job="${API_JOB}"})`)))
        missing.push(name);
    }
    expect(missing).toEqual([]);
  });

  it('lists every rule group as healthy after an evaluation', async () => {
    const { status, data } = await prometheus!.api<RulesResponse>('/api/v1/rules');
    expect(status).toBe('success');
    const expected = ruleGroups();
    expect(data.groups.map((group) => group.name).sort()).toEqual(expected.map((group) => group.name).sort());
    for (const group of data.groups) {
      const rules = expected.find((candidate) => candidate.name === group.name)!.rules;
      expect(group.rules.map((rule) => rule.name)).toEqual(rules.map((rule) => rule.alert ?? rule.record));
      for (const rule of group.rules) {
        expect({ rule: rule.name, health: rule.health, lastError: rule.lastError ?? '' }).toEqual({
          rule: rule.name,
          health: 'ok',
          lastError: '',
        });
      }
    }
  });
});
