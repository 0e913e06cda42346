// The Dockerfile and .dockerignore, checked without a container engine: policy rules of our own on the
// syntax tree from dockerfile-ast (non-root user, pinned bases, multi-stage, production dependencies
// only, a HEALTHCHECK without curl, exec-form CMD, no remote ADD), each shown to catch a bad Dockerfile;
// and .dockerignore evaluated with Docker's matching rules (last matching pattern wins, a pattern also
// matches everything under a directory it matches) against the paths that must never reach the image.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Dockerfile, DockerfileParser } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';
import { IMAGE_NODE_OPTIONS } from '../../bench/servers.ts';
import { finalStage, fromFlag, full, keyword, stages, text } from '../helpers/dockerfile.ts';
import { REPO_ROOT } from '../helpers/process.ts';

const DOCKERFILE = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const DOCKERIGNORE = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8');

type Rule = (dockerfile: Dockerfile) => string[];

const nonRootUser: Rule = (dockerfile) => {
  const stage = finalStage(dockerfile);
  const user = stage ? keyword(stage, 'USER').at(-1) : undefined;
  if (!user) return ['the final stage sets no USER, so the container runs as root'];
  const name = text(user).trim().split(':')[0];
  return name === 'root' || name === '0' ? [`the final stage runs as ${name}`] : [];
};

const EXACT_VERSION = /^v?\d+\.\d+\.\d+(?:[-.][\w.-]+)?$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

const pinnedBaseImages: Rule = (dockerfile) => {
  const problems: string[] = [];
  const stageNames = new Set<string>();
  for (const { name, from } of stages(dockerfile)) {
    const image = from.getImage() ?? '';
    if (!stageNames.has(image)) {
      const tag = from.getImageTag();
      const digest = from.getImageDigest();
      if (image.includes('$')) problems.push(`${image}: a variable base image cannot be checked`);
      else if (tag === 'latest') problems.push(`${image}: "latest" is not a version`);
      else if (!(tag && EXACT_VERSION.test(tag)) && !(digest && DIGEST.test(digest)))
        problems.push(`${image}: pin an exact version tag (x.y.z) or a sha256 digest`);
    }
    if (name) stageNames.add(name);
  }
  return problems;
};

const multiStage: Rule = (dockerfile) => {
  const all = stages(dockerfile);
  if (all.length < 2) return ['a single stage: build tools and sources end up in the image'];
  const earlier = new Set(all.slice(0, -1).flatMap((stage) => (stage.name ? [stage.name] : [])));
  const copies = keyword(all.at(-1)!, 'COPY').map(fromFlag);
  return copies.some((source) => source !== undefined && earlier.has(source))
    ? []
    : ['the final stage copies nothing from a named build stage'];
};

const NPM_INSTALL = /\bnpm\s+(?:ci|install|i)\b/;

/** The final stage, and every stage it copies node_modules from, install production dependencies only. */
const productionDependenciesOnly: Rule = (dockerfile) => {
  const all = stages(dockerfile);
  const last = all.at(-1);
  if (!last) return ['no stages'];
  const sources = keyword(last, 'COPY')
    .filter((copy) => text(copy).includes('node_modules'))
    .map(fromFlag)
    .flatMap((name) => all.filter((stage) => stage.name === name));
  const installs = [last, ...sources].flatMap((stage) =>
    keyword(stage, 'RUN').filter((run) => NPM_INSTALL.test(text(run))),
  );
  if (installs.length === 0) return ['the runtime node_modules come from no npm ci'];
  return installs
    .filter((run) => !/\bnpm\s+ci\b/.test(text(run)) || !/--omit[= ]dev\b/.test(text(run)))
    .map((run) => `"${text(run).trim()}" must be npm ci --omit=dev`);
};

const healthcheckWithoutCurl: Rule = (dockerfile) => {
  const stage = finalStage(dockerfile);
  const healthcheck = stage ? keyword(stage, 'HEALTHCHECK').at(-1) : undefined;
  if (!healthcheck) return ['the final stage has no HEALTHCHECK'];
  const content = text(healthcheck);
  if (/(?:^|\s)NONE\s*$/i.test(content)) return ['HEALTHCHECK NONE disables the check'];
  return /\b(?:curl|wget)\b/.test(content)
    ? ['the HEALTHCHECK needs curl or wget, which the image lacks']
    : [];
};

/** JSON-array form: no shell in between, so SIGTERM reaches node itself. */
const execFormCommand: Rule = (dockerfile) => {
  const stage = finalStage(dockerfile);
  const cmd = stage ? keyword(stage, 'CMD').at(-1) : undefined;
  const entrypoint = stage ? keyword(stage, 'ENTRYPOINT').at(-1) : undefined;
  if (!cmd && !entrypoint) return ['the final stage has no CMD'];
  return [cmd, entrypoint]
    .filter((instruction) => instruction !== undefined)
    .filter((instruction) => !text(instruction).trim().startsWith('['))
    .map((instruction) => `${instruction.getKeyword()} is in shell form: ${text(instruction).trim()}`);
};

const noRemoteAdd: Rule = (dockerfile) =>
  dockerfile
    .getInstructions()
    .filter((i) => i.getKeyword() === 'ADD' && /(?:https?|git|ssh):\/\/|git@/.test(text(i)))
    .map((i) => `ADD of a remote source: ${text(i).trim()}`);

const RULES = {
  'runs as a non-root user': nonRootUser,
  'pins every base image': pinnedBaseImages,
  'is multi-stage, the final stage copying from a named build stage': multiStage,
  'installs production dependencies only': productionDependenciesOnly,
  'has a HEALTHCHECK that needs no curl': healthcheckWithoutCurl,
  'runs an exec-form CMD': execFormCommand,
  'ADDs nothing from the network': noRemoteAdd,
} satisfies Record<string, Rule>;

const parse = (content: string) => DockerfileParser.parse(content);
const dockerfile = parse(DOCKERFILE);

// Passes every rule; each bad example below differs from it in one respect.
const GOOD = `FROM node:24.21.0-bookworm-slim AS build
RUN npm ci && npm run build
FROM node:24.21.0-bookworm-slim AS deps
RUN npm ci --omit=dev
FROM node:24.21.0-bookworm-slim
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
HEALTHCHECK CMD ["node", "-e", "fetch('http://127.0.0.1:8000/liveness')"]
CMD ["node", "dist/server.js"]
`;
const BAD: Record<keyof typeof RULES, string[]> = {
  'runs as a non-root user': [
    GOOD.replace('USER node\n', ''),
    GOOD.replace('USER node', 'USER root'),
    GOOD.replace('USER node', 'USER 0:0'),
    // USER in an earlier stage does not carry over to the final one.
    GOOD.replace('USER node\n', '').replace('RUN npm ci --omit=dev', 'RUN npm ci --omit=dev\nUSER node'),
  ],
  'pins every base image': [
    GOOD.replace('FROM node:24.21.0-bookworm-slim AS build', 'FROM node AS build'),
    GOOD.replace('FROM node:24.21.0-bookworm-slim AS build', 'FROM node:latest AS build'),
    GOOD.replace('FROM node:24.21.0-bookworm-slim\n', 'FROM node:24-bookworm-slim\n'),
    GOOD.replace('FROM node:24.21.0-bookworm-slim\n', 'ARG BASE=node\nFROM ${BASE}\n'),
  ],
  'is multi-stage, the final stage copying from a named build stage': [
    'FROM node:24.21.0-bookworm-slim\nRUN npm ci --omit=dev\nUSER node\nCMD ["node", "server.js"]\n',
    GOOD.replace('--from=deps', '--from=0').replace('--from=build', '--from=node:24.21.0'),
  ],
  'installs production dependencies only': [
    GOOD.replace('RUN npm ci --omit=dev', 'RUN npm ci'),
    GOOD.replace('RUN npm ci --omit=dev', 'RUN npm install --omit=dev'),
    GOOD.replace('--from=deps /app/node_modules', '--from=build /app/node_modules'),
    GOOD.replace('COPY --from=deps /app/node_modules ./node_modules\n', ''),
  ],
  'has a HEALTHCHECK that needs no curl': [
    GOOD.replace(/HEALTHCHECK .*\n/, ''),
    GOOD.replace(/HEALTHCHECK .*\n/, 'HEALTHCHECK CMD curl -fsS http://127.0.0.1:8000/liveness || exit 1\n'),
    GOOD.replace(/HEALTHCHECK .*\n/, 'HEALTHCHECK CMD ["wget", "-q", "-O-", "http://127.0.0.1:8000/"]\n'),
    GOOD.replace(/HEALTHCHECK .*\n/, 'HEALTHCHECK NONE\n'),
  ],
  'runs an exec-form CMD': [
    GOOD.replace('CMD ["node", "dist/server.js"]', 'CMD node dist/server.js'),
    GOOD.replace('CMD ["node", "dist/server.js"]', 'ENTRYPOINT npm start'),
    GOOD.replace(/CMD \[.*\]\n/, ''),
  ],
  'ADDs nothing from the network': [
    GOOD.replace('USER node', 'ADD https://example.com/tool.tgz /opt/\nUSER node'),
    GOOD.replace('USER node', 'ADD git@github.com:org/repo.git /src\nUSER node'),
  ],
};

describe('Dockerfile policy', () => {
  for (const [name, rule] of Object.entries(RULES)) {
    it(`the Dockerfile ${name}`, () => {
      expect(rule(dockerfile)).toEqual([]);
    });

    it(`the rule "${name}" fails on a Dockerfile that breaks it, and only there`, () => {
      expect(rule(parse(GOOD))).toEqual([]);
      for (const bad of BAD[name as keyof typeof RULES]) {
        expect(rule(parse(bad)), bad).not.toEqual([]);
      }
    });
  }

  it('fails when the real Dockerfile is made to run as root', () => {
    expect(nonRootUser(parse(DOCKERFILE.replace(/^USER node$/m, 'USER root')))).toEqual([
      'the final stage runs as root',
    ]);
    expect(nonRootUser(parse(DOCKERFILE.replace(/^USER node\n/m, '')))).not.toEqual([]);
  });

  it('lays out the runtime stage so the modules find package.json and migrations/ as in the repository', () => {
    const runtime = finalStage(dockerfile)!;
    expect(keyword(stages(dockerfile)[0]!, 'WORKDIR').map(text)).toEqual(['/app']);
    const copies = keyword(runtime, 'COPY').map(full);
    expect(copies).toEqual(
      expect.arrayContaining([
        'package.json package-lock.json ./',
        '--from=build /app/dist/src ./src',
        'migrations ./migrations',
      ]),
    );
    // The bench starts the service with the image's NODE_OPTIONS.
    expect(keyword(runtime, 'ENV').map(full)).toContain(`NODE_OPTIONS="${IMAGE_NODE_OPTIONS}"`);
    // CMD runs the compiled form of a module that exists in the repository.
    const [command, script] = JSON.parse(text(keyword(runtime, 'CMD').at(-1)!)) as string[];
    expect(command).toBe('node');
    expect(existsSync(join(REPO_ROOT, script!.replace(/\.js$/, '.ts')))).toBe(true);
  });
});

/** Docker's .dockerignore semantics: last matching pattern wins; a match on a directory covers its files. */
function dockerignoreExcludes(dockerignore: string, path: string): boolean {
  const patterns = dockerignore
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const pattern = (negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
      return { negated, regex: globToRegExp(pattern) };
    });
  const parts = path.split('/');
  const prefixes = parts.map((_, index) => parts.slice(0, index + 1).join('/'));
  let excluded = false;
  for (const { negated, regex } of patterns) {
    if (prefixes.some((prefix) => regex.test(prefix))) excluded = !negated;
  }
  return excluded;
}

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index]!;
    if (char === '*' && pattern[index + 1] === '*') {
      // "**/" matches any number of directories, including none.
      const slash = pattern[index + 2] === '/';
      source += slash ? '(?:.*/)?' : '.*';
      index += slash ? 2 : 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

const MUST_BE_EXCLUDED = [
  'node_modules/fastify/package.json',
  '.git/HEAD',
  'test/platform/config.test.ts',
  'test/e2e/nginx.test.ts',
  '.env',
  '.env.prod',
  '.env.dev.example',
  'src/.env.local',
  'deploy/nginx/certs/branchloans.com.key',
  'deploy/nginx/certs/branchloans.com.crt',
  'server.pem',
  'src/platform/dev.key',
  '.data/postgres/PG_VERSION',
  'dist/src/server.js',
  'bench/results/run.json',
  'coverage/index.html',
  'src/node_modules/x/index.js',
];
const MUST_BE_INCLUDED = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'src/server.ts',
  'src/platform/database.ts',
  'migrations/0001_loans.sql',
];

describe('.dockerignore', () => {
  it('keeps dependencies, git, tests, env files, keys, certificates and local data out of the build context', () => {
    expect(MUST_BE_EXCLUDED.filter((path) => !dockerignoreExcludes(DOCKERIGNORE, path))).toEqual([]);
  });

  it('sends what the image is built from', () => {
    expect(MUST_BE_INCLUDED.filter((path) => dockerignoreExcludes(DOCKERIGNORE, path))).toEqual([]);
    for (const path of MUST_BE_INCLUDED) expect(existsSync(join(REPO_ROOT, path)), path).toBe(true);
  });

  it('sends every path the Dockerfile copies from the build context', () => {
    const sources = dockerfile
      .getInstructions()
      .filter((instruction) => ['COPY', 'ADD'].includes(instruction.getKeyword()))
      .filter((instruction) => fromFlag(instruction) === undefined)
      .flatMap((instruction) => text(instruction).trim().split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    expect(
      sources.filter((path) => dockerignoreExcludes(DOCKERIGNORE, path.replace(/^\.\/|\/$/g, ''))),
    ).toEqual([]);
    for (const path of sources) expect(existsSync(join(REPO_ROOT, path)), path).toBe(true);
  });

  it('is evaluated the way Docker evaluates it', () => {
    expect(dockerignoreExcludes('node_modules\n', 'node_modules/a/b.js')).toBe(true);
    expect(dockerignoreExcludes('*\n!src/\n', 'src/a.ts')).toBe(false);
    expect(dockerignoreExcludes('*\n!src/\n**/*.pem\n', 'src/a/b.pem')).toBe(true);
    expect(dockerignoreExcludes('*.key\n', 'deploy/a.key')).toBe(false);
    expect(dockerignoreExcludes('**/.env.*\n!**/.env.*.example\n', '.env.dev.example')).toBe(false);
  });

  it('fails when the allow-list is replaced by a partial deny-list', () => {
    const weak = 'node_modules\n.git\n';
    expect(MUST_BE_EXCLUDED.filter((path) => !dockerignoreExcludes(weak, path))).toContain('.env.prod');
  });
});
