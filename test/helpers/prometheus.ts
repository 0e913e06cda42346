// Debian's `prometheus` package (Prometheus and promtool 2.42) for the deploy and end-to-end tests, and
// the project's Prometheus and Grafana files as data: rule groups, rule tests, dashboard panel queries.
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from './ports.ts';
import {
  type AppProcess,
  type CommandResult,
  executablesMissing,
  makeTempDir,
  REPO_ROOT,
  removeTempDir,
  run,
  skipWhenMissing,
  startProcess,
  waitFor,
} from './process.ts';

export const PROMETHEUS_DIR = join(REPO_ROOT, 'deploy/prometheus');
export const PROMETHEUS_CONFIG = join(PROMETHEUS_DIR, 'prometheus.yml');
export const RULES_DIR = join(PROMETHEUS_DIR, 'rules');
export const RULE_TESTS_DIR = join(PROMETHEUS_DIR, 'tests');
export const GRAFANA_DIR = join(REPO_ROOT, 'deploy/grafana');
export const DASHBOARDS_DIR = join(GRAFANA_DIR, 'dashboards');
export const DASHBOARD_FILE = join(DASHBOARDS_DIR, 'branch-loans.json');
/** The scrape job of the API; the rules and the dashboard select on it. */
export const API_JOB = 'branch-loans-api';

export const PROMTOOL_PATH = process.env.PROMTOOL_PATH || '/usr/bin/promtool';
export const PROMETHEUS_PATH = process.env.PROMETHEUS_PATH || '/usr/bin/prometheus';

/** Why Prometheus and promtool cannot run here, or undefined when they can. */
export const prometheusMissing = () =>
  executablesMissing(
    [PROMTOOL_PATH, PROMETHEUS_PATH],
    "install Debian's package (apt-get install -y prometheus) or set PROMTOOL_PATH and PROMETHEUS_PATH",
  );

export const skipWithoutPrometheus = () => skipWhenMissing('Prometheus tests', prometheusMissing());

/** Runs promtool from the repository root. */
export function promtool(args: string[]): Promise<CommandResult> {
  const missing = prometheusMissing();
  if (missing) return Promise.reject(new Error(missing));
  return run(PROMTOOL_PATH, args, { timeoutMs: 60_000 });
}

export function readYaml<T>(path: string): T {
  return parse(readFileSync(path, 'utf8')) as T;
}

/** The .yml files of `dir`, sorted, as paths relative to the repository root. */
export function ymlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.yml'))
    .sort()
    .map((name) => relative(REPO_ROOT, join(dir, name)));
}

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleGroup {
  name: string;
  rules: Rule[];
}

/** Every rule group of deploy/prometheus/rules, in file order. */
export function ruleGroups(): RuleGroup[] {
  return ymlFiles(RULES_DIR).flatMap(
    (file) => readYaml<{ groups: RuleGroup[] }>(join(REPO_ROOT, file)).groups,
  );
}

export interface PrometheusConfig {
  global: Record<string, string>;
  rule_files: string[];
  scrape_configs: ({ job_name: string } & Record<string, unknown>)[];
  [key: string]: unknown;
}

/**
 * The compose configuration turned into one for a test: its API job scrapes `target` every second,
 * rules are evaluated every second, and the rule globs point at the project's rules.
 */
export function testPrometheusConfig(target: string): string {
  const config = readYaml<PrometheusConfig>(PROMETHEUS_CONFIG);
  const job = config.scrape_configs.find((scrape) => scrape.job_name === API_JOB);
  if (!job) throw new Error(`${PROMETHEUS_CONFIG} has no scrape job ${API_JOB}`);
  return stringify({
    ...config,
    global: { ...config.global, scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: config.rule_files.map((glob) => join(PROMETHEUS_DIR, glob)),
    scrape_configs: [{ ...job, scrape_interval: '1s', static_configs: [{ targets: [target] }] }],
  });
}

export interface QueryResult {
  status: string;
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

export interface RunningPrometheus {
  url: string;
  proc: AppProcess;
  query(expr: string): Promise<QueryResult>;
  /** GET `path` of the HTTP API (for example /api/v1/rules), parsed. */
  api<T>(path: string): Promise<T>;
  /** Stops Prometheus and removes its data. Safe to call at any time. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;

/** Prometheus on 127.0.0.1, a free port and a temporary data directory, with `configYaml`. */
export async function startPrometheus(configYaml: string): Promise<RunningPrometheus> {
  const missing = prometheusMissing();
  if (missing) throw new Error(missing);
  const dir = await makeTempDir('branch-loans-prometheus-');
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, configYaml);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startProcess(
    PROMETHEUS_PATH,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  );
  const stop = async () => {
    try {
      await proc.stop();
    } finally {
      await removeTempDir(dir);
    }
  };
  const api = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${url}${path}`);
    return (await response.json()) as T;
  };
  try {
    await waitFor(
      `Prometheus ready on ${url}`,
      async () => {
        if (proc.exitStatus) throw new Error(`Prometheus exited: ${proc.output()}`);
        return (await fetch(`${url}/-/ready`)).ok;
      },
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100 },
    );
  } catch (error) {
    await stop();
    throw new Error(`Prometheus did not start:\n${proc.output()}`, { cause: error });
  }
  return {
    url,
    proc,
    api,
    query: (expr) => api<QueryResult>(`/api/v1/query?query=${encodeURIComponent(expr)}`),
    stop,
  };
}

export interface DashboardTarget {
  refId: string;
  expr: string;
  datasource?: { type?: string; uid?: string };
  instant?: boolean;
  format?: string;
}
export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: DashboardTarget[];
  panels?: DashboardPanel[];
}
export interface DashboardVariable {
  name: string;
  type: string;
  query: string;
  definition?: string;
  datasource?: { type?: string; uid?: string };
}
export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: DashboardPanel[];
  templating: { list: DashboardVariable[] };
}

export function readDashboard(path = DASHBOARD_FILE): Dashboard {
  return JSON.parse(readFileSync(path, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

export interface PanelQuery {
  panel: string;
  refId: string;
  expr: string;
}

export function panelQueries(dashboard: Dashboard): PanelQuery[] {
  return allPanels(dashboard).flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({
      panel: `${panel.id} "${panel.title}"`,
      refId: target.refId,
      expr: target.expr,
    })),
  );
}

/** Replaces Grafana's variables ($name, ${name}, [[name]]) with concrete values; throws on one left over. */
export function substituteVariables(expr: string, values: Record<string, string>): string {
  const result = expr.replace(/\$\{(\w+)\}|\[\[(\w+)\]\]|\$(\w+)/g, (match, braced, bracketed, plain) => {
    const name = braced ?? bracketed ?? plain;
    const value = values[name];
    if (value === undefined) throw new Error(`no value for the variable ${match} in ${expr}`);
    return value;
  });
  return result;
}

/** A Grafana `label_values(selector, label)` variable query, split into its parts. */
export function parseLabelValues(query: string): { selector: string; label: string } {
  const match = /^label_values\((.+),\s*(\w+)\)$/.exec(query.trim());
  if (!match) throw new Error(`not a label_values(selector, label) query: ${query}`);
  return { selector: match[1]!, label: match[2]! };
}

/**
 * `value` as a regular expression matching it literally, written inside a PromQL string (so each
 * backslash doubled): what Grafana does to a variable's value in `=~"$var"`.
 */
export function regexEscape(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\\\$&');
}
