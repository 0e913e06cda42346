// deploy/prometheus: promtool accepts the configuration and the rules, the rule unit tests pass, and
// every alert is tested both firing and staying silent. The Kubernetes scrape configuration is checked
// by promtool too, with its service discovery (which Debian's build lacks) swapped for a static target.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { makeTempDir, REPO_ROOT, removeTempDir } from '../helpers/process.ts';
import {
  API_JOB,
  PROMETHEUS_CONFIG,
  type PrometheusConfig,
  promtool,
  RULE_TESTS_DIR,
  RULES_DIR,
  type RuleGroup,
  readYaml,
  ruleGroups,
  skipWithoutPrometheus,
  ymlFiles,
} from '../helpers/prometheus.ts';

const K8S_SCRAPE_CONFIG = join(REPO_ROOT, 'deploy/k8s/prometheus-scrape.yml');
const PROMTOOL_TIMEOUT_MS = 120_000;
const SEVERITIES = ['page', 'ticket'];

interface AlertRuleTest {
  alertname: string;
  eval_time: string;
  exp_alerts?: unknown[];
}
interface RuleTestFile {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: AlertRuleTest[] }[];
}

const ruleFiles = ymlFiles(RULES_DIR);
const testFiles = ymlFiles(RULE_TESTS_DIR);
const alerts = ruleGroups().flatMap((group) => group.rules.filter((rule) => rule.alert !== undefined));

describe.skipIf(skipWithoutPrometheus())('promtool', () => {
  it('accepts prometheus.yml, which finds every rule file', { timeout: PROMTOOL_TIMEOUT_MS }, async () => {
    const { code, stdout, stderr } = await promtool(['check', 'config', 'deploy/prometheus/prometheus.yml']);
    expect(code, stdout + stderr).toBe(0);
    expect(stdout).toContain(`SUCCESS: ${ruleFiles.length} rule files found`);
    expect(stdout).toContain(
      'SUCCESS: deploy/prometheus/prometheus.yml is valid prometheus config file syntax',
    );
  });

  it('accepts every rule file, with all of its rules', { timeout: PROMTOOL_TIMEOUT_MS }, async () => {
    expect(ruleFiles.length).toBeGreaterThan(0);
    const { code, stdout, stderr } = await promtool(['check', 'rules', ...ruleFiles]);
    expect(code, stdout + stderr).toBe(0);
    for (const file of ruleFiles) {
      const count = readYaml<{ groups: RuleGroup[] }>(join(REPO_ROOT, file)).groups.flatMap(
        (group) => group.rules,
      ).length;
      expect(stdout).toContain(`Checking ${file}\n  SUCCESS: ${count} rules found`);
    }
  });

  it.concurrent.each(testFiles)(
    'passes the rule unit tests of %s',
    { timeout: PROMTOOL_TIMEOUT_MS },
    async (file) => {
      const { code, stdout, stderr } = await promtool(['test', 'rules', file]);
      expect(code, stdout + stderr).toBe(0);
      expect(stdout).toMatch(new RegExp(`Unit Testing: +${file}\\n +SUCCESS\\n`));
      expect(stdout).not.toContain('FAILED');
    },
  );

  it('accepts the Kubernetes configuration once its pod discovery is swapped for a static target', async () => {
    const config = readYaml<PrometheusConfig>(K8S_SCRAPE_CONFIG);
    const withStaticTargets = {
      ...config,
      rule_files: [join(RULES_DIR, '*.yml')],
      scrape_configs: config.scrape_configs.map(({ kubernetes_sd_configs, ...scrape }) => {
        expect(kubernetes_sd_configs).toEqual([{ role: 'pod' }]);
        return { ...scrape, static_configs: [{ targets: ['10.0.0.7:8000'] }] };
      }),
    };
    const dir = await makeTempDir('branch-loans-k8s-config-');
    try {
      const file = join(dir, 'prometheus.yml');
      await writeFile(file, stringify(withStaticTargets));
      const { code, stdout, stderr } = await promtool(['check', 'config', file]);
      expect(code, stdout + stderr).toBe(0);
      expect(stdout).toContain(`SUCCESS: ${ruleFiles.length} rule files found`);
    } finally {
      await removeTempDir(dir);
    }
  });
});

describe('alert rules and their unit tests', () => {
  const suites = testFiles.map((file) => ({ file, suite: readYaml<RuleTestFile>(join(REPO_ROOT, file)) }));

  it('define alerts', () => {
    expect(alerts.map((rule) => rule.alert).sort()).toEqual([
      'ApiDatabaseNotReady',
      'ApiDatabasePoolClientsWaiting',
      'ApiDatabasePoolNearlyFull',
      'ApiErrorBudgetBurnFast',
      'ApiErrorBudgetBurnSlow',
      'ApiLatencyBudgetBurnFast',
      'ApiLatencyBudgetBurnSlow',
      'ApiTargetDown',
      'ApiTargetsAbsent',
    ]);
  });

  it.each(alerts.map((rule) => rule.alert!))('%s is tested firing and staying silent', (alert) => {
    const cases = suites.flatMap(({ suite }) =>
      suite.tests.flatMap((test) => (test.alert_rule_test ?? []).filter((rule) => rule.alertname === alert)),
    );
    expect(cases.filter((rule) => (rule.exp_alerts ?? []).length > 0).length).toBeGreaterThan(0);
    expect(cases.filter((rule) => (rule.exp_alerts ?? []).length === 0).length).toBeGreaterThan(0);
  });

  // An alert missing from the rule files a test loads would "stay silent" in every test of it.
  it.each(testFiles)('%s tests only alerts that its rule files define', (file) => {
    const suite = suites.find((entry) => entry.file === file)!.suite;
    const loaded = suite.rule_files.flatMap((ruleFile) =>
      readYaml<{ groups: RuleGroup[] }>(join(RULE_TESTS_DIR, ruleFile)).groups.flatMap((group) =>
        group.rules.map((rule) => rule.alert),
      ),
    );
    for (const test of suite.tests) {
      for (const rule of test.alert_rule_test ?? []) {
        expect(loaded, `${file}: "${test.name}"`).toContain(rule.alertname);
      }
    }
  });

  it.each(alerts.map((rule) => [rule.alert!, rule] as const))(
    '%s has a severity, a summary, a description and its runbook',
    (alert, rule) => {
      expect(SEVERITIES).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary).toMatch(/\S/);
      expect(rule.annotations?.description).toMatch(/\S/);
      expect(rule.annotations?.runbook_url).toBe(`https://branchloans.com/runbooks/${alert}`);
    },
  );

  it('are loaded by prometheus.yml, which does not load the rule tests', () => {
    const config = readYaml<PrometheusConfig>(PROMETHEUS_CONFIG);
    expect(config.rule_files).toEqual(['rules/*.yml']);
    expect(testFiles.every((file) => file.startsWith('deploy/prometheus/tests/'))).toBe(true);
  });

  it('select the scrape job of the compose and the Kubernetes configuration alike', () => {
    const jobs = [PROMETHEUS_CONFIG, K8S_SCRAPE_CONFIG].map((file) =>
      readYaml<PrometheusConfig>(file).scrape_configs.map((scrape) => [scrape.job_name, scrape.metrics_path]),
    );
    expect(jobs).toEqual([[[API_JOB, '/metrics']], [[API_JOB, '/metrics']]]);
    // Alerts on the SLOs read the recorded ratios, which select the job themselves.
    for (const rule of ruleGroups().flatMap((group) => group.rules)) {
      const selectsJob = rule.expr.includes(`job="${API_JOB}"`);
      const readsRecordedRatios =
        rule.alert !== undefined && /\bslo:http_request_\w+:ratio_rate\w+/.test(rule.expr);
      expect(selectsJob || readsRecordedRatios, rule.record ?? rule.alert).toBe(true);
    }
  });
});
