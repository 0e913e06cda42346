// Policies on the rendered Kubernetes manifests (deploy/k8s, each overlay through `kubectl kustomize`):
// the restricted Pod Security profile on every pod template, probes on /liveness and /readiness, a grace
// period that outlasts the drain, pinned images, requests and limits everywhere, no secret values,
// NetworkPolicies that let through exactly the traffic the system needs, sizes per environment, an
// Ingress that serves TLS and hides /metrics, and pods that the Kubernetes scrape configuration finds.
// Every rule passes on every overlay and is shown to catch broken variants of the rendered objects.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  allContainers,
  type Container,
  find,
  id,
  K8S_DIR,
  type K8sObject,
  OVERLAYS,
  type Overlay,
  type PodSpec,
  type PodTemplate,
  podTemplates,
  renderOverlay,
  skipWithoutKubectl,
  type Volume,
} from '../helpers/kubernetes.ts';

type Rule = (objects: K8sObject[], overlay: Overlay) => string[];

const API = 'branch-loans-api';
const API_IMAGE = 'ghcr.io/branch-loans/api';

// ---------------------------------------------------------------------------------------------------
// Restricted Pod Security Standard (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
// plus what our image needs to run that way: a numeric user and a writable /tmp on a read-only root.

const SECCOMP_ALLOWED = ['RuntimeDefault', 'Localhost'];

function volumeOf(spec: PodSpec, name: string): Volume | undefined {
  return (spec.volumes ?? []).find((volume) => volume.name === name);
}

const restrictedProfile: Rule = (objects) =>
  podTemplates(objects).flatMap(({ owner, template }) => {
    const pod = template.spec;
    const podContext = pod.securityContext ?? {};
    const problems: string[] = [];
    for (const field of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
      if (pod[field]) problems.push(`${owner}: ${field} shares the node's namespaces`);
    }
    for (const volume of pod.volumes ?? []) {
      if (volume.hostPath) problems.push(`${owner}: volume ${volume.name} is a hostPath`);
    }
    for (const container of allContainers(pod)) {
      const where = `${owner} container ${container.name}`;
      const context = container.securityContext ?? {};
      if ((context.runAsNonRoot ?? podContext.runAsNonRoot) !== true)
        problems.push(`${where}: runAsNonRoot is not true`);
      const user = context.runAsUser ?? podContext.runAsUser;
      if (user === undefined) problems.push(`${where}: no numeric runAsUser (the image names its user)`);
      else if (user === 0) problems.push(`${where}: runs as uid 0`);
      const seccomp = context.seccompProfile?.type ?? podContext.seccompProfile?.type;
      if (!SECCOMP_ALLOWED.includes(seccomp ?? ''))
        problems.push(`${where}: seccomp profile ${seccomp ?? 'unset'}`);
      if (context.allowPrivilegeEscalation !== false)
        problems.push(`${where}: allowPrivilegeEscalation is not false`);
      if (context.privileged) problems.push(`${where}: privileged`);
      if (!context.capabilities?.drop?.includes('ALL'))
        problems.push(`${where}: does not drop ALL capabilities`);
      const added = (context.capabilities?.add ?? []).filter(
        (capability) => capability !== 'NET_BIND_SERVICE',
      );
      if (added.length > 0) problems.push(`${where}: adds capabilities ${added.join(', ')}`);
      if (context.readOnlyRootFilesystem !== true) problems.push(`${where}: the root filesystem is writable`);
      const tmp = (container.volumeMounts ?? []).find((mount) => mount.mountPath === '/tmp');
      if (!tmp || !volumeOf(pod, tmp.name)?.emptyDir) problems.push(`${where}: no emptyDir on /tmp`);
    }
    return problems;
  });

// ---------------------------------------------------------------------------------------------------
// Probes: liveness and startup on /liveness (never the database), readiness on /readiness, all on the
// port the API listens on.

const PROBES = {
  startupProbe: '/liveness',
  livenessProbe: '/liveness',
  readinessProbe: '/readiness',
} as const;

function apiContainer(objects: K8sObject[]): Container {
  const deployment = find<{ spec: { template: PodTemplate } }>(objects, 'Deployment', API);
  const container = deployment.spec.template.spec.containers.find((c) => c.name === 'api');
  if (!container) throw new Error(`Deployment/${API} has no container "api"`);
  return container;
}

function portNumber(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((entry) => entry.name === port)?.containerPort;
}

const probes: Rule = (objects) => {
  const container = apiContainer(objects);
  const listens = Number(configMapData(objects).PORT);
  const problems: string[] = [];
  for (const [probe, path] of Object.entries(PROBES) as [keyof typeof PROBES, string][]) {
    const httpGet = container[probe]?.httpGet;
    if (!httpGet) {
      problems.push(`${probe}: missing (or not an HTTP probe)`);
      continue;
    }
    if (httpGet.path !== path) problems.push(`${probe}: asks ${httpGet.path}, not ${path}`);
    const port = portNumber(container, httpGet.port);
    if (port !== listens) problems.push(`${probe}: port ${httpGet.port} is not the API's port ${listens}`);
  }
  return problems;
};

// ---------------------------------------------------------------------------------------------------
// Shutdown: after SIGTERM the service serves for SHUTDOWN_DRAIN_DELAY_MS, then drains for at most
// SHUTDOWN_TIMEOUT_MS (10 s unless set); the kubelet's SIGKILL must come later than both.

const KUBERNETES_DEFAULT_GRACE_S = 30;
const SERVICE_DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

function configMapData(objects: K8sObject[]): Record<string, string> {
  const configMap = objects.find(
    (object) => object.kind === 'ConfigMap' && object.metadata.name.startsWith(API),
  );
  return (configMap?.data as Record<string, string> | undefined) ?? {};
}

/** The variables a container gets from its ConfigMaps and its own env (plain values only). */
function environmentOf(objects: K8sObject[], container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const name = source.configMapRef?.name;
    const configMap = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name === name);
    Object.assign(env, (configMap?.data as Record<string, string> | undefined) ?? {});
  }
  for (const variable of container.env ?? [])
    if (variable.value !== undefined) env[variable.name] = variable.value;
  return env;
}

const drainTiming: Rule = (objects) => {
  const deployment = find<{ spec: { template: PodTemplate } }>(objects, 'Deployment', API);
  const env = environmentOf(objects, apiContainer(objects));
  if (env.SHUTDOWN_DRAIN_DELAY_MS === undefined) return ['SHUTDOWN_DRAIN_DELAY_MS is not set'];
  const drainMs = Number(env.SHUTDOWN_DRAIN_DELAY_MS);
  const timeoutMs = Number(env.SHUTDOWN_TIMEOUT_MS ?? SERVICE_DEFAULT_SHUTDOWN_TIMEOUT_MS);
  const grace = deployment.spec.template.spec.terminationGracePeriodSeconds ?? KUBERNETES_DEFAULT_GRACE_S;
  return grace > (drainMs + timeoutMs) / 1000
    ? []
    : [
        `terminationGracePeriodSeconds ${grace} does not outlast the drain (${drainMs} ms) plus the shutdown (${timeoutMs} ms)`,
      ];
};

// ---------------------------------------------------------------------------------------------------
// Images: every one tagged or pinned by digest, never `latest`; outside development an exact version or
// a digest; and the API, its migration and its jobs all run the same release.

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const EXACT_VERSION = /^v?\d+\.\d+\.\d+(?:[-+.][\w.-]+)?$/;

function parseImage(reference: string): { name: string; tag?: string; digest?: string } {
  const [withoutDigest, digest] = reference.split('@') as [string, string | undefined];
  const slash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.lastIndexOf(':');
  const tag = colon > slash ? withoutDigest.slice(colon + 1) : undefined;
  const name = colon > slash ? withoutDigest.slice(0, colon) : withoutDigest;
  return { name, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

/** Every image the overlay runs: workload containers and CloudNativePG's operands. */
function images(objects: K8sObject[]): { where: string; image: string | undefined }[] {
  const workloads = podTemplates(objects).flatMap(({ owner, template }) =>
    allContainers(template.spec).map((container) => ({
      where: `${owner} ${container.name}`,
      image: container.image,
    })),
  );
  const cnpg = objects.flatMap((object) => {
    const spec = object.spec as Record<string, unknown>;
    if (object.kind === 'Cluster')
      return [{ where: id(object), image: spec.imageName as string | undefined }];
    if (object.kind !== 'Pooler') return [];
    const pgbouncer = spec.pgbouncer as { image?: string } | undefined;
    const template = spec.template as PodTemplate | undefined;
    return [
      ...(pgbouncer?.image ? [{ where: `${id(object)} pgbouncer`, image: pgbouncer.image }] : []),
      ...(template?.spec.containers ?? [])
        .filter((container) => container.image !== undefined)
        .map((container) => ({ where: `${id(object)} ${container.name}`, image: container.image })),
    ];
  });
  return [...workloads, ...cnpg];
}

const pinnedImages: Rule = (objects, overlay) => {
  const problems: string[] = [];
  for (const { where, image } of images(objects)) {
    if (!image) {
      problems.push(`${where}: no image`);
      continue;
    }
    const { tag, digest } = parseImage(image);
    if (digest !== undefined && !DIGEST.test(digest))
      problems.push(`${where}: ${image} has a malformed digest`);
    else if (tag === undefined && digest === undefined)
      problems.push(`${where}: ${image} is untagged (latest)`);
    else if (tag === 'latest') problems.push(`${where}: ${image} is "latest"`);
    else if (overlay !== 'development' && digest === undefined && !EXACT_VERSION.test(tag!)) {
      problems.push(`${where}: ${image} is neither an exact version nor a digest`);
    }
  }
  const releases = new Set(
    images(objects)
      .filter(({ image }) => image !== undefined && parseImage(image).name === API_IMAGE)
      .map(({ image }) => image),
  );
  if (releases.size !== 1)
    problems.push(`the API's workloads run ${releases.size} releases: ${[...releases].join(', ')}`);
  return problems;
};

// ---------------------------------------------------------------------------------------------------
// Resources: CPU and memory requests and limits on every container (and on CloudNativePG's instances and
// poolers), requests within limits.

const SUFFIXES: Record<string, number> = {
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** A Kubernetes quantity ("250m", "1", "512Mi", "2G") as a number. */
function quantity(value: string | number): number {
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(value));
  if (!match) throw new Error(`not a quantity: ${value}`);
  return Number(match[1]) * (match[2] ? SUFFIXES[match[2]]! : 1);
}

function resourceProblems(where: string, resources: Container['resources']): string[] {
  const problems: string[] = [];
  for (const resource of ['cpu', 'memory']) {
    const request = resources?.requests?.[resource];
    const limit = resources?.limits?.[resource];
    if (request === undefined) problems.push(`${where}: no ${resource} request`);
    if (limit === undefined) problems.push(`${where}: no ${resource} limit`);
    if (request !== undefined && limit !== undefined && quantity(request) > quantity(limit)) {
      problems.push(`${where}: ${resource} request ${request} exceeds its limit ${limit}`);
    }
  }
  return problems;
}

const resources: Rule = (objects) => [
  ...podTemplates(objects).flatMap(({ owner, template }) =>
    allContainers(template.spec).flatMap((container) =>
      resourceProblems(`${owner} ${container.name}`, container.resources),
    ),
  ),
  ...objects.flatMap((object) => {
    const spec = object.spec as Record<string, unknown>;
    if (object.kind === 'Cluster')
      return resourceProblems(id(object), spec.resources as Container['resources']);
    if (object.kind !== 'Pooler') return [];
    const containers = (spec.template as PodTemplate | undefined)?.spec.containers ?? [];
    if (containers.length === 0)
      return [`${id(object)}: no pod template with the pgbouncer container's resources`];
    return containers.flatMap((container) =>
      resourceProblems(`${id(object)} ${container.name}`, container.resources),
    );
  }),
];

// ---------------------------------------------------------------------------------------------------
// No secret values: no Secret objects, nothing secret in ConfigMaps or in env values; a secret reaches a
// container only as a file of a mounted Secret, named by a *_FILE variable.

const SECRET_NAME =
  /(PASSWORD|SECRET|TOKEN|_KEY$|^BOOTSTRAP_ADMIN_KEY$|(^|_)DATABASE(_READ)?_URL$|^REDIS_URL$)/;
const CREDENTIALS_IN_URL = /[a-z][\w+.-]*:\/\/[^\s/@:]*:[^\s/@]+@/i;

function secretMountPaths(spec: PodSpec, container: Container): string[] {
  return (container.volumeMounts ?? []).flatMap((mount) => {
    const volume = volumeOf(spec, mount.name);
    const fromSecret = volume?.secret || volume?.projected?.sources?.every((source) => source.secret);
    return fromSecret ? [mount.mountPath] : [];
  });
}

const noSecretValues: Rule = (objects) => {
  const problems = objects
    .filter((object) => object.kind === 'Secret')
    .map((object) => `${id(object)}: a Secret in the repository (create it in the cluster instead)`);
  for (const object of objects.filter((entry) => entry.kind === 'ConfigMap')) {
    for (const [key, value] of Object.entries((object.data as Record<string, string> | undefined) ?? {})) {
      if (SECRET_NAME.test(key)) problems.push(`${id(object)}: ${key} is a secret in a ConfigMap`);
      if (CREDENTIALS_IN_URL.test(value)) problems.push(`${id(object)}: ${key} holds credentials in a URL`);
    }
  }
  for (const { owner, template } of podTemplates(objects)) {
    for (const container of allContainers(template.spec)) {
      const where = `${owner} container ${container.name}`;
      const mounts = secretMountPaths(template.spec, container);
      for (const source of container.envFrom ?? []) {
        if (source.secretRef) problems.push(`${where}: the variables of Secret ${source.secretRef.name}`);
      }
      for (const variable of container.env ?? []) {
        if (variable.valueFrom?.secretKeyRef)
          problems.push(`${where}: ${variable.name} from a Secret, not a file`);
        if (variable.value === undefined) continue;
        if (variable.name.endsWith('_FILE')) {
          if (!mounts.some((path) => variable.value!.startsWith(`${path}/`))) {
            problems.push(`${where}: ${variable.name}=${variable.value} is not in a mounted Secret`);
          }
        } else if (SECRET_NAME.test(variable.name) || CREDENTIALS_IN_URL.test(variable.value)) {
          problems.push(`${where}: ${variable.name} has a secret value`);
        }
      }
    }
  }
  return problems;
};

// ---------------------------------------------------------------------------------------------------
// NetworkPolicies, evaluated: a default deny both ways, then every flow the system needs is allowed and
// every flow it must not have is denied. A flow needs the source's egress and the destination's ingress.

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}
interface Peer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}
interface PolicyPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}
interface NetworkPolicySpec {
  podSelector: LabelSelector;
  policyTypes?: string[];
  ingress?: { from?: Peer[]; ports?: PolicyPort[] }[];
  egress?: { to?: Peer[]; ports?: PolicyPort[] }[];
}
interface Pod {
  namespace: string;
  labels: Record<string, string>;
  ports?: Record<string, number>;
}
type Endpoint = Pod | { ip: string };

function selects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  return (
    byLabels &&
    (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
      switch (operator) {
        case 'In':
          return key in labels && values.includes(labels[key]!);
        case 'NotIn':
          return !(key in labels) || !values.includes(labels[key]!);
        case 'Exists':
          return key in labels;
        case 'DoesNotExist':
          return !(key in labels);
        default:
          throw new Error(`unknown selector operator ${operator}`);
      }
    })
  );
}

function ipv4(address: string): number {
  return address.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
}
function inCidr(address: string, cidr: string): boolean {
  const [network, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(address) / size) === Math.floor(ipv4(network) / size);
}

// ipBlock peers are taken to match addresses outside the cluster only, as the API documents them.
function peerMatches(peers: Peer[] | undefined, policyNamespace: string, endpoint: Endpoint): boolean {
  if (!peers || peers.length === 0) return true;
  return peers.some((peer) => {
    if (peer.ipBlock) {
      return (
        'ip' in endpoint &&
        inCidr(endpoint.ip, peer.ipBlock.cidr) &&
        !(peer.ipBlock.except ?? []).some((cidr) => inCidr(endpoint.ip, cidr))
      );
    }
    if ('ip' in endpoint) return false;
    const namespaceOk = peer.namespaceSelector
      ? selects(peer.namespaceSelector, { 'kubernetes.io/metadata.name': endpoint.namespace })
      : endpoint.namespace === policyNamespace;
    return namespaceOk && selects(peer.podSelector, endpoint.labels);
  });
}

function portMatches(ports: PolicyPort[] | undefined, destination: Endpoint, port: number, protocol: string) {
  if (!ports || ports.length === 0) return true;
  return ports.some((entry) => {
    if ((entry.protocol ?? 'TCP') !== protocol) return false;
    if (entry.port === undefined) return true;
    const number =
      typeof entry.port === 'number'
        ? entry.port
        : 'ports' in destination
          ? destination.ports?.[entry.port]
          : undefined;
    if (number === undefined) return false;
    return entry.endPort === undefined ? number === port : number <= port && port <= entry.endPort;
  });
}

const typesOf = (spec: NetworkPolicySpec) =>
  spec.policyTypes ?? (spec.egress ? ['Ingress', 'Egress'] : ['Ingress']);

interface Policy {
  namespace: string;
  spec: NetworkPolicySpec;
}

/** Whether NetworkPolicies let `from` open a connection to `to` on `port`. */
function allowed(policies: Policy[], from: Endpoint, to: Endpoint, port: number, protocol = 'TCP'): boolean {
  const governing = (pod: Endpoint, type: string) =>
    'ip' in pod
      ? []
      : policies.filter(
          (policy) =>
            policy.namespace === pod.namespace &&
            typesOf(policy.spec).includes(type) &&
            selects(policy.spec.podSelector, pod.labels),
        );
  const egress = governing(from, 'Egress');
  const egressOk =
    egress.length === 0 ||
    egress.some((policy) =>
      (policy.spec.egress ?? []).some(
        (rule) => peerMatches(rule.to, policy.namespace, to) && portMatches(rule.ports, to, port, protocol),
      ),
    );
  const ingress = governing(to, 'Ingress');
  const ingressOk =
    ingress.length === 0 ||
    ingress.some((policy) =>
      (policy.spec.ingress ?? []).some(
        (rule) =>
          peerMatches(rule.from, policy.namespace, from) && portMatches(rule.ports, to, port, protocol),
      ),
    );
  return egressOk && ingressOk;
}

type Flow = [description: string, from: Endpoint, to: Endpoint, port: number, protocol?: string];

/** The pods of the overlay (from its objects and CloudNativePG's labelling) and the peers around them. */
function flows(objects: K8sObject[]): { needed: Flow[]; forbidden: Flow[] } {
  const namespace = find(objects, 'Deployment', API).metadata.namespace!;
  const podOf = (kind: string, name: string, ports?: Record<string, number>): Pod => {
    const template = podTemplates([find(objects, kind, name)])[0]!.template;
    return { namespace, labels: template.metadata?.labels ?? {}, ...(ports && { ports }) };
  };
  const api = podOf('Deployment', API, { http: 8000 });
  const migrate = podOf('Job', 'branch-loans-migrate');
  const purge = podOf('CronJob', 'branch-loans-purge-idempotency-keys');
  const cluster = find(objects, 'Cluster', 'branch-loans-db').metadata.name;
  const poolerName = objects.find((object) => object.kind === 'Pooler')!.metadata.name;
  const instance = (role: string): Pod => ({
    namespace,
    labels: { 'cnpg.io/cluster': cluster, 'cnpg.io/podRole': 'instance', 'cnpg.io/instanceRole': role },
  });
  const primary = instance('primary');
  const replica = instance('replica');
  const pooler: Pod = {
    namespace,
    labels: { 'cnpg.io/cluster': cluster, 'cnpg.io/podRole': 'pooler', 'cnpg.io/poolerName': poolerName },
  };
  const redis: Pod = { namespace, labels: { 'app.kubernetes.io/name': 'redis' } };
  const elsewhere = (ns: string, labels: Record<string, string>): Pod => ({ namespace: ns, labels });
  const ingressController = elsewhere('ingress-nginx', { 'app.kubernetes.io/name': 'ingress-nginx' });
  const prometheus = elsewhere('monitoring', { 'app.kubernetes.io/name': 'prometheus' });
  const operator = elsewhere('cnpg-system', { 'app.kubernetes.io/name': 'cloudnative-pg' });
  const dns = elsewhere('kube-system', { 'k8s-app': 'kube-dns' });
  const stranger = elsewhere('default', { app: 'curl' });
  const debugPod = elsewhere(namespace, { app: 'debug' });
  const kubernetesApi = { ip: '10.96.0.1' };
  const objectStore = { ip: '52.216.0.10' };
  const internet = { ip: '203.0.113.10' };
  return {
    needed: [
      ['the ingress controller → api:8000', ingressController, api, 8000],
      ['Prometheus → api:8000 (/metrics)', prometheus, api, 8000],
      ['api → the pooler:5432', api, pooler, 5432],
      ['api → a replica:5432 (the -ro service)', api, replica, 5432],
      ['api → Redis:6379', api, redis, 6379],
      ['api → DNS over UDP', api, dns, 53, 'UDP'],
      ['api → DNS over TCP', api, dns, 53, 'TCP'],
      ['migration → the primary:5432 (the -rw service)', migrate, primary, 5432],
      ['migration → DNS', migrate, dns, 53, 'UDP'],
      ['purge → the pooler:5432', purge, pooler, 5432],
      ['purge → DNS', purge, dns, 53, 'UDP'],
      ['pooler → the primary:5432', pooler, primary, 5432],
      ['pooler → the Kubernetes API:443', pooler, kubernetesApi, 443],
      ['replica → the primary:5432 (streaming replication)', replica, primary, 5432],
      ['primary → the Kubernetes API:443', primary, kubernetesApi, 443],
      ['primary → the object store:443 (WAL archive, backups)', primary, objectStore, 443],
      ['the operator → an instance:8000', operator, replica, 8000],
      ['the operator → the primary:5432', operator, primary, 5432],
      ['Prometheus → an instance:9187', prometheus, primary, 9187],
      ['Prometheus → the pooler:9127', prometheus, pooler, 9127],
    ],
    forbidden: [
      ['a pod of another namespace → api:8000', stranger, api, 8000],
      ['another pod of the namespace → api:8000', debugPod, api, 8000],
      ['the ingress controller → api:9229', ingressController, api, 9229],
      ['api → the primary:5432 directly (writes go through the pooler)', api, primary, 5432],
      ['api → the internet:443', api, internet, 443],
      ['api → the Kubernetes API:443', api, kubernetesApi, 443],
      ['purge → Redis:6379', purge, redis, 6379],
      ['another pod of the namespace → Redis:6379', debugPod, redis, 6379],
      ['migration → the internet:443', migrate, internet, 443],
      ['a pod of another namespace → the primary:5432', stranger, primary, 5432],
      ['the ingress controller → the pooler:5432', ingressController, pooler, 5432],
      ['another pod of the namespace → the pooler:5432', debugPod, pooler, 5432],
    ],
  };
}

const networkPolicies: Rule = (objects) => {
  const policies: Policy[] = objects
    .filter((object) => object.kind === 'NetworkPolicy')
    .map((object) => ({ namespace: object.metadata.namespace!, spec: object.spec as NetworkPolicySpec }));
  const problems: string[] = [];
  const empty = (selector: LabelSelector) =>
    Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0;
  const defaultDeny = policies.some(
    ({ spec }) =>
      empty(spec.podSelector) &&
      ['Ingress', 'Egress'].every((type) => typesOf(spec).includes(type)) &&
      (spec.ingress ?? []).length === 0 &&
      (spec.egress ?? []).length === 0,
  );
  if (!defaultDeny) problems.push('no default deny of both ingress and egress for every pod');
  const { needed, forbidden } = flows(objects);
  for (const [description, from, to, port, protocol] of needed) {
    if (!allowed(policies, from, to, port, protocol)) problems.push(`blocked: ${description}`);
  }
  for (const [description, from, to, port, protocol] of forbidden) {
    if (allowed(policies, from, to, port, protocol)) problems.push(`allowed: ${description}`);
  }
  return problems;
};

// ---------------------------------------------------------------------------------------------------
// Sizes per environment: one API pod in development, two in staging, three or more in production where
// two must survive a drain; a disruption budget never blocks every drain.

const MIN_REPLICAS: Record<Overlay, [min: number, max: number]> = {
  development: [1, 1],
  staging: [2, 2],
  production: [3, Number.POSITIVE_INFINITY],
};

const sizes: Rule = (objects, overlay) => {
  const hpa = find<{ spec: { minReplicas: number; maxReplicas: number } }>(
    objects,
    'HorizontalPodAutoscaler',
    API,
  );
  const pdb = find<{ spec: { minAvailable?: number; maxUnavailable?: number } }>(
    objects,
    'PodDisruptionBudget',
    API,
  );
  const deployment = find<{ spec: { replicas?: number } }>(objects, 'Deployment', API);
  const problems: string[] = [];
  const [low, high] = MIN_REPLICAS[overlay];
  const min = hpa.spec.minReplicas;
  if (min < low || min > high) problems.push(`the autoscaler's minimum is ${min}, not within ${low}–${high}`);
  if (hpa.spec.maxReplicas < min)
    problems.push(`the autoscaler's maximum ${hpa.spec.maxReplicas} is below its minimum`);
  if (deployment.spec.replicas !== undefined)
    problems.push('the Deployment sets replicas, which fights the autoscaler');
  const { minAvailable, maxUnavailable } = pdb.spec;
  if (minAvailable !== undefined && minAvailable >= min) {
    problems.push(
      `the disruption budget keeps ${minAvailable} of ${min} pods: no node could ever be drained`,
    );
  }
  if (maxUnavailable !== undefined && maxUnavailable < 1)
    problems.push('the disruption budget allows no disruption');
  if (overlay === 'production' && minAvailable !== 2)
    problems.push(`production keeps ${minAvailable} pods, not 2`);
  return problems;
};

// ---------------------------------------------------------------------------------------------------
// The Ingress: class nginx, TLS with branchloans-tls for every host it serves, a branchloans.com host, the
// API's Service behind every path, and no path that reaches /metrics.

interface IngressSpec {
  ingressClassName?: string;
  tls?: { hosts?: string[]; secretName?: string }[];
  rules?: {
    host?: string;
    http?: {
      paths: {
        path?: string;
        pathType: string;
        backend: { service?: { name: string; port: { name?: string; number?: number } } };
      }[];
    };
  }[];
}

function pathReaches(path: { path?: string; pathType: string }, target: string): boolean {
  const value = path.path ?? '/';
  if (path.pathType === 'Exact') return value === target;
  const prefix = value.replace(/\/+$/, '');
  return prefix === '' || target === prefix || target.startsWith(`${prefix}/`);
}

const ingressRule: Rule = (objects) => {
  const ingress = find<{ spec: IngressSpec }>(objects, 'Ingress', API).spec;
  const service = find<{ spec: { ports: { name?: string; port: number }[] } }>(objects, 'Service', API);
  const problems: string[] = [];
  if (ingress.ingressClassName !== 'nginx')
    problems.push(`ingress class ${ingress.ingressClassName ?? 'unset'}`);
  const tlsHosts = new Set((ingress.tls ?? []).flatMap((tls) => tls.hosts ?? []));
  for (const tls of ingress.tls ?? []) {
    if (tls.secretName !== 'branchloans-tls') problems.push(`TLS secret ${tls.secretName ?? 'unset'}`);
  }
  for (const rule of ingress.rules ?? []) {
    if (!rule.host?.endsWith('.branchloans.com'))
      problems.push(`host ${rule.host ?? '(any)'} outside branchloans.com`);
    if (!rule.host || !tlsHosts.has(rule.host))
      problems.push(`host ${rule.host ?? '(any)'} is served without TLS`);
    for (const path of rule.http?.paths ?? []) {
      if (path.pathType === 'ImplementationSpecific')
        problems.push(`${path.path}: ImplementationSpecific path`);
      if (['/metrics', '/metrics/'].some((target) => pathReaches(path, target))) {
        problems.push(`${path.pathType} ${path.path} exposes /metrics`);
      }
      const backend = path.backend.service;
      const port = service.spec.ports.find(
        (entry) => entry.name === backend?.port.name || entry.port === backend?.port.number,
      );
      if (backend?.name !== API || !port) problems.push(`${path.path}: not the API's Service port`);
    }
  }
  if ((ingress.rules ?? []).length === 0) problems.push('no rules');
  return problems;
};

// ---------------------------------------------------------------------------------------------------
// Prometheus: deploy/k8s/prometheus-scrape.yml's relabelling, applied to each pod template, keeps the API
// pods at <pod IP>:8000/metrics and drops the Jobs' pods.

const SCRAPE_CONFIG = join(K8S_DIR, 'prometheus-scrape.yml');

interface Relabel {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  action?: string;
  target_label?: string;
  replacement?: string;
}

function relabel(labels: Record<string, string>, configs: Relabel[]): Record<string, string> | undefined {
  const result = { ...labels };
  for (const config of configs) {
    const value = (config.source_labels ?? [])
      .map((name) => result[name] ?? '')
      .join(config.separator ?? ';');
    const match = new RegExp(`^(?:${config.regex ?? '(.*)'})$`).exec(value);
    switch (config.action ?? 'replace') {
      case 'keep':
        if (!match) return undefined;
        break;
      case 'drop':
        if (match) return undefined;
        break;
      case 'replace':
        if (match) {
          result[config.target_label!] = (config.replacement ?? '$1').replace(
            /\$(\d+)/g,
            (_, n) => match[Number(n)] ?? '',
          );
        }
        break;
      default:
        throw new Error(`relabel action ${config.action} is not simulated here`);
    }
  }
  return result;
}

const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, '_');

/** The target Prometheus makes of a running pod of `template` (IP 10.0.0.7), or undefined if it drops it. */
function scrapeTarget(template: PodTemplate, namespace: string): Record<string, string> | undefined {
  const config = parse(readFileSync(SCRAPE_CONFIG, 'utf8')) as {
    scrape_configs: { metrics_path?: string; relabel_configs: Relabel[] }[];
  };
  const job = config.scrape_configs[0]!;
  const meta: Record<string, string> = {
    __address__: '10.0.0.7',
    __metrics_path__: job.metrics_path ?? '/metrics',
    __meta_kubernetes_namespace: namespace,
    __meta_kubernetes_pod_name: 'pod-0',
    __meta_kubernetes_pod_ip: '10.0.0.7',
    __meta_kubernetes_pod_phase: 'Running',
  };
  for (const [name, value] of Object.entries(template.metadata?.labels ?? {})) {
    meta[`__meta_kubernetes_pod_label_${sanitize(name)}`] = value;
  }
  for (const [name, value] of Object.entries(template.metadata?.annotations ?? {})) {
    meta[`__meta_kubernetes_pod_annotation_${sanitize(name)}`] = value;
  }
  return relabel(meta, job.relabel_configs);
}

const scrapedByPrometheus: Rule = (objects) => {
  const problems: string[] = [];
  const namespace = find(objects, 'Deployment', API).metadata.namespace!;
  for (const { owner, template } of podTemplates(objects)) {
    const target = scrapeTarget(template, namespace);
    if (owner === `Deployment/${API}`) {
      const port = Number(configMapData(objects).PORT);
      if (!target) problems.push(`${owner}: dropped by the scrape configuration`);
      else if (target.__address__ !== `10.0.0.7:${port}` || target.__metrics_path__ !== '/metrics') {
        problems.push(
          `${owner}: scraped at ${target.__address__}${target.__metrics_path__}, not 10.0.0.7:${port}/metrics`,
        );
      }
    } else if (target) {
      problems.push(`${owner}: scraped as if it were the API`);
    }
  }
  return problems;
};

// ---------------------------------------------------------------------------------------------------

const RULES = {
  'the restricted Pod Security profile on every pod template': restrictedProfile,
  'probes on /liveness (liveness, startup) and /readiness (readiness)': probes,
  'a grace period longer than the drain plus the shutdown timeout': drainTiming,
  'pinned images, never latest, one API release': pinnedImages,
  'requests and limits on every container': resources,
  'no secret values, secrets only as mounted files': noSecretValues,
  'NetworkPolicies: default deny, exactly the needed flows': networkPolicies,
  'replicas and disruption budgets per environment': sizes,
  'an Ingress with TLS for branchloans.com that hides /metrics': ingressRule,
  'API pods found by the Kubernetes scrape configuration, Jobs not': scrapedByPrometheus,
} satisfies Record<string, Rule>;
type RuleName = keyof typeof RULES;

// Broken variants: each mutates the rendered objects of one overlay in one respect.
type Mutation = (objects: K8sObject[]) => void;

const deploymentSpec = (objects: K8sObject[]) =>
  find<{ spec: { template: PodTemplate; replicas?: number } }>(objects, 'Deployment', API).spec;
const podOf = (objects: K8sObject[], kind: 'Deployment' | 'Job' | 'CronJob') =>
  podTemplates(objects).find(({ owner }) => owner.startsWith(`${kind}/`))!.template.spec;
const firstContainer = (objects: K8sObject[], kind: 'Deployment' | 'Job' | 'CronJob') =>
  podOf(objects, kind).containers[0]!;
const policySpec = (objects: K8sObject[], name: string) =>
  find<{ spec: NetworkPolicySpec }>(objects, 'NetworkPolicy', name).spec;
const withoutObject = (objects: K8sObject[], kind: string, name: string) => {
  objects.splice(objects.indexOf(find(objects, kind, name)), 1);
};
const configMap = (objects: K8sObject[]) =>
  objects.find((object) => object.kind === 'ConfigMap') as K8sObject & { data: Record<string, string> };

const BROKEN: Record<RuleName, [string, Overlay, Mutation][]> = {
  'the restricted Pod Security profile on every pod template': [
    [
      'the Job may run as root',
      'production',
      (o) => {
        delete podOf(o, 'Job').securityContext!.runAsNonRoot;
        delete firstContainer(o, 'Job').securityContext!.runAsNonRoot;
      },
    ],
    [
      'the CronJob may escalate',
      'staging',
      (o) => {
        firstContainer(o, 'CronJob').securityContext!.allowPrivilegeEscalation = true;
      },
    ],
    [
      'the API keeps NET_RAW',
      'production',
      (o) => {
        firstContainer(o, 'Deployment').securityContext!.capabilities = { drop: ['NET_RAW'] };
      },
    ],
    [
      'the API without seccomp',
      'development',
      (o) => {
        podOf(o, 'Deployment').securityContext!.seccompProfile = { type: 'Unconfined' };
      },
    ],
    [
      'a writable root filesystem',
      'production',
      (o) => {
        firstContainer(o, 'Job').securityContext!.readOnlyRootFilesystem = false;
      },
    ],
    [
      'no /tmp',
      'production',
      (o) => {
        firstContainer(o, 'CronJob').volumeMounts = [];
      },
    ],
    [
      'uid 0',
      'production',
      (o) => {
        firstContainer(o, 'Deployment').securityContext!.runAsUser = 0;
      },
    ],
    ['no numeric user', 'production', (o) => void delete podOf(o, 'Job').securityContext!.runAsUser],
    [
      'the host network',
      'production',
      (o) => {
        podOf(o, 'Deployment').hostNetwork = true;
      },
    ],
    [
      'an init container without a security context',
      'production',
      (o) => {
        podOf(o, 'Deployment').initContainers = [{ name: 'wait', image: `${API_IMAGE}:0.1.0` }];
      },
    ],
    [
      'a hostPath volume',
      'production',
      (o) =>
        void podOf(o, 'CronJob').volumes!.push({
          name: 'docker',
          hostPath: { path: '/var/run/docker.sock' },
        }),
    ],
  ],
  'probes on /liveness (liveness, startup) and /readiness (readiness)': [
    ['no readiness probe', 'production', (o) => void delete firstContainer(o, 'Deployment').readinessProbe],
    ['no startup probe', 'staging', (o) => void delete firstContainer(o, 'Deployment').startupProbe],
    [
      'liveness on /health (the database)',
      'production',
      (o) => {
        firstContainer(o, 'Deployment').livenessProbe!.httpGet!.path = '/health';
      },
    ],
    [
      'readiness on /liveness',
      'development',
      (o) => {
        firstContainer(o, 'Deployment').readinessProbe!.httpGet!.path = '/liveness';
      },
    ],
    [
      'a port the API does not listen on',
      'production',
      (o) => {
        firstContainer(o, 'Deployment').readinessProbe!.httpGet!.port = 'metrics';
      },
    ],
    [
      'a TCP liveness probe',
      'production',
      (o) => {
        firstContainer(o, 'Deployment').livenessProbe = { tcpSocket: { port: 8000 } };
      },
    ],
  ],
  'a grace period longer than the drain plus the shutdown timeout': [
    [
      'a grace period equal to the drain',
      'production',
      (o) => {
        deploymentSpec(o).template.spec.terminationGracePeriodSeconds = 15;
      },
    ],
    [
      'a longer drain delay',
      'production',
      (o) => {
        configMap(o).data.SHUTDOWN_DRAIN_DELAY_MS = '25000';
      },
    ],
    [
      'a longer shutdown timeout on the container',
      'staging',
      (o) => void firstContainer(o, 'Deployment').env!.push({ name: 'SHUTDOWN_TIMEOUT_MS', value: '30000' }),
    ],
    [
      'the default grace period with a 20 s drain',
      'development',
      (o) => {
        delete deploymentSpec(o).template.spec.terminationGracePeriodSeconds;
        configMap(o).data.SHUTDOWN_DRAIN_DELAY_MS = '20000';
      },
    ],
    [
      'no drain delay',
      'production',
      (o) => {
        delete configMap(o).data.SHUTDOWN_DRAIN_DELAY_MS;
      },
    ],
  ],
  'pinned images, never latest, one API release': [
    [
      'latest',
      'production',
      (o) => {
        firstContainer(o, 'Deployment').image = `${API_IMAGE}:latest`;
      },
    ],
    [
      'latest in development',
      'development',
      (o) => {
        firstContainer(o, 'Deployment').image = `${API_IMAGE}:latest`;
      },
    ],
    [
      'untagged',
      'staging',
      (o) => {
        firstContainer(o, 'Job').image = API_IMAGE;
      },
    ],
    [
      'a branch name in production',
      'production',
      (o) => {
        firstContainer(o, 'CronJob').image = `${API_IMAGE}:main`;
      },
    ],
    [
      'a malformed digest',
      'production',
      (o) => {
        firstContainer(o, 'Deployment').image = `${API_IMAGE}@sha256:abc`;
      },
    ],
    [
      'PostgreSQL by its major version only',
      'production',
      (o) => {
        (find(o, 'Cluster', 'branch-loans-db').spec as Record<string, unknown>).imageName =
          'ghcr.io/cloudnative-pg/postgresql:17';
      },
    ],
    [
      'the migration of another release',
      'production',
      (o) => {
        firstContainer(o, 'Job').image = `${API_IMAGE}:0.0.9`;
      },
    ],
  ],
  'requests and limits on every container': [
    ['the Job without limits', 'production', (o) => void delete firstContainer(o, 'Job').resources!.limits],
    [
      'the API without a memory request',
      'staging',
      (o) => void delete firstContainer(o, 'Deployment').resources!.requests!.memory,
    ],
    [
      'the CronJob requesting more than its limit',
      'production',
      (o) => {
        firstContainer(o, 'CronJob').resources!.requests!.cpu = '2';
      },
    ],
    [
      'PostgreSQL without resources',
      'production',
      (o) => void delete (find(o, 'Cluster', 'branch-loans-db').spec as Record<string, unknown>).resources,
    ],
    [
      'PgBouncer without resources',
      'development',
      (o) =>
        void delete (find(o, 'Pooler', 'branch-loans-db-pooler-rw').spec as Record<string, unknown>).template,
    ],
  ],
  'no secret values, secrets only as mounted files': [
    [
      'a Secret with data',
      'production',
      (o) =>
        void o.push({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'branch-loans-api', namespace: 'branch-loans' },
          data: { 'redis-url': Buffer.from('redis://redis:6379').toString('base64') },
        }),
    ],
    [
      'a database URL with its password in the ConfigMap',
      'production',
      (o) => {
        configMap(o).data.PUBLIC_BASE_URL = ['postgres://branch', 'hunter2hunter2@db/branch_loans'].join(':');
      },
    ],
    [
      'DATABASE_URL in the ConfigMap',
      'staging',
      (o) => {
        configMap(o).data.DATABASE_URL = 'postgres://branch@db/branch_loans';
      },
    ],
    [
      'REDIS_URL as a plain variable',
      'production',
      (o) =>
        void firstContainer(o, 'Deployment').env!.push({ name: 'REDIS_URL', value: 'redis://redis:6379' }),
    ],
    [
      'a secret file outside any mounted Secret',
      'production',
      (o) => {
        firstContainer(o, 'Deployment').env!.find((v) => v.name === 'DATABASE_URL_FILE')!.value =
          '/tmp/database-url';
      },
    ],
    [
      'a Secret as variables',
      'development',
      (o) => void firstContainer(o, 'CronJob').envFrom!.push({ secretRef: { name: 'branch-loans-api' } }),
    ],
    [
      'a variable from a secretKeyRef',
      'production',
      (o) =>
        void firstContainer(o, 'Job').env!.push({
          name: 'DATABASE_PASSWORD',
          valueFrom: { secretKeyRef: { name: 'branch-loans-db-app', key: 'password' } },
        }),
    ],
  ],
  'NetworkPolicies: default deny, exactly the needed flows': [
    ['no default deny', 'production', (o) => withoutObject(o, 'NetworkPolicy', 'default-deny')],
    [
      'a default deny of ingress only',
      'staging',
      (o) => {
        policySpec(o, 'default-deny').policyTypes = ['Ingress'];
      },
    ],
    ['the API open to every source', 'production', (o) => void delete policySpec(o, API).ingress![0]!.from],
    ['the API open on every port', 'production', (o) => void delete policySpec(o, API).ingress![0]!.ports],
    ['the API without the pooler', 'production', (o) => void policySpec(o, API).egress!.splice(0, 1)],
    ['the API allowed everywhere', 'development', (o) => void policySpec(o, API).egress!.push({})],
    [
      'the API to every database pod',
      'production',
      (o) =>
        void delete policySpec(o, API).egress![1]!.to![0]!.podSelector!.matchLabels!['cnpg.io/instanceRole'],
    ],
    [
      'the migration through the pooler',
      'production',
      (o) => {
        policySpec(o, 'branch-loans-migrate').egress![0]!.to = [
          { podSelector: { matchLabels: { 'cnpg.io/poolerName': 'branch-loans-db-pooler-rw' } } },
        ];
      },
    ],
    ['no DNS', 'production', (o) => withoutObject(o, 'NetworkPolicy', 'allow-dns')],
    [
      'a database closed to the operator',
      'production',
      (o) => void policySpec(o, 'branch-loans-db').ingress![0]!.from!.splice(0, 1),
    ],
  ],
  'replicas and disruption budgets per environment': [
    [
      'two API pods in production',
      'production',
      (o) => {
        (find(o, 'HorizontalPodAutoscaler', API).spec as { minReplicas: number }).minReplicas = 2;
      },
    ],
    [
      'a budget that keeps every pod',
      'production',
      (o) => {
        (find(o, 'PodDisruptionBudget', API).spec as { minAvailable: number }).minAvailable = 3;
      },
    ],
    [
      'one pod kept of one in development',
      'development',
      (o) => {
        find(o, 'PodDisruptionBudget', API).spec = { minAvailable: 1, selector: {} };
      },
    ],
    [
      'replicas set beside the autoscaler',
      'staging',
      (o) => {
        deploymentSpec(o).replicas = 2;
      },
    ],
    [
      'two pods minimum in development',
      'development',
      (o) => {
        (find(o, 'HorizontalPodAutoscaler', API).spec as { minReplicas: number }).minReplicas = 2;
      },
    ],
  ],
  'an Ingress with TLS for branchloans.com that hides /metrics': [
    [
      'a catch-all path',
      'production',
      (o) => {
        const rule = find<{ spec: IngressSpec }>(o, 'Ingress', API).spec.rules![0]!;
        rule.http!.paths.push({ ...rule.http!.paths[0]!, path: '/', pathType: 'Prefix' });
      },
    ],
    ['no TLS', 'staging', (o) => void delete find<{ spec: IngressSpec }>(o, 'Ingress', API).spec.tls],
    [
      'a host without a certificate',
      'production',
      (o) => {
        find<{ spec: IngressSpec }>(o, 'Ingress', API).spec.rules![0]!.host = 'branch-loans.example.com';
      },
    ],
    [
      'another ingress class',
      'production',
      (o) => {
        find<{ spec: IngressSpec }>(o, 'Ingress', API).spec.ingressClassName = 'traefik';
      },
    ],
    [
      'a path to a port the Service lacks',
      'production',
      (o) => {
        find<{ spec: IngressSpec }>(o, 'Ingress', API).spec.rules![0]!.http!.paths[0]!.backend.service!.port =
          { name: 'metrics' };
      },
    ],
  ],
  'API pods found by the Kubernetes scrape configuration, Jobs not': [
    [
      'no scrape annotation',
      'production',
      (o) => {
        delete deploymentSpec(o).template.metadata!.annotations!['prometheus.io/scrape'];
      },
    ],
    [
      'another port annotated',
      'production',
      (o) => {
        deploymentSpec(o).template.metadata!.annotations!['prometheus.io/port'] = '9090';
      },
    ],
    [
      'another name label',
      'staging',
      (o) => {
        deploymentSpec(o).template.metadata!.labels!['app.kubernetes.io/name'] = 'api';
      },
    ],
    [
      'a Job pod that looks like the API',
      'production',
      (o) => {
        const job = find<{ spec: { template: PodTemplate } }>(o, 'Job', 'branch-loans-migrate').spec.template;
        job.metadata = structuredClone(deploymentSpec(o).template.metadata);
      },
    ],
  ],
};

const SKIP = skipWithoutKubectl('Kubernetes policy tests');

describe.skipIf(SKIP)('Kubernetes policies', () => {
  const cases = Object.keys(RULES).flatMap((rule) =>
    OVERLAYS.map((overlay) => [rule as RuleName, overlay] as const),
  );

  it.each(cases)('%s: %s passes', async (rule, overlay) => {
    expect(RULES[rule](await renderOverlay(overlay), overlay)).toEqual([]);
  });

  const broken = Object.entries(BROKEN).flatMap(([rule, variants]) =>
    variants.map(([name, overlay, mutate]) => [rule as RuleName, name, overlay, mutate] as const),
  );

  it.each(broken)('%s: catches %s (%s)', async (rule, _name, overlay, mutate) => {
    const objects = await renderOverlay(overlay);
    mutate(objects);
    expect(RULES[rule](objects, overlay)).not.toEqual([]);
  });

  it('the quantity parser reads CPU and memory the way Kubernetes does', () => {
    expect([quantity('250m'), quantity('1'), quantity('2'), quantity('0.5')]).toEqual([0.25, 1, 2, 0.5]);
    expect([quantity('128Mi'), quantity('1Gi'), quantity('512M'), quantity('64k')]).toEqual([
      134_217_728, 1_073_741_824, 512_000_000, 64_000,
    ]);
    expect(() => quantity('1 Gi')).toThrow('not a quantity');
  });
});
