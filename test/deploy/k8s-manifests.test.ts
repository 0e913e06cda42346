// deploy/k8s, checked without a cluster: every overlay renders with `kubectl kustomize` (kubectl 1.33,
// kustomize 5.6); every built-in object is valid against the Kubernetes 1.30 schemas (kubernetes-models)
// and has no field those types lack (kubernetes-types, through tsc's excess-property checks); the
// CloudNativePG objects are valid against the 1.30.0 CRDs, closed so that a misspelled field fails; and
// the settings the workloads get are accepted by the service's own configuration loader. Each validator
// is shown rejecting broken objects. The policies (security, probes, images, …) are k8s-policy.test.ts.
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsPlugin from 'ajv-formats';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import {
  type Container,
  find,
  id,
  isCnpg,
  type K8sObject,
  OVERLAYS,
  type Overlay,
  type PodTemplate,
  podTemplates,
  renderOverlay,
  skipWithoutKubectl,
} from '../helpers/kubernetes.ts';
import { makeTempDir, REPO_ROOT, removeTempDir, run } from '../helpers/process.ts';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives as the module namespace.
const addFormats = addFormatsPlugin as unknown as typeof addFormatsPlugin.default;

const CRD_FILE = '/work/shared/data/cloudnative-pg-1.30.0-crds.yaml';
const NAMESPACES: Record<Overlay, string> = {
  development: 'branch-loans-dev',
  staging: 'branch-loans-staging',
  production: 'branch-loans',
};
const HOSTS: Record<Overlay, string> = {
  development: 'api.dev.branchloans.com',
  staging: 'api.staging.branchloans.com',
  production: 'api.branchloans.com',
};

const SKIP = skipWithoutKubectl('Kubernetes manifest tests');

describe.skipIf(SKIP)('kustomize', () => {
  const COMMON = [
    'Namespace',
    'ServiceAccount/branch-loans-api',
    'ConfigMap/branch-loans-api',
    'Service/branch-loans-api',
    'Deployment/branch-loans-api',
    'CronJob/branch-loans-purge-idempotency-keys',
    'PodDisruptionBudget/branch-loans-api',
    'HorizontalPodAutoscaler/branch-loans-api',
    'Job/branch-loans-migrate',
    'Ingress/branch-loans-api',
    'NetworkPolicy/allow-dns',
    'NetworkPolicy/branch-loans-api',
    'NetworkPolicy/branch-loans-db',
    'NetworkPolicy/branch-loans-db-pooler',
    'NetworkPolicy/branch-loans-migrate',
    'NetworkPolicy/branch-loans-purge',
    'NetworkPolicy/default-deny',
    'NetworkPolicy/redis',
    'Cluster/branch-loans-db',
    'Pooler/branch-loans-db-pooler-rw',
  ];
  const EXPECTED: Record<Overlay, string[]> = {
    // No object store in development: no backups.
    development: COMMON,
    staging: [...COMMON, 'ScheduledBackup/branch-loans-db-daily'],
    production: [...COMMON, 'ScheduledBackup/branch-loans-db-daily'],
  };
  // The generated ConfigMap's name ends in a hash of its content; the Namespace is named after the overlay.
  const shape = (object: K8sObject) =>
    object.kind === 'Namespace'
      ? 'Namespace'
      : id(object).replace(/^(ConfigMap\/branch-loans-api)-[a-z0-9]{10}$/, '$1');

  it.each(OVERLAYS)('renders %s into the expected objects, all in its namespace', async (overlay) => {
    const objects = await renderOverlay(overlay);
    expect(objects.map(shape).sort()).toEqual([...EXPECTED[overlay]].sort());
    expect(find(objects, 'Namespace', NAMESPACES[overlay]).metadata.name).toBe(NAMESPACES[overlay]);
    for (const object of objects.filter((object) => object.kind !== 'Namespace')) {
      expect(object.metadata.namespace, id(object)).toBe(NAMESPACES[overlay]);
    }
  });

  it.each(OVERLAYS)(
    '%s: every workload reads the generated ConfigMap by its hashed name',
    async (overlay) => {
      const objects = await renderOverlay(overlay);
      const configMap = objects.find((object) => object.kind === 'ConfigMap')!;
      for (const { owner, template } of podTemplates(objects)) {
        const refs = template.spec.containers.flatMap((c) =>
          (c.envFrom ?? []).map((e) => e.configMapRef?.name),
        );
        expect(refs, owner).toEqual([configMap.metadata.name]);
      }
    },
  );
});

// ---------------------------------------------------------------------------------------------------
// Built-in objects: kubernetes-models (the Kubernetes 1.30 OpenAPI schemas, compiled to validators).

type Validatable = new (data: never) => { validate(): void };
const MODELS: Record<string, Validatable> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'batch/v1/CronJob': CronJob,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/Ingress': Ingress,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};

/** The schema errors of a built-in object, or a complaint that no schema is known for its kind. */
function modelErrors(object: K8sObject): string | undefined {
  const Model = MODELS[`${object.apiVersion}/${object.kind}`];
  if (!Model) return `no Kubernetes schema known for ${object.apiVersion} ${object.kind}`;
  try {
    new Model(object as never).validate();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

describe.skipIf(SKIP)('built-in objects against the Kubernetes 1.30 schemas (kubernetes-models)', () => {
  it.each(OVERLAYS)('%s: every built-in object is valid', async (overlay) => {
    const builtIn = (await renderOverlay(overlay)).filter((object) => !isCnpg(object));
    expect(builtIn.length).toBeGreaterThan(0);
    for (const object of builtIn) expect(modelErrors(object), id(object)).toBeUndefined();
  });

  const BROKEN: [string, (objects: K8sObject[]) => K8sObject][] = [
    [
      'a Deployment without its selector',
      (objects) => {
        const deployment = find<{ spec: { selector?: unknown } }>(objects, 'Deployment', 'branch-loans-api');
        delete deployment.spec.selector;
        return deployment;
      },
    ],
    [
      'a container port that is not a number',
      (objects) => {
        const deployment = find<{ spec: { template: PodTemplate } }>(
          objects,
          'Deployment',
          'branch-loans-api',
        );
        (deployment.spec.template.spec.containers[0]!.ports![0] as { containerPort: unknown }).containerPort =
          'http';
        return deployment;
      },
    ],
    [
      'an autoscaler whose minimum is a word',
      (objects) => {
        const hpa = find<{ spec: { minReplicas: unknown } }>(
          objects,
          'HorizontalPodAutoscaler',
          'branch-loans-api',
        );
        hpa.spec.minReplicas = 'three';
        return hpa;
      },
    ],
    [
      'a CronJob without a job template',
      (objects) => {
        const cronJob = find<{ spec: { jobTemplate?: unknown } }>(
          objects,
          'CronJob',
          'branch-loans-purge-idempotency-keys',
        );
        delete cronJob.spec.jobTemplate;
        return cronJob;
      },
    ],
    [
      'a NetworkPolicy peer that is a string',
      (objects) => {
        const policy = find<{ spec: { ingress: { from: unknown }[] } }>(
          objects,
          'NetworkPolicy',
          'branch-loans-api',
        );
        policy.spec.ingress[0]!.from = 'ingress-nginx';
        return policy;
      },
    ],
    [
      'a kind no schema is known for',
      (objects) => ({ ...find(objects, 'Service', 'branch-loans-api'), apiVersion: 'v1', kind: 'Servise' }),
    ],
  ];

  it.each(BROKEN)('rejects %s', async (_name, breakIt) => {
    const broken = breakIt(await renderOverlay('production'));
    expect(modelErrors(broken)).toBeDefined();
  });
});

// ---------------------------------------------------------------------------------------------------
// Built-in objects: kubernetes-types under tsc. Each object becomes an object literal that `satisfies`
// its type, so tsc's excess-property check rejects any field the type lacks, at any depth.

/** `import('kubernetes-types/apps/v1').Deployment` for an apps/v1 Deployment. */
function typeName(object: K8sObject): string {
  const [group, version] = object.apiVersion.includes('/')
    ? object.apiVersion.split('/')
    : ['core', object.apiVersion];
  return `import('kubernetes-types/${group!.replace(/\.k8s\.io$/, '')}/${version}').${object.kind}`;
}

/** One line per object, so that a tsc error's line number names the object. */
const typedLines = (objects: K8sObject[]) =>
  objects.map(
    (object, index) => `export const o${index} = ${JSON.stringify(object)} satisfies ${typeName(object)};`,
  );

interface TscError {
  file: string;
  line: number;
  message: string;
}

/** tsc --noEmit --strict over one generated file per entry; the errors, by file and line. */
async function typecheck(files: Record<string, string[]>): Promise<TscError[]> {
  // Inside node_modules, so that `kubernetes-types` resolves from the generated files.
  const cache = join(REPO_ROOT, 'node_modules/.cache');
  await mkdir(cache, { recursive: true });
  const dir = await mkdtemp(join(cache, 'k8s-typecheck-'));
  try {
    for (const [name, lines] of Object.entries(files))
      await writeFile(join(dir, name), `${lines.join('\n')}\n`);
    // No @types and no DOM: the generated files need kubernetes-types alone (≈1 s instead of ≈10).
    const compilerOptions = {
      target: 'es2022',
      lib: ['es2022'],
      types: [],
      module: 'esnext',
      moduleResolution: 'bundler',
      skipLibCheck: true,
    };
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions, files: Object.keys(files) }),
    );
    const { code, stdout, stderr } = await run(
      join(REPO_ROOT, 'node_modules/.bin/tsc'),
      ['-p', dir, '--noEmit', '--strict', '--pretty', 'false'],
      { timeoutMs: 120_000 },
    );
    const errors = [...stdout.matchAll(/^(?:.*[\\/])?([\w.-]+\.ts)\((\d+),\d+\): error (.*)$/gm)].map(
      (match) => ({
        file: match[1]!,
        line: Number(match[2]),
        message: match[3]!,
      }),
    );
    if (code !== 0 && errors.length === 0) throw new Error(`tsc exited ${code}:\n${stdout}${stderr}`);
    return errors;
  } finally {
    await removeTempDir(dir);
  }
}

describe.skipIf(SKIP)('built-in objects against kubernetes-types 1.30 (tsc, no unknown fields)', () => {
  // Each variant adds one field that does not exist, at a different depth and in a different type.
  const BROKEN: [string, (objects: K8sObject[]) => K8sObject][] = [
    [
      'livenessprobe (lower-case p) on a container',
      (objects) => {
        const deployment = find<{ spec: { template: PodTemplate } }>(
          objects,
          'Deployment',
          'branch-loans-api',
        );
        const container = deployment.spec.template.spec.containers[0] as Container & Record<string, unknown>;
        container.livenessprobe = container.livenessProbe;
        return deployment;
      },
    ],
    [
      'runAsNonroot in a pod security context',
      (objects) => {
        const job = find<{ spec: { template: PodTemplate } }>(objects, 'Job', 'branch-loans-migrate');
        (job.spec.template.spec.securityContext as Record<string, unknown>).runAsNonroot = true;
        return job;
      },
    ],
    [
      'policyType (singular) on a NetworkPolicy',
      (objects) => {
        const policy = find<{ spec: Record<string, unknown> }>(objects, 'NetworkPolicy', 'default-deny');
        policy.spec.policyType = ['Ingress'];
        return policy;
      },
    ],
    [
      'ingressClass on an Ingress',
      (objects) => {
        const ingress = find<{ spec: Record<string, unknown> }>(objects, 'Ingress', 'branch-loans-api');
        ingress.spec.ingressClass = 'nginx';
        return ingress;
      },
    ],
    [
      'concurrency on a CronJob',
      (objects) => {
        const cronJob = find<{ spec: Record<string, unknown> }>(
          objects,
          'CronJob',
          'branch-loans-purge-idempotency-keys',
        );
        cronJob.spec.concurrency = 'Forbid';
        return cronJob;
      },
    ],
  ];

  it('accepts every overlay and rejects each misspelled field', { timeout: 120_000 }, async () => {
    const builtIn = (await Promise.all(OVERLAYS.map(renderOverlay)))
      .flat()
      .filter((object) => !isCnpg(object));
    const production = await renderOverlay('production');
    const broken = BROKEN.map(([, breakIt]) => breakIt(structuredClone(production)));
    const errors = await typecheck({ 'manifests.ts': typedLines(builtIn), 'broken.ts': typedLines(broken) });

    expect(errors.filter((error) => error.file === 'manifests.ts')).toEqual([]);
    const brokenErrors = errors.filter((error) => error.file === 'broken.ts');
    BROKEN.forEach(([name], index) => {
      const found = brokenErrors.filter((error) => error.line === index + 1);
      // TS2561 is the same error with a "did you mean" suggestion.
      expect(found.map((error) => error.message).join('\n'), name).toMatch(
        /TS(?:2353|2561): Object literal may only specify known properties/,
      );
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// CloudNativePG objects: the CRDs' openAPIV3Schema with ajv. The API server prunes unknown fields of a
// CRD object silently; closing every object the CRD describes turns a misspelling into an error here.

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  [keyword: string]: unknown;
}

/** `schema` with additionalProperties: false on every object that lists its properties and is not open on purpose. */
function closed(schema: Schema): Schema {
  const result: Schema = { ...schema };
  if (schema.properties) {
    result.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([name, property]) => [name, closed(property)]),
    );
    if (schema.additionalProperties === undefined && !schema['x-kubernetes-preserve-unknown-fields']) {
      result.additionalProperties = false;
    }
  }
  if (schema.items) result.items = closed(schema.items);
  if (typeof schema.additionalProperties === 'object')
    result.additionalProperties = closed(schema.additionalProperties);
  for (const keyword of ['allOf', 'anyOf', 'oneOf'] as const) {
    const list = schema[keyword] as Schema[] | undefined;
    if (list) result[keyword] = list.map(closed);
  }
  return result;
}

interface Crd {
  kind: string;
  spec: {
    group: string;
    names: { kind: string };
    versions: { name: string; schema: { openAPIV3Schema: Schema } }[];
  };
}

const crdValidators = new Map<string, ValidateFunction>();
let crds: Crd[] | undefined;

function crdValidator(apiVersion: string, kind: string): ValidateFunction {
  const key = `${apiVersion}/${kind}`;
  let validate = crdValidators.get(key);
  if (!validate) {
    const [group, version] = apiVersion.split('/');
    crds ??= parseAllDocuments(readFileSync(CRD_FILE, 'utf8')).map((document) => document.toJS() as Crd);
    const crd = crds.find((entry) => entry.spec.group === group && entry.spec.names.kind === kind);
    const schema = crd?.spec.versions.find((entry) => entry.name === version)?.schema.openAPIV3Schema;
    if (!schema) throw new Error(`no CRD for ${key} in ${CRD_FILE}`);
    // strict: false lets the x-kubernetes-* annotations through (CEL rules are not evaluated here).
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(ajv);
    validate = ajv.compile(closed(schema));
    crdValidators.set(key, validate);
  }
  return validate;
}

function crdErrors(object: K8sObject): string[] {
  const validate = crdValidator(object.apiVersion, object.kind);
  if (validate(object)) return [];
  return (validate.errors ?? []).map(
    (error) => `${error.instancePath || '/'} ${error.message} ${JSON.stringify(error.params)}`,
  );
}

describe.skipIf(SKIP)('CloudNativePG objects against the 1.30.0 CRDs (ajv, closed objects)', () => {
  it.each(OVERLAYS)('%s: the Cluster, Pooler and ScheduledBackup are valid', async (overlay) => {
    const cnpg = (await renderOverlay(overlay)).filter(isCnpg);
    expect(cnpg.map((object) => object.kind).sort()).toEqual(
      overlay === 'development' ? ['Cluster', 'Pooler'] : ['Cluster', 'Pooler', 'ScheduledBackup'],
    );
    for (const object of cnpg) expect(crdErrors(object), id(object)).toEqual([]);
  });

  type Spec = Record<string, Record<string, unknown>>;
  const BROKEN: [string, string, string, (spec: Spec) => void][] = [
    [
      'a misspelled top-level field',
      'Cluster',
      'branch-loans-db',
      (spec) => {
        (spec as Record<string, unknown>).instanses = spec.instances;
      },
    ],
    [
      'a misspelled nested field',
      'Cluster',
      'branch-loans-db',
      (spec) => {
        spec.affinity!.enablePodAntiAfinity = true;
      },
    ],
    [
      'fewer than one instance',
      'Cluster',
      'branch-loans-db',
      (spec) => {
        (spec as Record<string, unknown>).instances = 0;
      },
    ],
    [
      'backup credentials without a key',
      'Cluster',
      'branch-loans-db',
      (spec) => {
        const store = spec.backup!.barmanObjectStore as { s3Credentials: { accessKeyId: { key?: string } } };
        delete store.s3Credentials.accessKeyId.key;
      },
    ],
    [
      'a pool mode PgBouncer has but CloudNativePG refuses',
      'Pooler',
      'branch-loans-db-pooler-rw',
      (spec) => {
        spec.pgbouncer!.poolMode = 'statement';
      },
    ],
    [
      'a misspelled PgBouncer field',
      'Pooler',
      'branch-loans-db-pooler-rw',
      (spec) => {
        spec.pgbouncer!.pool_mode = 'transaction';
      },
    ],
    [
      'an unknown backup method',
      'ScheduledBackup',
      'branch-loans-db-daily',
      (spec) => {
        (spec as Record<string, unknown>).method = 'snapshot';
      },
    ],
  ];

  it.each(BROKEN)('rejects %s (%s)', async (_name, kind, name, breakIt) => {
    const object = find<{ spec: Spec }>(await renderOverlay('production'), kind, name);
    breakIt(object.spec);
    expect(crdErrors(object)).not.toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// The settings: what the ConfigMap says, and that the service's configuration loader accepts what each
// workload gets (ConfigMap, env, and stand-ins for the secret files at the paths the env names).

describe.skipIf(SKIP)('the workloads’ settings', () => {
  const configMapOf = (objects: K8sObject[]) =>
    (objects.find((object) => object.kind === 'ConfigMap') as K8sObject & { data: Record<string, string> })
      .data;

  it.each(OVERLAYS)('%s: the ConfigMap holds the non-secret settings', async (overlay) => {
    const data = configMapOf(await renderOverlay(overlay));
    expect(data).toMatchObject({
      APP_ENV: overlay,
      LOG_LEVEL: { development: 'debug', staging: 'info', production: 'warn' }[overlay],
      HOST: '0.0.0.0',
      PORT: '8000',
      TRUST_PROXY: '10.0.0.0/8',
      MIGRATE_ON_START: 'false',
      JOBS_IN_PROCESS: 'false',
      SHUTDOWN_DRAIN_DELAY_MS: '5000',
      RATE_LIMIT_ENABLED: 'true',
      AUTH_REQUIRED: 'true',
      PUBLIC_BASE_URL: `https://${HOSTS[overlay]}`,
    });
    expect(Number(data.DATABASE_POOL_MAX)).toBeGreaterThan(0);
  });

  it.each(OVERLAYS)('%s: PUBLIC_BASE_URL is the host the Ingress serves over TLS', async (overlay) => {
    const objects = await renderOverlay(overlay);
    const ingress = find<{ spec: { tls: { hosts: string[] }[]; rules: { host: string }[] } }>(
      objects,
      'Ingress',
      'branch-loans-api',
    );
    expect(ingress.spec.rules.map((rule) => rule.host)).toEqual([HOSTS[overlay]]);
    expect(ingress.spec.tls.flatMap((tls) => tls.hosts)).toEqual([HOSTS[overlay]]);
    expect(configMapOf(objects).PUBLIC_BASE_URL).toBe(`https://${HOSTS[overlay]}`);
  });

  // Stand-ins for the secret files, by file name; no password, so nothing here looks like a secret.
  const SECRET_FILES: Record<string, string> = {
    'database-url': 'postgres://branch@branch-loans-db-pooler-rw:5432/branch_loans',
    'database-read-url': 'postgres://branch@branch-loans-db-ro:5432/branch_loans',
    uri: 'postgresql://branch@branch-loans-db-rw.branch-loans:5432/branch_loans',
    'redis-url': 'redis://redis:6379',
  };
  const bootstrapKey = (objects: K8sObject[]) => {
    const tag = { development: 'dev', staging: 'staging', production: 'prod' }[configMapOf(objects).APP_ENV!];
    return `bl_${tag}_${'k'.repeat(43)}`;
  };

  it.each(OVERLAYS)('%s: the service accepts the settings of every container', async (overlay) => {
    const objects = await renderOverlay(overlay);
    const dir = await makeTempDir('branch-loans-k8s-settings-');
    try {
      for (const { owner, template } of podTemplates(objects)) {
        for (const container of template.spec.containers) {
          const env: Record<string, string> = { ...configMapOf(objects) };
          for (const variable of container.env ?? []) {
            if (variable.value === undefined) continue;
            if (!variable.name.endsWith('_FILE')) {
              env[variable.name] = variable.value;
              continue;
            }
            const file = variable.value.split('/').at(-1)!;
            const content = file === 'bootstrap-admin-key' ? bootstrapKey(objects) : SECRET_FILES[file];
            expect(content, `${owner}: a stand-in for ${variable.value}`).toBeDefined();
            const local = join(dir, `${container.name}-${file}`);
            await writeFile(local, content!);
            env[variable.name] = local;
          }
          const config = loadConfig(env);
          expect(config.env, owner).toBe(overlay);
          expect(config.databaseUrl, owner).toMatch(/^postgres(ql)?:\/\/branch@/);
          if (container.name === 'api') {
            expect(config).toMatchObject({
              host: '0.0.0.0',
              port: 8000,
              migrateOnStart: false,
              jobsInProcess: false,
              shutdownDrainDelayMs: 5000,
            });
            expect(config.databaseReadUrl).toBe(SECRET_FILES['database-read-url']);
            expect(config.rateLimit.redisUrl).toBe(SECRET_FILES['redis-url']);
          }
          if (container.name === 'migrate') expect(config.migrationDatabaseUrl).toBe(SECRET_FILES.uri);
        }
      }
    } finally {
      await removeTempDir(dir);
    }
  });
});
