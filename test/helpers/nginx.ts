// Debian's `nginx` running the project's own deploy/nginx/nginx.conf on loopback, with a certificate from
// scripts/generate-cert.sh; curl and openssl as the clients; and the configuration parsed as data for
// policy checks. The only place that knows how the compose configuration becomes a loopback one.
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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

export const NGINX_CONFIG = join(REPO_ROOT, 'deploy/nginx/nginx.conf');
export const GENERATE_CERT = join(REPO_ROOT, 'scripts/generate-cert.sh');
export const CERT_NAME = 'branchloans.com';
export const HSTS_MIN_MAX_AGE = 63_072_000;

export const NGINX_PATH = process.env.NGINX_PATH || '/usr/sbin/nginx';
export const OPENSSL_PATH = process.env.OPENSSL_PATH || '/usr/bin/openssl';
export const CURL_PATH = process.env.CURL_PATH || '/usr/bin/curl';
export const SHELLCHECK_PATH = process.env.SHELLCHECK_PATH || '/usr/bin/shellcheck';

const TOOLS = { nginx: NGINX_PATH, openssl: OPENSSL_PATH, curl: CURL_PATH, shellcheck: SHELLCHECK_PATH };
export type Tool = keyof typeof TOOLS;

/** Why one of `tools` cannot run here, or undefined when all can. */
export function toolsMissing(tools: Tool[]): string | undefined {
  for (const tool of tools) {
    const missing = executablesMissing(
      [TOOLS[tool]],
      `install Debian's package (apt-get install -y ${tool}) or set ${tool.toUpperCase()}_PATH`,
    );
    if (missing) return missing;
  }
  return undefined;
}

export const skipWithout = (tools: Tool[]) => skipWhenMissing('nginx/TLS tests', toolsMissing(tools));

export interface CertFiles {
  dir: string;
  crt: string;
  key: string;
}

/** scripts/generate-cert.sh into `dir`, with `args` (for example --force). */
export async function generateCert(dir: string, args: string[] = []): Promise<CertFiles & CommandResult> {
  const result = await run('bash', [GENERATE_CERT, ...args, dir]);
  if (result.code !== 0) throw new Error(`generate-cert.sh failed (${result.code}):\n${result.stderr}`);
  return { ...result, dir, crt: join(dir, `${CERT_NAME}.crt`), key: join(dir, `${CERT_NAME}.key`) };
}

export async function fingerprint(crt: string): Promise<string> {
  const result = await run(OPENSSL_PATH, ['x509', '-in', crt, '-noout', '-fingerprint', '-sha256']);
  if (result.code !== 0) throw new Error(result.stderr);
  return result.stdout.trim();
}

export interface LoopbackSettings {
  /** Where the test's nginx keeps its temp files, pid and access log. */
  prefix: string;
  httpPort: number;
  httpsPort: number;
  /** host:port of the API. */
  upstream: string;
  cert: CertFiles;
}

/** The configuration's lines tagged `# render:`, and what each becomes on loopback. */
const RENDERED_LINES: { tag: string; from: RegExp; to: (s: LoopbackSettings) => string }[] = [
  {
    tag: 'access log',
    from: /access_log \/dev\/stdout json;/,
    to: (s) => `access_log ${accessLogOf(s)} json;`,
  },
  { tag: 'upstream', from: /server api:8000;/, to: (s) => `server ${s.upstream};` },
  {
    tag: 'http port',
    from: /listen 80 default_server;/,
    to: (s) => `listen 127.0.0.1:${s.httpPort} default_server;`,
  },
  {
    tag: 'https redirect',
    from: /return 308 https:\/\/\$host\$request_uri;/,
    to: (s) => `return 308 https://$host:${s.httpsPort}$request_uri;`,
  },
  {
    tag: 'https port',
    from: /listen 443 ssl http2 default_server;/,
    to: (s) => `listen 127.0.0.1:${s.httpsPort} ssl http2 default_server;`,
  },
  {
    tag: 'certificate',
    from: /ssl_certificate \/etc\/nginx\/certs\/branchloans\.com\.crt;/,
    to: (s) => `ssl_certificate ${s.cert.crt};`,
  },
  {
    tag: 'key',
    from: /ssl_certificate_key \/etc\/nginx\/certs\/branchloans\.com\.key;/,
    to: (s) => `ssl_certificate_key ${s.cert.key};`,
  },
];

const TEMP_PATHS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];

export function accessLogOf(settings: Pick<LoopbackSettings, 'prefix'>): string {
  return join(settings.prefix, 'access.log');
}

/**
 * deploy/nginx/nginx.conf (or `conf`) for loopback: each `# render:` line rewritten (it must be there
 * exactly once, unchanged), and temp paths under the prefix. Everything else is the file as committed.
 */
export function renderNginxConfig(
  settings: LoopbackSettings,
  conf = readFileSync(NGINX_CONFIG, 'utf8'),
): string {
  let rendered = conf;
  for (const { tag, from, to } of RENDERED_LINES) {
    const marker = new RegExp(`${from.source}\\s*# render: ${tag}\\n`, 'g');
    const found = rendered.match(marker)?.length ?? 0;
    if (found !== 1) {
      throw new Error(`nginx.conf: expected one line "${from.source}  # render: ${tag}", found ${found}`);
    }
    rendered = rendered.replace(marker, `${to(settings)}\n`);
  }
  const tagged = rendered.match(/;\s*# render:.*/g);
  if (tagged) throw new Error(`nginx.conf: render tags the helper does not know: ${tagged.join(', ')}`);
  const temp = TEMP_PATHS.map((name) => `    ${name}_temp_path ${join(settings.prefix, `${name}_temp`)};`);
  if (!/^http \{$/m.test(rendered)) throw new Error('nginx.conf: no "http {" line');
  return rendered.replace(/^http \{$/m, `http {\n${temp.join('\n')}`);
}

function nginxArgs(prefix: string, confFile: string): string[] {
  return [
    '-p',
    prefix,
    '-c',
    confFile,
    '-e',
    'stderr',
    '-g',
    `daemon off; pid ${join(prefix, 'nginx.pid')};`,
  ];
}

/** Writes `rendered` under `prefix` and runs `nginx -t` on it. */
export async function nginxTest(prefix: string, rendered: string): Promise<CommandResult> {
  const confFile = join(prefix, 'nginx.conf');
  await writeFile(confFile, rendered);
  return run(NGINX_PATH, ['-t', ...nginxArgs(prefix, confFile)]);
}

export interface CurlResponse {
  status: number;
  /** Lower-case names; every value of a repeated header. */
  headers: Record<string, string[]>;
  body: string;
  /** The single value of `name`; fails when it is absent or repeated. */
  header(name: string): string;
}

export interface CurlOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A file sent as the body (curl --data-binary @file). */
  bodyFile?: string;
  /** Plain HTTP on the redirect port instead of HTTPS. */
  http?: boolean;
  extraArgs?: string[];
}

export interface RunningNginx {
  httpPort: number;
  httpsPort: number;
  prefix: string;
  cert: CertFiles;
  proc: AppProcess;
  /** `https://branchloans.com:PORT` (or the http one), resolved to 127.0.0.1 by curl. */
  origin(http?: boolean): string;
  /** curl arguments that reach this nginx as branchloans.com and trust its certificate. */
  curlArgs(http?: boolean): string[];
  curl(path: string, options?: CurlOptions): Promise<CurlResponse>;
  /** The JSON access log, parsed line by line. */
  accessLog(): Promise<Record<string, unknown>[]>;
  /** Stops nginx and removes its prefix (not the certificate). Safe to call at any time. */
  stop(): Promise<void>;
}

function parseCurlHead(head: string): Pick<CurlResponse, 'status' | 'headers'> {
  // With -D, every response of the exchange is dumped; the last block is the final response.
  const blocks = head.trim().split(/\r?\n\r?\n/);
  const lines = blocks[blocks.length - 1]!.split(/\r?\n/);
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? '')?.[1]);
  if (!Number.isInteger(status)) throw new Error(`no HTTP status line in curl's output:\n${head}`);
  const headers: Record<string, string[]> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    headers[name] = [...(headers[name] ?? []), line.slice(colon + 1).trim()];
  }
  return { status, headers };
}

const START_TIMEOUT_MS = 15_000;

/** nginx with the project's configuration on two free loopback ports, in front of `upstream`. */
export async function startNginx(upstream: string, cert: CertFiles): Promise<RunningNginx> {
  const missing = toolsMissing(['nginx', 'curl']);
  if (missing) throw new Error(missing);
  const prefix = await makeTempDir('branch-loans-nginx-');
  const settings: LoopbackSettings = {
    prefix,
    httpPort: await freePort(),
    httpsPort: await freePort(),
    upstream,
    cert,
  };
  const confFile = join(prefix, 'nginx.conf');
  await writeFile(confFile, renderNginxConfig(settings));
  await mkdir(join(prefix, 'logs'), { recursive: true });
  const proc = startProcess(NGINX_PATH, nginxArgs(prefix, confFile), {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
  });
  const stop = async () => {
    try {
      await proc.stop();
    } finally {
      await removeTempDir(prefix);
    }
  };

  const origin = (http = false) =>
    http ? `http://${CERT_NAME}:${settings.httpPort}` : `https://${CERT_NAME}:${settings.httpsPort}`;
  const curlArgs = (http = false) => [
    '--silent',
    '--show-error',
    '--max-time',
    '10',
    '--resolve',
    `${CERT_NAME}:${http ? settings.httpPort : settings.httpsPort}:127.0.0.1`,
    ...(http ? [] : ['--cacert', cert.crt]),
  ];
  let calls = 0;
  const curl = async (path: string, options: CurlOptions = {}): Promise<CurlResponse> => {
    calls += 1;
    const bodyOut = join(prefix, `curl-${calls}.body`);
    const args = [...curlArgs(options.http), '--dump-header', '-', '--output', bodyOut];
    if (options.method) args.push('--request', options.method);
    for (const [name, value] of Object.entries(options.headers ?? {}))
      args.push('--header', `${name}: ${value}`);
    if (options.bodyFile) args.push('--data-binary', `@${options.bodyFile}`);
    args.push(...(options.extraArgs ?? []), `${origin(options.http)}${path}`);
    const result = await run(CURL_PATH, args);
    if (result.code !== 0)
      throw new Error(`curl ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    const { status, headers } = parseCurlHead(result.stdout);
    const body = await readFile(bodyOut, 'utf8').catch(() => '');
    return {
      status,
      headers,
      body,
      header(name) {
        const values = headers[name.toLowerCase()] ?? [];
        if (values.length !== 1) {
          throw new Error(`expected one ${name} header on ${path}, got ${JSON.stringify(values)}`);
        }
        return values[0]!;
      },
    };
  };
  const accessLog = async () =>
    (await readFile(accessLogOf(settings), 'utf8').catch(() => ''))
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  try {
    await waitFor(
      `nginx listening on ${settings.httpsPort}`,
      async () => {
        if (proc.exitStatus) throw new Error(`nginx exited: ${proc.output()}`);
        const probe = await run(CURL_PATH, [
          ...curlArgs(true),
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          origin(true),
        ]);
        return probe.stdout === '308';
      },
      { timeoutMs: START_TIMEOUT_MS, intervalMs: 100 },
    );
  } catch (error) {
    const output = proc.output();
    await stop();
    throw new Error(`nginx did not start:\n${output}`, { cause: error });
  }
  return { ...settings, proc, origin, curlArgs, curl, accessLog, stop };
}

export interface HandshakeResult extends CommandResult {
  /** The negotiated protocol, e.g. TLSv1.3, when the handshake completed. */
  protocol?: string;
  cipher?: string;
}

/** `openssl s_client` against 127.0.0.1:`port` as branchloans.com, with `args` (e.g. -tls1_1), verifying `cert`. */
export async function handshake(port: number, cert: CertFiles, args: string[]): Promise<HandshakeResult> {
  const result = await run(
    OPENSSL_PATH,
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      CERT_NAME,
      '-CAfile',
      cert.crt,
      '-verify_return_error',
      ...args,
    ],
    { timeoutMs: 10_000 },
  );
  // "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384", or "New, (NONE), Cipher is (NONE)" when it failed.
  const [, protocol, cipher] = /^New, (\S+), Cipher is (\S+)$/m.exec(result.stdout) ?? [];
  const negotiated = (value: string | undefined) =>
    value === undefined || value === '(NONE)' ? undefined : value;
  return { ...result, protocol: negotiated(protocol), cipher: negotiated(cipher) };
}

// ---------------------------------------------------------------------------------------------------
// The configuration as data: a small parser (directives, blocks, quoted strings, comments) and the policy.

export interface Directive {
  name: string;
  args: string[];
  block?: Directive[];
}

interface Token {
  text: string;
  /** A quoted string: never a separator, even when it is `;` or `{`. */
  quoted: boolean;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i += 1;
    } else if (c === '{' || c === '}' || c === ';') {
      tokens.push({ text: c, quoted: false });
      i += 1;
    } else if (c === '"' || c === "'") {
      let value = '';
      i += 1;
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\\' && i + 1 < text.length) i += 1;
        value += text[i];
        i += 1;
      }
      if (i >= text.length) throw new Error('nginx.conf: unterminated string');
      i += 1;
      tokens.push({ text: value, quoted: true });
    } else {
      let value = '';
      while (i < text.length && !/[\s{};]/.test(text[i]!)) {
        value += text[i];
        i += 1;
      }
      tokens.push({ text: value, quoted: false });
    }
  }
  return tokens;
}

export function parseNginxConfig(text: string): Directive[] {
  const tokens = tokenize(text);
  let position = 0;
  const parseBlock = (nested: boolean): Directive[] => {
    const parsed: Directive[] = [];
    let words: string[] = [];
    while (position < tokens.length) {
      const { text: token, quoted } = tokens[position++]!;
      if (quoted) {
        words.push(token);
      } else if (token === ';') {
        if (words.length === 0) throw new Error('nginx.conf: empty directive');
        parsed.push({ name: words[0]!, args: words.slice(1) });
        words = [];
      } else if (token === '{') {
        if (words.length === 0) throw new Error('nginx.conf: block without a name');
        parsed.push({ name: words[0]!, args: words.slice(1), block: parseBlock(true) });
        words = [];
      } else if (token === '}') {
        if (!nested || words.length > 0) throw new Error('nginx.conf: unbalanced }');
        return parsed;
      } else {
        words.push(token);
      }
    }
    if (nested || words.length > 0) throw new Error('nginx.conf: unexpected end of file');
    return parsed;
  };
  return parseBlock(false);
}

/** Directives named `name` directly inside `block`. */
export function directives(block: Directive[], name: string): Directive[] {
  return block.filter((directive) => directive.name === name);
}

/** Every directive, at any depth, with the names of the blocks that contain it. */
export function walk(block: Directive[], path: string[] = []): { directive: Directive; path: string[] }[] {
  return block.flatMap((directive) => [
    { directive, path },
    ...(directive.block
      ? walk(directive.block, [...path, [directive.name, ...directive.args].join(' ')])
      : []),
  ]);
}

export interface EdgeServers {
  http: Directive[];
  https: Directive[];
  httpBlock: Directive[];
}

/** The `http` block and its two servers: the one listening with `ssl` and the plain one. */
export function edgeServers(conf: Directive[]): EdgeServers {
  const [http] = directives(conf, 'http');
  if (!http?.block) throw new Error('nginx.conf: no http block');
  const servers = directives(http.block, 'server').map((server) => server.block!);
  const isTls = (server: Directive[]) =>
    directives(server, 'listen').some((listen) => listen.args.includes('ssl'));
  const tls = servers.filter(isTls);
  const plain = servers.filter((server) => !isTls(server));
  if (tls.length !== 1 || plain.length !== 1) {
    throw new Error(
      `nginx.conf: expected one TLS and one plain server, found ${tls.length} and ${plain.length}`,
    );
  }
  return { http: plain[0]!, https: tls[0]!, httpBlock: http.block };
}

// Mozilla "intermediate" TLS 1.2 suites without the DHE ones (no dhparam): ECDHE key exchange, AEAD only.
export const INTERMEDIATE_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

/**
 * What the edge configuration `text` gets wrong against the project's TLS and HTTP policy; empty when it
 * complies. Pure, so the tests can show it catches a weakened copy.
 */
export function edgePolicyViolations(text: string): string[] {
  const violations: string[] = [];
  const conf = parseNginxConfig(text);
  const { http, https, httpBlock } = edgeServers(conf);
  const everywhere = walk(conf).map(({ directive }) => directive);
  const one = (block: Directive[], name: string): Directive | undefined => {
    const found = directives(block, name);
    if (found.length !== 1) violations.push(`expected one ${name}, found ${found.length}`);
    return found[0];
  };

  for (const protocols of everywhere.filter((d) => d.name === 'ssl_protocols')) {
    if (protocols.args.join(' ') !== 'TLSv1.2 TLSv1.3') {
      violations.push(`ssl_protocols must be exactly "TLSv1.2 TLSv1.3", is "${protocols.args.join(' ')}"`);
    }
  }
  one(https, 'ssl_protocols');
  const ciphers = one(https, 'ssl_ciphers')?.args.join('').split(':') ?? [];
  const unexpected = ciphers.filter((cipher) => !INTERMEDIATE_CIPHERS.includes(cipher));
  if (unexpected.length > 0)
    violations.push(`ssl_ciphers outside the intermediate set: ${unexpected.join(', ')}`);
  if (one(https, 'ssl_prefer_server_ciphers')?.args[0] !== 'off') {
    violations.push('ssl_prefer_server_ciphers must be off');
  }
  if (one(https, 'ssl_session_tickets')?.args[0] !== 'off')
    violations.push('ssl_session_tickets must be off');
  if (!directives(https, 'listen').every((listen) => listen.args.includes('http2'))) {
    violations.push('the TLS server must listen with http2');
  }

  const hsts = directives(https, 'add_header').filter(
    (d) => d.args[0]?.toLowerCase() === 'strict-transport-security',
  );
  if (hsts.length !== 1) {
    violations.push(
      `expected one Strict-Transport-Security add_header in the TLS server, found ${hsts.length}`,
    );
  } else {
    const [, value = '', always] = hsts[0]!.args;
    const maxAge = Number(/^max-age=(\d+)/.exec(value)?.[1] ?? 0);
    if (maxAge < HSTS_MIN_MAX_AGE) violations.push(`HSTS max-age ${maxAge} is below ${HSTS_MIN_MAX_AGE}`);
    if (always !== 'always') violations.push('HSTS must be added with "always" (error responses too)');
  }
  // add_header in a location replaces every add_header of the server, HSTS included.
  for (const { directive, path } of walk(https)) {
    if (directive.name === 'add_header' && path.length > 0) {
      violations.push(`add_header inside "${path.join(' > ')}" drops the server's headers`);
    }
  }
  for (const header of ['X-Content-Type-Options', 'X-Request-ID']) {
    if (!directives(https, 'add_header').some((d) => d.args[0] === header && d.args.at(-1) === 'always')) {
      violations.push(`${header} must be added with "always"`);
    }
  }

  const redirect = walk(http)
    .map(({ directive }) => directive)
    .filter((d) => d.name === 'return');
  if (
    redirect.length !== 1 ||
    redirect[0]!.args[0] !== '308' ||
    !/^https:\/\/.*\$request_uri$/.test(redirect[0]!.args[1] ?? '')
  ) {
    violations.push('the plain server must answer every request with 308 to https://…$request_uri');
  }
  if (walk(http).some(({ directive }) => directive.name === 'proxy_pass')) {
    violations.push('the plain server must not proxy');
  }

  if (one(httpBlock, 'server_tokens')?.args[0] !== 'off') violations.push('server_tokens must be off');
  if (one(httpBlock, 'client_max_body_size')?.args[0] !== '64k')
    violations.push('client_max_body_size must be 64k');
  if (one(httpBlock, 'limit_req_status')?.args[0] !== '429') violations.push('limit_req_status must be 429');
  if (!/zone=\w+:\d+m/.test(one(httpBlock, 'limit_req_zone')?.args.join(' ') ?? '')) {
    violations.push('limit_req_zone must define a zone');
  }
  if (!/^zone=\w+$/.test(one(https, 'limit_req')?.args[0] ?? ''))
    violations.push('the TLS server must limit_req');

  const metrics = directives(https, 'location').filter((location) =>
    location.args.join(' ').includes('/metrics'),
  );
  const blocked = metrics.some((location) =>
    (location.block ?? []).some(
      (d) =>
        (d.name === 'return' && ['403', '404'].includes(d.args[0]!)) ||
        (d.name === 'deny' && d.args[0] === 'all'),
    ),
  );
  if (!blocked) violations.push('/metrics must be answered 403/404 by nginx');
  return violations;
}
