// deploy/grafana: the dashboard JSON has what Grafana needs to load it (checked against a schema of those
// parts), its layout and queries are consistent, and the provisioning files point at the datasource and
// the dashboards folder that exist. Whether each query returns data is proven against a real Prometheus
// in test/e2e/prometheus.test.ts.
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import {
  API_JOB,
  allPanels,
  DASHBOARD_FILE,
  DASHBOARDS_DIR,
  type DashboardPanel,
  GRAFANA_DIR,
  PROMETHEUS_CONFIG,
  type PrometheusConfig,
  panelQueries,
  readDashboard,
  readYaml,
  ruleGroups,
} from '../helpers/prometheus.ts';

const DATASOURCES_FILE = join(GRAFANA_DIR, 'provisioning/datasources/prometheus.yml');
const PROVIDERS_FILE = join(GRAFANA_DIR, 'provisioning/dashboards/dashboards.yml');
// Where the compose file mounts deploy/grafana/dashboards inside the Grafana container.
const DASHBOARDS_MOUNT = '/var/lib/grafana/dashboards';
const GRID_WIDTH = 24;
// Variables Grafana defines itself.
const BUILTIN_VARIABLES = ['__rate_interval', '__interval', '__range'];

interface Datasources {
  apiVersion: number;
  datasources: {
    name: string;
    uid: string;
    type: string;
    url: string;
    access: string;
    isDefault?: boolean;
    jsonData?: { timeInterval?: string };
  }[];
}
interface Providers {
  apiVersion: number;
  providers: { name: string; folder: string; type: string; options: { path: string } }[];
}

const datasources = readYaml<Datasources>(DATASOURCES_FILE);
const datasource = datasources.datasources[0]!;
const dashboard = readDashboard();
const panels = allPanels(dashboard);
const dataPanels = panels.filter((panel) => panel.type !== 'row');
const queries = panelQueries(dashboard);

const datasourceRef = {
  type: 'object',
  required: ['type', 'uid'],
  properties: { type: { const: 'prometheus' }, uid: { const: datasource.uid } },
};
const gridPos = {
  type: 'object',
  required: ['h', 'w', 'x', 'y'],
  properties: {
    h: { type: 'integer', minimum: 1 },
    w: { type: 'integer', minimum: 1, maximum: GRID_WIDTH },
    x: { type: 'integer', minimum: 0, maximum: GRID_WIDTH - 1 },
    y: { type: 'integer', minimum: 0 },
  },
};
const panelCommon = {
  id: { type: 'integer', minimum: 1 },
  title: { type: 'string', minLength: 1 },
  gridPos,
};
// The parts of Grafana's dashboard model that a provisioned dashboard needs to load and query.
const DASHBOARD_SCHEMA = {
  type: 'object',
  required: ['uid', 'title', 'schemaVersion', 'panels', 'templating', 'time'],
  properties: {
    uid: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,40}$' },
    title: { type: 'string', minLength: 1 },
    schemaVersion: { type: 'integer', minimum: 36 },
    editable: { type: 'boolean' },
    refresh: { type: 'string' },
    time: {
      type: 'object',
      required: ['from', 'to'],
      properties: { from: { type: 'string' }, to: { type: 'string' } },
    },
    templating: {
      type: 'object',
      required: ['list'],
      properties: {
        list: {
          type: 'array',
          items: {
            type: 'object',
            required: ['name', 'type', 'query', 'datasource', 'includeAll', 'multi', 'refresh'],
            properties: {
              name: { type: 'string', pattern: '^[A-Za-z]\\w*$' },
              type: { const: 'query' },
              query: { type: 'string', pattern: '^label_values\\(.+\\)$' },
              datasource: datasourceRef,
              includeAll: { type: 'boolean' },
              multi: { type: 'boolean' },
              allValue: { type: 'string' },
              refresh: { enum: [1, 2] },
            },
          },
        },
      },
    },
    panels: {
      type: 'array',
      minItems: 1,
      items: {
        if: { type: 'object', properties: { type: { const: 'row' } }, required: ['type'] },
        // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword
        then: {
          type: 'object',
          required: ['id', 'type', 'title', 'gridPos', 'collapsed', 'panels'],
          properties: {
            ...panelCommon,
            collapsed: { type: 'boolean' },
            panels: { type: 'array', maxItems: 0 },
          },
        },
        else: {
          type: 'object',
          required: ['id', 'type', 'title', 'gridPos', 'datasource', 'targets'],
          properties: {
            ...panelCommon,
            type: { enum: ['timeseries', 'stat', 'gauge', 'bargauge', 'table', 'heatmap', 'state-timeline'] },
            description: { type: 'string' },
            datasource: datasourceRef,
            fieldConfig: {
              type: 'object',
              required: ['defaults', 'overrides'],
              properties: { defaults: { type: 'object' }, overrides: { type: 'array' } },
            },
            targets: {
              type: 'array',
              minItems: 1,
              items: {
                type: 'object',
                required: ['refId', 'expr', 'datasource'],
                properties: {
                  refId: { type: 'string', pattern: '^[A-Z]$' },
                  expr: { type: 'string', minLength: 1 },
                  datasource: datasourceRef,
                  legendFormat: { type: 'string' },
                  instant: { type: 'boolean' },
                  range: { type: 'boolean' },
                  format: { enum: ['time_series', 'table', 'heatmap'] },
                },
              },
            },
          },
        },
      },
    },
  },
};

function overlaps(a: DashboardPanel['gridPos'], b: DashboardPanel['gridPos']): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

describe('the Grafana dashboard', () => {
  it('passes the schema of what Grafana needs', () => {
    const validate = new Ajv({ allErrors: true, strict: true }).compile(DASHBOARD_SCHEMA);
    const valid = validate(dashboard);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('has unique panel ids, and unique query refIds within each panel', () => {
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dataPanels) {
      const refIds = (panel.targets ?? []).map((target) => target.refId);
      expect(new Set(refIds).size, panel.title).toBe(refIds.length);
    }
  });

  it('lays panels out inside the 24-column grid without overlaps', () => {
    for (const panel of panels) {
      expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(GRID_WIDTH);
    }
    const overlapping = panels.flatMap((a, i) =>
      panels.slice(i + 1).flatMap((b) => (overlaps(a.gridPos, b.gridPos) ? [`${a.title} / ${b.title}`] : [])),
    );
    expect(overlapping).toEqual([]);
  });

  it('queries the provisioned datasource in every panel and every target', () => {
    expect(dataPanels.length).toBeGreaterThan(0);
    for (const panel of dataPanels) {
      expect(panel.datasource, panel.title).toEqual({ type: datasource.type, uid: datasource.uid });
      for (const target of panel.targets ?? []) {
        expect(target.datasource, `${panel.title} ${target.refId}`).toEqual({
          type: datasource.type,
          uid: datasource.uid,
        });
      }
    }
  });

  it('has instance and route variables, and uses no variable it does not define', () => {
    const defined = dashboard.templating.list.map((variable) => variable.name);
    expect(defined).toEqual(['instance', 'route']);
    const variableQueries = dashboard.templating.list.map((variable) => variable.query);
    const used = [...queries.map((query) => query.expr), ...variableQueries].flatMap((expr) =>
      [...expr.matchAll(/\$\{?(\w+)/g)].map((match) => match[1]!),
    );
    expect(used.filter((name) => !defined.includes(name) && !BUILTIN_VARIABLES.includes(name))).toEqual([]);
    expect(used).toContain('instance');
    expect(used).toContain('route');
  });

  it('selects the API job in every query, or reads series the rules record', () => {
    const recorded = ruleGroups().flatMap((group) => group.rules.flatMap((rule) => rule.record ?? []));
    for (const { panel, expr } of queries) {
      const names = [...expr.matchAll(/\bslo:\w+:\w+/g)].map((match) => match[0]);
      if (names.length > 0) expect(recorded, panel).toEqual(expect.arrayContaining(names));
      else expect(expr, panel).toContain(`job="${API_JOB}", instance=~"$instance"`);
    }
  });

  it('sizes every range from Grafana’s intervals, and gives every ratio a fallback to 0', () => {
    for (const { panel, expr } of queries) {
      for (const [, range] of expr.matchAll(/\[([^\]]+)\]/g)) {
        expect(['$__rate_interval', '$__range'], `${panel}: ${expr}`).toContain(range);
      }
      // A ratio of two series is empty while the numerator is (no errors yet).
      if (/\)\s*\/\s*\(/.test(expr)) expect(expr, panel).toMatch(/ or (vector\(0\)|.+ \* 0)$/);
    }
  });

  it('shows RED per route, the pool, the business counters and the process', () => {
    const metrics = new Set(
      queries.flatMap(({ expr }) => [...expr.matchAll(/\b([a-z_][a-z0-9_]*)\{/g)].map((m) => m[1])),
    );
    expect([...metrics].sort()).toEqual([
      'build_info',
      'database_up',
      'db_pool_idle_connections',
      'db_pool_max_connections',
      'db_pool_total_connections',
      'db_pool_waiting_clients',
      'db_query_duration_seconds_bucket',
      'db_query_duration_seconds_count',
      'http_request_duration_seconds_bucket',
      'http_request_duration_seconds_count',
      'http_requests_in_flight',
      'http_requests_total',
      'loan_transitions_total',
      'loans_by_status',
      'loans_created_total',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_gc_duration_seconds_sum',
      'nodejs_heap_size_used_bytes',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'repayments_amount_minor_total',
      'repayments_total',
    ]);
    for (const quantile of ['0.5', '0.95', '0.99']) {
      expect(
        queries.some(({ expr }) => expr.startsWith(`histogram_quantile(${quantile}, sum by (route, le)`)),
      ).toBe(true);
    }
  });
});

describe('Grafana provisioning', () => {
  it('provisions one Prometheus datasource with the uid the dashboards use', () => {
    expect(datasources.apiVersion).toBe(1);
    expect(datasources.datasources).toHaveLength(1);
    expect(datasource).toMatchObject({
      uid: 'prometheus',
      type: 'prometheus',
      access: 'proxy',
      url: 'http://prometheus:9090',
      isDefault: true,
    });
  });

  it('sizes $__rate_interval from the scrape interval of the API job', () => {
    const config = readYaml<PrometheusConfig>(PROMETHEUS_CONFIG);
    const job = config.scrape_configs.find((scrape) => scrape.job_name === API_JOB)!;
    expect(datasource.jsonData?.timeInterval).toBe(job.scrape_interval ?? config.global.scrape_interval);
  });

  it('loads the dashboards folder of the repository into the "Branch Loans" folder', () => {
    const { apiVersion, providers } = readYaml<Providers>(PROVIDERS_FILE);
    expect(apiVersion).toBe(1);
    expect(providers).toHaveLength(1);
    const provider = providers[0]!;
    expect(provider).toMatchObject({ type: 'file', folder: 'Branch Loans' });
    expect(provider.options.path).toBe(DASHBOARDS_MOUNT);
    expect(basename(provider.options.path)).toBe(basename(DASHBOARDS_DIR));
    expect(existsSync(DASHBOARDS_DIR)).toBe(true);
    expect(readdirSync(DASHBOARDS_DIR).filter((name) => name.endsWith('.json'))).toEqual([
      basename(DASHBOARD_FILE),
    ]);
  });
});
