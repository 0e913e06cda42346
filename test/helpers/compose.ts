// The compose files as data, the way `docker compose -f compose.yaml -f <environment file>` sees them:
// YAML with anchors and merge keys, variables interpolated from the environment's .env example, and the
// environment file merged over the base by the Compose Specification's rules.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from './process.ts';

export const ENVIRONMENTS = {
  development: { file: 'compose.override.yaml', envFile: '.env.dev.example' },
  staging: { file: 'compose.staging.yaml', envFile: '.env.staging.example' },
  production: { file: 'compose.prod.yaml', envFile: '.env.prod.example' },
} as const;
export type Environment = keyof typeof ENVIRONMENTS;
export const BASE_FILE = 'compose.yaml';

export type Yaml = Record<string, unknown>;
export interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  profiles?: string[];
  restart?: string;
  environment?: Record<string, string>;
  ports?: string[];
  expose?: string[];
  volumes?: string[];
  tmpfs?: string[];
  secrets?: string[];
  depends_on?: Record<string, { condition: string; restart?: boolean }> | string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  user?: string;
  deploy?: { resources?: { limits?: { cpus?: string; memory?: string } } };
}
export interface Project {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file?: string }>;
}

export function readComposeText(file: string): string {
  return readFileSync(join(REPO_ROOT, file), 'utf8');
}

export function parseCompose(text: string): Yaml {
  return parse(text, { merge: true }) as Yaml;
}

/** KEY=VALUE lines of a .env file (comments and blank lines skipped). */
export function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(REPO_ROOT, file), 'utf8').split('\n')) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}

const VARIABLE =
  /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

export interface Reference {
  name: string;
  /** `:?` or `?`: compose refuses to start without it. */
  required: boolean;
}

/** Every variable a compose text refers to. */
export function variableReferences(text: string): Reference[] {
  return [...text.matchAll(VARIABLE)]
    .filter((match) => match[0] !== '$$')
    .map((match) => ({ name: (match[1] ?? match[4])!, required: match[2]?.endsWith('?') ?? false }));
}

/**
 * Compose interpolation. A variable set but empty in an example file is one the user must fill in, so it
 * stands as `<NAME>`; one that is required and absent throws, as compose would.
 */
export function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(VARIABLE, (whole, braced?: string, operator?: string, operand = '', bare?: string) => {
    if (whole === '$$') return '$';
    const name = (braced ?? bare)!;
    const value = env[name];
    const set = value !== undefined;
    const filled = set && value !== '' ? value : set ? `<${name}>` : undefined;
    switch (operator) {
      case ':-':
        return value ? value : interpolate(operand, env);
      case '-':
        return set ? value : interpolate(operand, env);
      case ':?':
      case '?':
        if (filled === undefined) throw new Error(`required variable ${name} is not set: ${operand}`);
        return filled;
      case ':+':
        return value ? interpolate(operand, env) : '';
      case '+':
        return set ? interpolate(operand, env) : '';
      default:
        return value ?? '';
    }
  });
}

/** Sequences that a later file replaces instead of extending (Compose Specification, "Merge"). */
const REPLACED = new Set(['command', 'entrypoint', 'test']);

function isMapping(value: unknown): value is Yaml {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Environment and label lists (`KEY=value`) become mappings, so that they merge key by key. */
function normalize(key: string, value: unknown): unknown {
  if ((key === 'environment' || key === 'labels') && Array.isArray(value)) {
    return Object.fromEntries(
      value.map((entry: string) => {
        const at = entry.indexOf('=');
        return at < 0 ? [entry, ''] : [entry.slice(0, at), entry.slice(at + 1)];
      }),
    );
  }
  if (key === 'depends_on' && Array.isArray(value)) {
    return Object.fromEntries(value.map((name: string) => [name, { condition: 'service_started' }]));
  }
  return value;
}

export function mergeCompose(base: unknown, override: unknown, key = ''): unknown {
  const left = normalize(key, base);
  const right = normalize(key, override);
  const mappings = (isMapping(left) || left === undefined) && (isMapping(right) || right === undefined);
  if (mappings && (left !== undefined || right !== undefined)) {
    const [l, r] = [(left ?? {}) as Yaml, (right ?? {}) as Yaml];
    const merged: Yaml = {};
    for (const name of new Set([...Object.keys(l), ...Object.keys(r)])) {
      merged[name] = mergeCompose(l[name], r[name], name);
    }
    return merged;
  }
  if (right === undefined) return left;
  if (Array.isArray(left) && Array.isArray(right) && !REPLACED.has(key)) {
    const seen = new Set(left.map((item) => JSON.stringify(item)));
    return [...left, ...right.filter((item) => !seen.has(JSON.stringify(item)))];
  }
  return right;
}

/** The project compose runs for `environment`: base + environment file, interpolated, extensions dropped. */
export function loadProject(environment: Environment, texts?: { base?: string; env?: string }): Project {
  const { file, envFile } = ENVIRONMENTS[environment];
  const env = readEnvFile(envFile);
  const base = parseCompose(interpolate(texts?.base ?? readComposeText(BASE_FILE), env));
  const overlay = parseCompose(interpolate(texts?.env ?? readComposeText(file), env));
  const merged = mergeCompose(base, overlay) as Yaml;
  for (const name of Object.keys(merged)) if (name.startsWith('x-')) delete merged[name];
  return merged as unknown as Project;
}

export function dependencies(service: Service): Record<string, { condition: string }> {
  return (service.depends_on ?? {}) as Record<string, { condition: string }>;
}
