// The GitHub Actions workflow, checked without GitHub: parsed by GitHub's own workflow parser, then held to
// policy rules of our own on the YAML (actions pinned to reviewed commits, least-privilege permissions,
// publishing only from pushes to main, attested images signed by digest, the README's test command on
// both databases with .ci/run's Debian packages, …), each rule shown to catch a broken variant. Also the
// Dependabot configuration.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers/process.ts';

const WORKFLOW_FILE = '.github/workflows/ci.yml';
const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');
const WORKFLOW_TEXT = read(WORKFLOW_FILE);

// DESIGN.md's table: the commits of the release tags, resolved from the actions' own repositories. To move
// an action, change its SHA and comment in the workflow and its row here together.
const EXPECTED_PINS: Record<string, { tag: string; commit: string }> = {
  'actions/checkout': { tag: 'v7.0.1', commit: '3d3c42e5aac5ba805825da76410c181273ba90b1' },
  'actions/setup-node': { tag: 'v7.0.0', commit: '820762786026740c76f36085b0efc47a31fe5020' },
  'docker/setup-buildx-action': { tag: 'v4.3.0', commit: '37fe631027851001ddb9b187196cc803df7f5f0e' },
  'docker/metadata-action': { tag: 'v6.2.0', commit: 'dc802804100637a589fabce1cb79ff13a1411302' },
  'docker/login-action': { tag: 'v4.1.0', commit: '4907a6ddec9925e35a0a9e82d7399ccc52663121' },
  'docker/build-push-action': { tag: 'v7.3.0', commit: '53b7df96c91f9c12dcc8a07bcb9ccacbed38856a' },
  'aquasecurity/trivy-action': { tag: 'v0.36.0', commit: 'ed142fd0673e97e23eac54620cfb913e5ce36c25' },
  'sigstore/cosign-installer': { tag: 'v4.1.2', commit: '6f9f17788090df1f26f669e9d70d6ae9567deba6' },
  'github/codeql-action': { tag: 'v4.36.2', commit: '8aad20d150bbac5944a9f9d289da16a4b0d87c1e' },
};

type Permissions = 'read-all' | 'write-all' | Record<string, string>;
type Env = Record<string, unknown>;
interface Step {
  id?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Env;
}
interface Service {
  image: string;
  options?: string;
}
interface Job {
  if?: string;
  permissions?: Permissions;
  'timeout-minutes'?: number;
  env?: Env;
  services?: Record<string, Service>;
  steps: Step[];
}
interface Workflow {
  permissions?: Permissions;
  concurrency?: { group?: string; 'cancel-in-progress'?: unknown };
  env?: Env;
  jobs: Record<string, Job>;
}

const workflow = parse(WORKFLOW_TEXT) as Workflow;

/** The real workflow, changed by `change`; the original is left alone. */
function variant(change: (workflow: Workflow) => void): Workflow {
  const copy = structuredClone(workflow);
  change(copy);
  return copy;
}

// --- what the README and .ci/run say ---------------------------------------------------------------

/** The test command of the README's quick start: its line that starts with `npm test`, comment removed. */
function readmeTestCommand(readme: string): string | undefined {
  const quickStart = readme.split(/^## /m).find((section) => section.startsWith('Quick start'));
  const block = quickStart?.match(/```sh\n([\s\S]*?)```/)?.[1] ?? '';
  const line = block.split('\n').find((candidate) => candidate.startsWith('npm test'));
  return line?.replace(/#.*$/, '').trim();
}

/** The packages named on a script's `apt-get install` line, options and redirections left out. */
function aptPackages(script: string): string[] {
  const line = script.split('\n').find((candidate) => /\bapt-get\s+install\b/.test(candidate));
  if (!line) return [];
  return line
    .replace(/^.*?\bapt-get\s+install\b/, '')
    .split(/\s+/)
    .filter((word) => /^[a-z0-9][a-z0-9.+-]*$/.test(word));
}

const README_TEST_COMMAND = readmeTestCommand(read('README.md'));
const CI_PACKAGES = aptPackages(read('.ci/run'));

// --- reading the workflow ----------------------------------------------------------------------------

/** `owner/repo[/path]` of a `uses:` step, without the ref. */
const actionOf = (step: Step) => step.uses?.split('@')[0];
const isOff = (value: unknown) => value === undefined || value === false || value === 'false';
const isOn = (value: unknown) => value === true || value === 'true';
const jobs = (workflow: Workflow) => Object.entries(workflow.jobs);
const steps = (workflow: Workflow) =>
  jobs(workflow).flatMap(([id, job]) => job.steps.map((step) => ({ id, job, step })));
const envOf = (workflow: Workflow, job: Job, step: Step): Env => ({
  ...workflow.env,
  ...job.env,
  ...step.env,
});
/** An expression's inside, spaces collapsed: "${{ a  == b }}" → "a == b". */
const expression = (value: unknown) =>
  String(value ?? '')
    .replace(/^\$\{\{|\}\}$/g, '')
    .replace(/\s+/g, ' ')
    .trim();

const pushesImage = (step: Step) => actionOf(step) === 'docker/build-push-action' && !isOff(step.with?.push);
const publishingStep = (step: Step) =>
  actionOf(step) === 'docker/login-action' ||
  actionOf(step) === 'sigstore/cosign-installer' ||
  pushesImage(step) ||
  /\b(?:cosign\s+sign|docker\s+push)\b/.test(step.run ?? '');

type Role = 'check' | 'code-scanning' | 'publish';

function roleOf(job: Job): Role {
  if (job.steps.some(publishingStep)) return 'publish';
  if (job.steps.some((step) => actionOf(step) === 'github/codeql-action/upload-sarif'))
    return 'code-scanning';
  return 'check';
}

// The most each kind of job may hold. code-scanning: upload-sarif needs actions: read in private repositories.
const ROLE_PERMISSIONS: Record<Role, Record<string, 'read' | 'write'>> = {
  check: { contents: 'read' },
  'code-scanning': { contents: 'read', 'security-events': 'write', actions: 'read' },
  publish: { contents: 'read', packages: 'write', 'id-token': 'write' },
};
const LEVEL = { none: 0, read: 1, write: 2 } as Record<string, number>;

// --- the rules ---------------------------------------------------------------------------------------

const USES_LINE = /^\s*(?:-\s+)?uses:\s*(?<ref>\S+)(?:\s+#\s*(?<comment>.*?))?\s*$/;
const PINNED_REF = /^(?<repository>[\w.-]+\/[\w.-]+)(?:\/[\w./-]+)?@(?<commit>[0-9a-f]{40})$/;

/** On the text, since the version comments are not part of the YAML data. */
function unpinnedActions(text: string): string[] {
  return text.split('\n').flatMap((line, index) => {
    const groups = USES_LINE.exec(line)?.groups;
    if (!groups) return [];
    const where = `line ${index + 1}, ${groups.ref}`;
    const pinned = PINNED_REF.exec(groups.ref!)?.groups;
    if (!pinned) return [`${where}: not pinned to a full commit SHA`];
    const expected = EXPECTED_PINS[pinned.repository!];
    if (!expected) return [`${where}: ${pinned.repository} has no reviewed pin`];
    const problems: string[] = [];
    if (pinned.commit !== expected.commit)
      problems.push(`${where}: expected ${expected.commit} (${expected.tag})`);
    if (groups.comment !== expected.tag)
      problems.push(`${where}: the comment must name the tag, # ${expected.tag}`);
    return problems;
  });
}

type Rule = (workflow: Workflow) => string[];

const noDefaultPermissions: Rule = (workflow) =>
  typeof workflow.permissions === 'object' && Object.keys(workflow.permissions).length === 0
    ? []
    : ['the workflow must start from permissions: {}, each job granting what it needs'];

const leastPrivilege: Rule = (workflow) =>
  jobs(workflow).flatMap(([id, job]) => {
    const role = roleOf(job);
    const granted = job.permissions ?? {};
    if (typeof granted === 'string') return [`${id} (${role}): ${granted} grants everything`];
    const allowed = ROLE_PERMISSIONS[role];
    return Object.entries(granted)
      .filter(([scope, level]) => LEVEL[level]! > LEVEL[allowed[scope] ?? 'none']!)
      .map(([scope, level]) => `${id} (${role}): ${scope}: ${level} is more than it needs`);
  });

const PUBLISH_CONDITIONS = ["github.event_name == 'push'", "github.ref == 'refs/heads/main'"];

/** Every job that logs in, pushes or signs runs only for a push to main: a conjunction with both terms. */
const publishesOnlyFromMain: Rule = (workflow) =>
  jobs(workflow)
    .filter(([, job]) => roleOf(job) === 'publish')
    .flatMap(([id, job]) => {
      const condition = expression(job.if);
      if (condition.includes('||')) return [`${id}: if: ${condition} can be true for other events`];
      const terms = condition.split('&&').map((term) => term.trim());
      return PUBLISH_CONDITIONS.filter((term) => !terms.includes(term)).map(
        (term) => `${id} publishes without requiring ${term}`,
      );
    });

const pushedImagesAttested: Rule = (workflow) => {
  const pushes = steps(workflow).filter(({ step }) => pushesImage(step));
  if (pushes.length === 0) return ['no job pushes the image'];
  return pushes.flatMap(({ id, step }) => [
    ...(isOn(step.with?.push) ? [] : [`${id}: push must be true, not ${step.with?.push}`]),
    ...(step.with?.provenance === 'mode=max' ? [] : [`${id}: no provenance: mode=max attestation`]),
    ...(isOn(step.with?.sbom) ? [] : [`${id}: no sbom: true attestation`]),
  ]);
};

/** The run text with $NAME and ${NAME} replaced by the step's or job's env values. */
const withEnv = (run: string, env: Env) =>
  run.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced, bare) => String(env[braced ?? bare] ?? whole));

const signedByDigest: Rule = (workflow) =>
  jobs(workflow)
    .filter(([, job]) => job.steps.some(pushesImage))
    .flatMap(([id, job]) => {
      const build = job.steps.find(pushesImage)!;
      if (!build.id) return [`${id}: the build step needs an id to sign its digest`];
      const digest = new RegExp(`@\\$\\{\\{ ?steps\\.${build.id}\\.outputs\\.digest ?\\}\\}`);
      const signs = job.steps
        .filter((step) => /\bcosign\s+sign\b/.test(step.run ?? ''))
        .map((step) => withEnv(step.run!, envOf(workflow, job, step)));
      if (!job.steps.some((step) => actionOf(step) === 'sigstore/cosign-installer') || signs.length === 0) {
        return [`${id}: pushes an image without signing it with cosign`];
      }
      return signs
        .filter((sign) => !digest.test(sign) || !/--yes\b/.test(sign))
        .map((sign) => `${id}: ${sign} does not sign …@\${{ steps.${build.id}.outputs.digest }} with --yes`);
    });

const checkoutKeepsNoCredentials: Rule = (workflow) =>
  steps(workflow)
    .filter(({ step }) => actionOf(step) === 'actions/checkout')
    .filter(({ step }) => step.with?.['persist-credentials'] !== false)
    .map(({ id }) => `${id}: checkout must set persist-credentials: false`);

const cancelsSupersededPullRequestRuns: Rule = (workflow) => {
  const group = expression(workflow.concurrency?.group);
  const cancel = expression(workflow.concurrency?.['cancel-in-progress']);
  return [
    ...(group.includes('github.event.pull_request.number') ? [] : [`group ${group} is not per pull request`]),
    // Runs on main share no group: GitHub keeps one pending run per group and drops the others unbuilt.
    ...(group.includes('github.run_id')
      ? []
      : [`group ${workflow.concurrency?.group} makes pushes to main wait on each other`]),
    ...(cancel === "github.event_name == 'pull_request'"
      ? []
      : [`cancel-in-progress: ${cancel} must cancel pull request runs only`]),
  ];
};

interface TestRun {
  id: string;
  job: Job;
  index: number;
  env: Env;
}

/** Steps that run exactly the README's test command. */
const testRuns = (workflow: Workflow, command: string): TestRun[] =>
  jobs(workflow).flatMap(([id, job]) =>
    job.steps.flatMap((step, index) =>
      step.run?.trim() === command ? [{ id, job, index, env: envOf(workflow, job, step) }] : [],
    ),
  );

/** The job's health-checked PostgreSQL 17 service that DATABASE_URL names, if it names one. */
function postgresService(run: TestRun): Service | undefined {
  const url = run.env.DATABASE_URL;
  if (typeof url !== 'string') return undefined;
  const service = run.job.services?.[new URL(url).hostname];
  const healthy =
    /^postgres:17\b/.test(service?.image ?? '') && /--health-cmd\b/.test(service?.options ?? '');
  return healthy ? service : undefined;
}

const runsReadmeTests =
  (command: string): Rule =>
  (workflow) => {
    const runs = testRuns(workflow, command);
    return [
      ...(runs.some((run) => run.env.DATABASE_URL === undefined)
        ? []
        : [`no job runs "${command}" on the embedded database (without DATABASE_URL)`]),
      ...(runs.some(postgresService)
        ? []
        : [`no job runs "${command}" with DATABASE_URL naming a health-checked postgres:17 service`]),
      ...runs
        .filter((run) => !isOn(run.env.CI))
        .map((run) => `${run.id}: runs the tests without CI=true, so missing tools skip tests`),
      ...runs
        .filter((run) => !run.job.steps.slice(0, run.index).some((step) => step.run?.trim() === 'npm ci'))
        .map((run) => `${run.id}: does not npm ci before the tests`),
    ];
  };

const installsPackages =
  (command: string, packages: string[]): Rule =>
  (workflow) =>
    testRuns(workflow, command).flatMap((run) => {
      const installs = run.job.steps
        .slice(0, run.index)
        .filter((step) => /\bapt-get\s+update\b/.test(step.run ?? ''))
        .flatMap((step) => aptPackages(step.run!));
      const missing = packages.filter((name) => !installs.includes(name));
      return missing.length === 0 ? [] : [`${run.id}: does not apt-get install ${missing.join(' ')}`];
    });

const noSecretInRunScripts: Rule = (workflow) =>
  steps(workflow)
    .filter(({ step }) => /\$\{\{\s*(?:secrets\.|github\.token\b)/.test(step.run ?? ''))
    .map(({ id, step }) => `${id}: ${step.run} puts a secret in a script; pass it through env:`);

/**
 * Each Trivy step fails the job on CRITICAL findings, honours .trivyignore, and its SARIF is uploaded
 * under a category of its own even when the scan failed. Both the repository and the image are scanned.
 */
const trivyGatesAndReports: Rule = (workflow) => {
  const scans = steps(workflow).filter(({ step }) => actionOf(step) === 'aquasecurity/trivy-action');
  const types = scans.map(({ step }) => step.with?.['scan-type']);
  const uploads = steps(workflow).filter(
    ({ step }) => actionOf(step) === 'github/codeql-action/upload-sarif',
  );
  const categories = uploads.map(({ step }) => step.with?.category);
  return [
    ...['fs', 'image'].filter((type) => !types.includes(type)).map((type) => `no Trivy ${type} scan`),
    ...(new Set(categories).size === categories.length ? [] : ['two SARIF uploads share a category']),
    ...scans.flatMap(({ id, job, step }) => {
      const options = step.with ?? {};
      const upload = job.steps
        .slice(job.steps.indexOf(step) + 1)
        .find((later) => actionOf(later) === 'github/codeql-action/upload-sarif');
      return [
        ...(options.severity === 'CRITICAL' && String(options['exit-code']) === '1'
          ? []
          : [`${id}: Trivy must fail on CRITICAL (severity: CRITICAL, exit-code: 1)`]),
        ...(options.format === 'sarif' && isOn(options['limit-severities-for-sarif'])
          ? []
          : [`${id}: SARIF output without limit-severities-for-sarif: true ignores severity`]),
        ...(options.trivyignores === '.trivyignore' ? [] : [`${id}: Trivy does not read .trivyignore`]),
        ...(upload?.with?.sarif_file === options.output && upload?.with?.category
          ? []
          : [`${id}: ${options.output} is not uploaded with a category`]),
        ...(expression(upload?.if).includes('always()')
          ? []
          : [`${id}: a failing scan would not be uploaded`]),
      ];
    }),
  ];
};

const jobsHaveTimeouts: Rule = (workflow) =>
  jobs(workflow)
    .filter(([, job]) => !(Number(job['timeout-minutes']) > 0))
    .map(([id]) => `${id} has no timeout-minutes`);

const nodeFromSetupNodeWithNpmCache: Rule = (workflow) =>
  jobs(workflow)
    .filter(([, job]) => job.steps.some((step) => /^npm\b/.test(step.run ?? '')))
    .flatMap(([id, job]) => {
      const setup = job.steps.find((step) => actionOf(step) === 'actions/setup-node');
      if (!setup) return [`${id} runs npm without actions/setup-node`];
      const version = setup.with?.['node-version'] ?? setup.with?.['node-version-file'];
      return [
        ...(version ? [] : [`${id}: setup-node without a node-version`]),
        ...(setup.with?.cache === 'npm' ? [] : [`${id}: setup-node without cache: npm`]),
      ];
    });

const RULES = {
  'starts from no permissions': noDefaultPermissions,
  'grants each job only what its role needs': leastPrivilege,
  'publishes only on a push to main': publishesOnlyFromMain,
  'pushes images with provenance and SBOM attestations': pushedImagesAttested,
  'signs the pushed image by digest': signedByDigest,
  'leaves no credentials behind after checkout': checkoutKeepsNoCredentials,
  'cancels superseded pull request runs only': cancelsSupersededPullRequestRuns,
  "runs the README's test command on both databases": runsReadmeTests(README_TEST_COMMAND!),
  'installs the Debian packages .ci/run installs before the tests': installsPackages(
    README_TEST_COMMAND!,
    CI_PACKAGES,
  ),
  'puts no secret in a run script': noSecretInRunScripts,
  'fails on CRITICAL Trivy findings and uploads them': trivyGatesAndReports,
  'gives every job a timeout': jobsHaveTimeouts,
  'takes Node from setup-node with the npm cache': nodeFromSetupNodeWithNpmCache,
} satisfies Record<string, Rule>;

const job = (workflow: Workflow, id: string) => workflow.jobs[id]!;
const stepOf = (workflow: Workflow, id: string, match: (step: Step) => boolean) =>
  job(workflow, id).steps.find(match)!;
const usesAction = (action: string) => (step: Step) => actionOf(step) === action;
const runs = (pattern: RegExp) => (step: Step) => pattern.test(step.run ?? '');
const buildPush = usesAction('docker/build-push-action');
const cosignSign = runs(/cosign sign/);
const trivy = usesAction('aquasecurity/trivy-action');
const upload = usesAction('github/codeql-action/upload-sarif');
const aptInstall = runs(/apt-get install/);

interface Bad {
  workflow: Workflow;
  problems: string[];
}
/** The real workflow changed in one respect, and exactly what its rule must say about it. */
const bad = (change: (workflow: Workflow) => void, ...problems: string[]): Bad => ({
  workflow: variant(change),
  problems,
});
const NO_PUBLISH_CONDITIONS = (id: string) =>
  PUBLISH_CONDITIONS.map((term) => `${id} publishes without requiring ${term}`);
const NO_SERVER_LEG = 'no job runs "npm test" with DATABASE_URL naming a health-checked postgres:17 service';
const DIGEST = '${{ steps.build.outputs.digest }}';

const BAD: Record<keyof typeof RULES, Bad[]> = {
  'starts from no permissions': [
    bad(
      (w) => delete w.permissions,
      'the workflow must start from permissions: {}, each job granting what it needs',
    ),
    bad(
      (w) => (w.permissions = 'read-all'),
      'the workflow must start from permissions: {}, each job granting what it needs',
    ),
    bad(
      (w) => (w.permissions = { contents: 'read' }),
      'the workflow must start from permissions: {}, each job granting what it needs',
    ),
  ],
  'grants each job only what its role needs': [
    bad(
      (w) => (job(w, 'test-embedded').permissions = 'write-all'),
      'test-embedded (check): write-all grants everything',
    ),
    bad(
      (w) => (job(w, 'test-server').permissions = { contents: 'write' }),
      'test-server (check): contents: write is more than it needs',
    ),
    bad(
      (w) => (job(w, 'lint').permissions = { contents: 'read', 'security-events': 'write' }),
      'lint (check): security-events: write is more than it needs',
    ),
    bad(
      (w) => (job(w, 'image').permissions = { contents: 'read', packages: 'write' }),
      'image (code-scanning): packages: write is more than it needs',
    ),
    bad(
      (w) => (job(w, 'publish').permissions = { contents: 'write', packages: 'write' }),
      'publish (publish): contents: write is more than it needs',
    ),
  ],
  'publishes only on a push to main': [
    bad((w) => delete job(w, 'publish').if, ...NO_PUBLISH_CONDITIONS('publish')),
    bad(
      (w) => (job(w, 'publish').if = "github.ref == 'refs/heads/main'"),
      "publish publishes without requiring github.event_name == 'push'",
    ),
    bad(
      (w) => (job(w, 'publish').if = "github.event_name == 'push' || github.event_name == 'pull_request'"),
      "publish: if: github.event_name == 'push' || github.event_name == 'pull_request' can be true for other events",
    ),
    // The image job runs for pull requests too.
    bad((w) => (stepOf(w, 'image', buildPush).with!.push = true), ...NO_PUBLISH_CONDITIONS('image')),
    bad(
      (w) => (stepOf(w, 'image', buildPush).with!.push = "${{ github.event_name == 'pull_request' }}"),
      ...NO_PUBLISH_CONDITIONS('image'),
    ),
    bad(
      (w) => job(w, 'lint').steps.push({ uses: 'docker/login-action@x', with: { registry: 'ghcr.io' } }),
      ...NO_PUBLISH_CONDITIONS('lint'),
    ),
    bad(
      (w) => job(w, 'lint').steps.push({ run: 'docker push ghcr.io/x/y:pr' }),
      ...NO_PUBLISH_CONDITIONS('lint'),
    ),
  ],
  'pushes images with provenance and SBOM attestations': [
    bad(
      (w) => delete stepOf(w, 'publish', buildPush).with!.provenance,
      'publish: no provenance: mode=max attestation',
    ),
    bad(
      (w) => (stepOf(w, 'publish', buildPush).with!.provenance = 'mode=min'),
      'publish: no provenance: mode=max attestation',
    ),
    bad((w) => (stepOf(w, 'publish', buildPush).with!.sbom = false), 'publish: no sbom: true attestation'),
    bad((w) => (stepOf(w, 'publish', buildPush).with!.push = false), 'no job pushes the image'),
    bad(
      (w) => (stepOf(w, 'publish', buildPush).with!.push = "${{ github.event_name == 'push' }}"),
      "publish: push must be true, not ${{ github.event_name == 'push' }}",
    ),
  ],
  'signs the pushed image by digest': [
    bad(
      (w) => (stepOf(w, 'publish', cosignSign).run = 'cosign sign --yes "${IMAGE}:latest"'),
      `publish: cosign sign --yes "\${{ steps.image.outputs.name }}:latest" does not sign …@${DIGEST} with --yes`,
    ),
    bad(
      (w) => (stepOf(w, 'publish', cosignSign).env!.DIGEST = '${{ steps.meta.outputs.tags }}'),
      'publish: cosign sign --yes "${{ steps.image.outputs.name }}@${{ steps.meta.outputs.tags }}" ' +
        `does not sign …@${DIGEST} with --yes`,
    ),
    bad(
      (w) => (stepOf(w, 'publish', cosignSign).run = 'cosign sign "${IMAGE}@${DIGEST}"'),
      `publish: cosign sign "\${{ steps.image.outputs.name }}@${DIGEST}" does not sign …@${DIGEST} with --yes`,
    ),
    bad(
      (w) => (job(w, 'publish').steps = job(w, 'publish').steps.filter((step) => !cosignSign(step))),
      'publish: pushes an image without signing it with cosign',
    ),
    bad(
      (w) => delete stepOf(w, 'publish', buildPush).id,
      'publish: the build step needs an id to sign its digest',
    ),
  ],
  'leaves no credentials behind after checkout': [
    bad(
      (w) => delete stepOf(w, 'lint', usesAction('actions/checkout')).with,
      'lint: checkout must set persist-credentials: false',
    ),
    bad(
      (w) => (stepOf(w, 'publish', usesAction('actions/checkout')).with!['persist-credentials'] = true),
      'publish: checkout must set persist-credentials: false',
    ),
  ],
  'cancels superseded pull request runs only': [
    bad(
      (w) => (w.concurrency!['cancel-in-progress'] = false),
      'cancel-in-progress: false must cancel pull request runs only',
    ),
    // That would also cancel a run on main half-way through publishing.
    bad(
      (w) => (w.concurrency!['cancel-in-progress'] = true),
      'cancel-in-progress: true must cancel pull request runs only',
    ),
    bad(
      (w) => (w.concurrency!.group = '${{ github.workflow }}'),
      'group github.workflow is not per pull request',
      'group ${{ github.workflow }} makes pushes to main wait on each other',
    ),
    bad(
      (w) =>
        (w.concurrency!.group =
          '${{ github.workflow }}-${{ github.event.pull_request.number || github.ref }}'),
      'group ${{ github.workflow }}-${{ github.event.pull_request.number || github.ref }} makes pushes to main wait on each other',
    ),
  ],
  "runs the README's test command on both databases": [
    bad(
      (w) => (stepOf(w, 'test-embedded', runs(/^npm test$/)).run = 'npx vitest run'),
      'no job runs "npm test" on the embedded database (without DATABASE_URL)',
    ),
    bad(
      (w) => (job(w, 'test-embedded').env!.DATABASE_URL = 'postgres://postgres@postgres:5432/postgres'),
      'no job runs "npm test" on the embedded database (without DATABASE_URL)',
    ),
    bad((w) => delete job(w, 'test-server').services, NO_SERVER_LEG),
    bad((w) => (job(w, 'test-server').services!.postgres!.image = 'postgres:16'), NO_SERVER_LEG),
    bad((w) => delete job(w, 'test-server').services!.postgres!.options, NO_SERVER_LEG),
    bad(
      (w) => delete job(w, 'test-server').env!.CI,
      'test-server: runs the tests without CI=true, so missing tools skip tests',
    ),
    bad(
      (w) =>
        (job(w, 'test-embedded').steps = job(w, 'test-embedded').steps.filter((s) => s.run !== 'npm ci')),
      'test-embedded: does not npm ci before the tests',
    ),
  ],
  'installs the Debian packages .ci/run installs before the tests': [
    bad(
      (w) => (stepOf(w, 'test-embedded', aptInstall).run = 'apt-get update && apt-get install -y nginx'),
      'test-embedded: does not apt-get install chromium prometheus openssl curl shellcheck redis-server pgbouncer haproxy postgresql-15',
    ),
    bad(
      (w) => (job(w, 'test-server').steps = job(w, 'test-server').steps.filter((s) => !aptInstall(s))),
      'test-server: does not apt-get install chromium prometheus nginx openssl curl shellcheck redis-server pgbouncer haproxy postgresql-15',
    ),
  ],
  'puts no secret in a run script': [
    bad(
      (w) => job(w, 'lint').steps.push({ run: 'echo "${{ secrets.GITHUB_TOKEN }}" | docker login' }),
      'lint: echo "${{ secrets.GITHUB_TOKEN }}" | docker login puts a secret in a script; pass it through env:',
    ),
    bad(
      (w) => job(w, 'lint').steps.push({ run: 'curl -H "Authorization: Bearer ${{ github.token }}" x' }),
      'lint: curl -H "Authorization: Bearer ${{ github.token }}" x puts a secret in a script; pass it through env:',
    ),
  ],
  'fails on CRITICAL Trivy findings and uploads them': [
    bad(
      (w) => (stepOf(w, 'image', trivy).with!['exit-code'] = '0'),
      'image: Trivy must fail on CRITICAL (severity: CRITICAL, exit-code: 1)',
    ),
    bad(
      (w) => (stepOf(w, 'scan-repository', trivy).with!.severity = 'HIGH'),
      'scan-repository: Trivy must fail on CRITICAL (severity: CRITICAL, exit-code: 1)',
    ),
    bad(
      (w) => delete stepOf(w, 'image', trivy).with!['limit-severities-for-sarif'],
      'image: SARIF output without limit-severities-for-sarif: true ignores severity',
    ),
    bad(
      (w) => delete stepOf(w, 'image', trivy).with!.trivyignores,
      'image: Trivy does not read .trivyignore',
    ),
    bad((w) => delete stepOf(w, 'image', upload).if, 'image: a failing scan would not be uploaded'),
    bad(
      (w) => (stepOf(w, 'image', upload).with!.category = 'trivy-repository'),
      'two SARIF uploads share a category',
    ),
    bad(
      (w) => (job(w, 'image').steps = job(w, 'image').steps.filter((step) => !upload(step))),
      'image: trivy-image.sarif is not uploaded with a category',
      'image: a failing scan would not be uploaded',
    ),
    bad(
      (w) => (job(w, 'image').steps = job(w, 'image').steps.filter((step) => !trivy(step))),
      'no Trivy image scan',
    ),
  ],
  'gives every job a timeout': [
    bad((w) => delete job(w, 'publish')['timeout-minutes'], 'publish has no timeout-minutes'),
  ],
  'takes Node from setup-node with the npm cache': [
    bad(
      (w) => delete stepOf(w, 'lint', usesAction('actions/setup-node')).with!.cache,
      'lint: setup-node without cache: npm',
    ),
    bad(
      (w) => delete stepOf(w, 'test-server', usesAction('actions/setup-node')).with!['node-version'],
      'test-server: setup-node without a node-version',
    ),
    bad(
      (w) =>
        (job(w, 'lint').steps = job(w, 'lint').steps.filter((s) => !usesAction('actions/setup-node')(s))),
      'lint runs npm without actions/setup-node',
    ),
  ],
};

describe('GitHub workflow', () => {
  it("parses and converts with GitHub's workflow parser without errors", async () => {
    const result = parseWorkflow(
      { name: WORKFLOW_FILE, content: WORKFLOW_TEXT },
      new NoOperationTraceWriter(),
    );
    expect(result.context.errors.getErrors().map(String)).toEqual([]);
    const template = await convertWorkflowTemplate(result.context, result.value!);
    expect(template.errors ?? []).toEqual([]);
    expect(template.jobs.map((converted) => converted.id.value)).toEqual([
      'lint',
      'test-embedded',
      'test-server',
      'scan-repository',
      'image',
      'publish',
    ]);
  });

  it('is rejected by the parser when it breaks the workflow schema', () => {
    const broken = WORKFLOW_TEXT.replace('timeout-minutes: 10', 'timeout-minute: 10');
    const result = parseWorkflow({ name: WORKFLOW_FILE, content: broken }, new NoOperationTraceWriter());
    expect(result.context.errors.getErrors().map((error) => error.rawMessage)).toEqual([
      "Unexpected value 'timeout-minute'",
    ]);
  });

  it('pins every action to the commit of its reviewed release tag, named in a comment', () => {
    expect(unpinnedActions(WORKFLOW_TEXT)).toEqual([]);
    // Every uses: of the workflow is on a line of its own that the text check reads.
    const usesLines = WORKFLOW_TEXT.split('\n').filter((line) => USES_LINE.test(line));
    expect(usesLines.length).toBe(steps(workflow).filter(({ step }) => step.uses).length);
    expect(usesLines.length).toBeGreaterThan(0);
  });

  it('rejects a floating tag, a short or unreviewed SHA and a missing or wrong version comment', () => {
    const checkout = 'actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1';
    const line = (uses: string) => unpinnedActions(`    steps:\n      - uses: ${uses}\n`);
    expect(line(checkout)).toEqual([]);
    expect(line('actions/checkout@v4')).toEqual([
      'line 2, actions/checkout@v4: not pinned to a full commit SHA',
    ]);
    expect(line('aquasecurity/trivy-action@main # v0.36.0')).toEqual([
      'line 2, aquasecurity/trivy-action@main: not pinned to a full commit SHA',
    ]);
    expect(line('actions/checkout@3d3c42e # v7.0.1')).toEqual([
      'line 2, actions/checkout@3d3c42e: not pinned to a full commit SHA',
    ]);
    expect(line(checkout.replace('3d3c42e5', '00000000'))).toEqual([
      'line 2, actions/checkout@00000000aac5ba805825da76410c181273ba90b1: expected 3d3c42e5aac5ba805825da76410c181273ba90b1 (v7.0.1)',
    ]);
    expect(line(checkout.replace(' # v7.0.1', ''))).toEqual([
      'line 2, actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1: the comment must name the tag, # v7.0.1',
    ]);
    expect(line(checkout.replace('v7.0.1', 'v7'))).toHaveLength(1);
    expect(line(`someone/action@${'a'.repeat(40)} # v1.0.0`)).toEqual([
      `line 2, someone/action@${'a'.repeat(40)}: someone/action has no reviewed pin`,
    ]);
    expect(
      unpinnedActions(
        WORKFLOW_TEXT.replace(/aquasecurity\/trivy-action@\w+/, 'aquasecurity/trivy-action@v0.36.0'),
      ),
    ).toHaveLength(1);
  });

  for (const [name, rule] of Object.entries(RULES)) {
    it(`the workflow ${name}`, () => {
      expect(rule(workflow)).toEqual([]);
    });

    it(`the rule "${name}" reports each way of breaking it`, () => {
      for (const { workflow: broken, problems } of BAD[name as keyof typeof RULES]) {
        expect(rule(broken)).toEqual(problems);
      }
    });
  }

  it("takes the test command from the README's quick start and the packages from .ci/run", () => {
    expect(README_TEST_COMMAND).toBe('npm test');
    expect(CI_PACKAGES).toEqual([
      'chromium',
      'prometheus',
      'nginx',
      'openssl',
      'curl',
      'shellcheck',
      'redis-server',
      'pgbouncer',
      'haproxy',
      'postgresql-15',
    ]);
    expect(readmeTestCommand('## Quick start\n\n```sh\nnpm ci\nnpm test -- --bail  # fast\n```\n')).toBe(
      'npm test -- --bail',
    );
    expect(aptPackages('sudo apt-get install -y -qq nginx curl >/dev/null 2>&1')).toEqual(['nginx', 'curl']);
  });

  it('names the role of each job from what it does', () => {
    expect(Object.fromEntries(jobs(workflow).map(([id, job]) => [id, roleOf(job)]))).toEqual({
      lint: 'check',
      'test-embedded': 'check',
      'test-server': 'check',
      'scan-repository': 'code-scanning',
      image: 'code-scanning',
      publish: 'publish',
    });
  });
});

interface DependabotUpdate {
  'package-ecosystem': string;
  directory: string;
  schedule?: { interval?: string };
}

function missingEcosystems(config: { version: number; updates: DependabotUpdate[] }): string[] {
  const covered = config.updates
    .filter((update) => update.directory === '/' && update.schedule?.interval === 'weekly')
    .map((update) => update['package-ecosystem']);
  return [
    ...(config.version === 2 ? [] : [`version ${config.version}, not 2`]),
    ...['npm', 'docker', 'docker-compose', 'github-actions'].filter(
      (ecosystem) => !covered.includes(ecosystem),
    ),
  ];
}

describe('Dependabot', () => {
  const config = parse(read('.github/dependabot.yml')) as { version: number; updates: DependabotUpdate[] };
  const without = (ecosystem: string) => ({
    ...config,
    updates: config.updates.filter((update) => update['package-ecosystem'] !== ecosystem),
  });

  it('updates the npm dependencies, the Dockerfile and compose images and the pinned actions weekly', () => {
    expect(missingEcosystems(config)).toEqual([]);
  });

  it('reports an ecosystem that is left out or looked for in the wrong place', () => {
    expect(missingEcosystems(without('docker'))).toEqual(['docker']);
    expect(missingEcosystems(without('docker-compose'))).toEqual(['docker-compose']);
    expect(missingEcosystems(without('github-actions'))).toEqual(['github-actions']);
    const elsewhere = structuredClone(config);
    elsewhere.updates[0]!.directory = '/app';
    expect(missingEcosystems(elsewhere)).toEqual(['npm']);
    expect(missingEcosystems({ ...config, version: 1 })).toEqual(['version 1, not 2']);
  });
});
