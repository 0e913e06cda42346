// deploy/nginx/nginx.conf and scripts/generate-cert.sh: nginx accepts the configuration, the TLS and HTTP
// policy holds on the file as written (and the policy check catches weakened copies), and the certificate
// script is shellcheck-clean, idempotent and names every SAN.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CertFiles,
  type Directive,
  directives,
  edgePolicyViolations,
  edgeServers,
  fingerprint,
  GENERATE_CERT,
  generateCert,
  INTERMEDIATE_CIPHERS,
  NGINX_CONFIG,
  nginxTest,
  OPENSSL_PATH,
  parseNginxConfig,
  renderNginxConfig,
  SHELLCHECK_PATH,
  skipWithout,
  walk,
} from '../helpers/nginx.ts';
import { makeTempDir, removeTempDir, run } from '../helpers/process.ts';

const CONF = readFileSync(NGINX_CONFIG, 'utf8');
const SANS = 'DNS:branchloans.com, DNS:www.branchloans.com, DNS:localhost, IP Address:127.0.0.1';

const args = (block: Directive[], name: string) => directives(block, name).map((d) => d.args.join(' '));

describe('nginx.conf as written', () => {
  const conf = parseNginxConfig(CONF);
  const { http, https, httpBlock } = edgeServers(conf);
  const proxyHeaders = Object.fromEntries(
    directives(https, 'proxy_set_header').map((d) => [d.args[0]!, d.args.slice(1).join(' ')]),
  );

  it('complies with the edge policy', () => {
    expect(edgePolicyViolations(CONF)).toEqual([]);
  });

  it('offers TLS 1.2 and 1.3 only, with the intermediate ECDHE suites and no session tickets', () => {
    expect(walk(conf).filter(({ directive }) => directive.name === 'ssl_protocols').length).toBe(1);
    expect(args(https, 'ssl_protocols')).toEqual(['TLSv1.2 TLSv1.3']);
    expect(CONF).not.toMatch(/TLSv1(\.1)?[\s;]/);
    expect(args(https, 'ssl_ciphers')[0]!.split(':')).toEqual(INTERMEDIATE_CIPHERS);
    expect(args(https, 'ssl_prefer_server_ciphers')).toEqual(['off']);
    expect(args(https, 'ssl_session_tickets')).toEqual(['off']);
    expect(args(https, 'ssl_session_cache')).toEqual(['shared:TLS:10m']);
    expect(args(https, 'ssl_certificate')).toEqual(['/etc/nginx/certs/branchloans.com.crt']);
    expect(args(https, 'ssl_certificate_key')).toEqual(['/etc/nginx/certs/branchloans.com.key']);
    expect(args(https, 'listen')).toEqual(['443 ssl http2 default_server']);
  });

  it('adds HSTS for two years and the security headers to every HTTPS response, errors included', () => {
    expect(args(https, 'add_header')).toEqual([
      'Strict-Transport-Security max-age=63072000; includeSubDomains always',
      'X-Content-Type-Options nosniff always',
      'X-Frame-Options DENY always',
      'Referrer-Policy no-referrer always',
      "Content-Security-Policy frame-ancestors 'none' always",
      'X-Request-ID $req_id always',
      'Retry-After $retry_after always',
    ]);
    expect(args(httpBlock, 'server_tokens')).toEqual(['off']);
  });

  it('answers plain HTTP on port 80 with nothing but a 308 to HTTPS', () => {
    expect(args(http, 'listen')).toEqual(['80 default_server']);
    expect(
      walk(http)
        .filter(({ directive }) => directive.name === 'return')
        .map(({ directive }) => directive.args),
    ).toEqual([['308', 'https://$host$request_uri']]);
  });

  it('proxies to the api service over kept-alive HTTP/1.1 with the forwarding headers and the request id', () => {
    const [upstream] = directives(httpBlock, 'upstream');
    expect(upstream!.args).toEqual(['api']);
    expect(args(upstream!.block!, 'server')).toEqual(['api:8000']);
    expect(args(upstream!.block!, 'keepalive')).toEqual(['32']);
    expect(args(https, 'proxy_http_version')).toEqual(['1.1']);
    expect(proxyHeaders).toEqual({
      Connection: '',
      Host: '$host',
      'X-Real-IP': '$remote_addr',
      'X-Forwarded-For': '$remote_addr',
      'X-Forwarded-Proto': '$scheme',
      'X-Forwarded-Host': '$host',
      'X-Request-ID': '$req_id',
    });
    // Headers that nginx adds itself are not passed on from the API as well: one copy of each.
    expect(args(https, 'proxy_hide_header')).toEqual([
      'X-Request-ID',
      'X-Content-Type-Options',
      'X-Frame-Options',
      'Referrer-Policy',
    ]);
    const [location] = directives(https, 'location').filter((d) => d.args.join(' ') === '/');
    expect(args(location!.block!, 'proxy_pass')).toEqual(['http://api']);
    // The client's id only when the API would accept it too (1–128 of [A-Za-z0-9._:-]).
    const [requestIdMap] = directives(httpBlock, 'map').filter((d) => d.args[1] === '$req_id');
    expect(requestIdMap!.args[0]).toBe('$http_x_request_id');
    expect(requestIdMap!.block!.map((d) => [d.name, ...d.args])).toEqual([
      ['~^[A-Za-z0-9._:-]{1,128}$', '$http_x_request_id'],
      ['default', '$request_id'],
    ]);
  });

  it('keeps timeouts and the body limit consistent with the API', () => {
    expect(args(httpBlock, 'client_max_body_size')).toEqual(['64k']);
    expect(args(httpBlock, 'client_header_timeout')).toEqual(['10s']);
    expect(args(httpBlock, 'client_body_timeout')).toEqual(['10s']);
    expect(args(https, 'proxy_connect_timeout')).toEqual(['2s']);
    expect(args(https, 'proxy_read_timeout')).toEqual(['15s']);
    expect(args(https, 'proxy_send_timeout')).toEqual(['15s']);
  });

  it('limits requests per client address and answers 429, 413 and 502–504 as problem+json', () => {
    expect(args(httpBlock, 'limit_req_zone')).toEqual(['$binary_remote_addr zone=per_ip:10m rate=10r/s']);
    expect(args(https, 'limit_req')).toEqual(['zone=per_ip burst=20 nodelay']);
    expect(args(https, 'error_page')).toEqual([
      '413 = @payload_too_large',
      '429 = @rate_limited',
      '502 = @bad_gateway',
      '503 = @service_unavailable',
      '504 = @gateway_timeout',
    ]);
    const problems = directives(https, 'location').filter(
      (d) => d.args[0]!.startsWith('@') || d.args.join(' ').includes('/metrics'),
    );
    const expected: Record<string, [string, string]> = {
      '@payload_too_large': ['413', 'payload-too-large'],
      '@rate_limited': ['429', 'rate-limited'],
      '@bad_gateway': ['502', 'service-unavailable'],
      '@service_unavailable': ['503', 'service-unavailable'],
      '@gateway_timeout': ['504', 'service-unavailable'],
      '~* ^/metrics(/.*)?$': ['404', 'not-found'],
    };
    expect(problems.map((d) => d.args.join(' ')).sort()).toEqual(Object.keys(expected).sort());
    for (const location of problems) {
      const [status, type] = expected[location.args.join(' ')]!;
      const block = location.block!;
      expect(args(block, 'default_type')).toEqual(['application/problem+json']);
      expect(directives(block, 'types')).toEqual([{ name: 'types', args: [], block: [] }]);
      const [code, body] = directives(block, 'return')[0]!.args;
      expect(code).toBe(status);
      // The body with its variables filled in as nginx would: JSON of the project's problem shape.
      const problem = JSON.parse(body!.replace('$problem_instance', '/api/loans').replace('$req_id', 'abc'));
      expect(problem).toMatchObject({
        type: `https://branchloans.com/problems/${type}`,
        status: Number(status),
        instance: '/api/loans',
        request_id: 'abc',
      });
      expect(Object.keys(problem)).toEqual(['type', 'title', 'status', 'detail', 'instance', 'request_id']);
    }
  });

  it('logs every request as one JSON object carrying the request id', () => {
    const [format] = directives(httpBlock, 'log_format');
    expect(format!.args.slice(0, 2)).toEqual(['json', 'escape=json']);
    const template = format!.args.slice(2).join('');
    const sample = JSON.parse(template.replace(/"?\$(\w+)"?/g, (_m, name: string) => JSON.stringify(name)));
    expect(Object.keys(sample)).toEqual(
      expect.arrayContaining([
        'time',
        'request_id',
        'remote_addr',
        'method',
        'uri',
        'status',
        'bytes',
        'request_time',
        'upstream_response_time',
        'user_agent',
      ]),
    );
    expect(sample.request_id).toBe('req_id');
    expect(args(httpBlock, 'access_log')).toEqual(['/dev/stdout json']);
  });
});

describe('the edge policy check', () => {
  const weakened: [string, (conf: string) => string][] = [
    [
      'TLS 1.1 allowed',
      (c) => c.replace('ssl_protocols TLSv1.2 TLSv1.3;', 'ssl_protocols TLSv1.1 TLSv1.2 TLSv1.3;'),
    ],
    [
      'TLS 1.0 allowed',
      (c) => c.replace('ssl_protocols TLSv1.2 TLSv1.3;', 'ssl_protocols TLSv1 TLSv1.2 TLSv1.3;'),
    ],
    ['TLS 1.3 dropped', (c) => c.replace('ssl_protocols TLSv1.2 TLSv1.3;', 'ssl_protocols TLSv1.2;')],
    ['a CBC suite', (c) => c.replace('ssl_ciphers ', 'ssl_ciphers ECDHE-RSA-AES128-SHA:')],
    [
      'server cipher preference',
      (c) => c.replace('ssl_prefer_server_ciphers off;', 'ssl_prefer_server_ciphers on;'),
    ],
    ['HSTS without always', (c) => c.replace('includeSubDomains" always;', 'includeSubDomains";')],
    ['HSTS of one year', (c) => c.replace('max-age=63072000', 'max-age=31536000')],
    [
      'HSTS dropped in a location',
      (c) => c.replace('proxy_pass http://api;', 'proxy_pass http://api;\n add_header X-Extra 1 always;'),
    ],
    ['a 301 redirect', (c) => c.replace('return 308 https://', 'return 301 https://')],
    ['server tokens', (c) => c.replace('server_tokens off;', 'server_tokens on;')],
    ['a 1 MB body limit', (c) => c.replace('client_max_body_size 64k;', 'client_max_body_size 1m;')],
    ['no rate limit', (c) => c.replace('limit_req zone=per_ip burst=20 nodelay;', '')],
    ['/metrics proxied', (c) => c.replace('location ~* ^/metrics(/.*)?$ {', 'location = /unused {')],
  ];

  it.each(weakened)('rejects a copy with %s', (_name, weaken) => {
    const copy = weaken(CONF);
    expect(copy).not.toBe(CONF);
    expect(edgePolicyViolations(copy)).not.toEqual([]);
  });
});

describe('rendering nginx.conf for loopback', () => {
  const settings = {
    prefix: '/tmp/prefix',
    httpPort: 18080,
    httpsPort: 18443,
    upstream: '127.0.0.1:18000',
    cert: { dir: '/tmp/certs', crt: '/tmp/certs/a.crt', key: '/tmp/certs/a.key' },
  };

  it('changes the tagged lines and adds temp paths, nothing else', () => {
    const before = CONF.split('\n');
    const after = renderNginxConfig(settings).split('\n');
    const removed = before.filter((line) => !after.includes(line)).map((line) => line.trim());
    const added = after.filter((line) => !before.includes(line)).map((line) => line.trim());
    expect(removed.filter((line) => !line.includes('# render:'))).toEqual([]);
    expect(removed).toHaveLength(7);
    expect(added).toEqual([
      'client_body_temp_path /tmp/prefix/client_body_temp;',
      'proxy_temp_path /tmp/prefix/proxy_temp;',
      'fastcgi_temp_path /tmp/prefix/fastcgi_temp;',
      'uwsgi_temp_path /tmp/prefix/uwsgi_temp;',
      'scgi_temp_path /tmp/prefix/scgi_temp;',
      'access_log /tmp/prefix/access.log json;',
      'server 127.0.0.1:18000;',
      'listen 127.0.0.1:18080 default_server;',
      'return 308 https://$host:18443$request_uri;',
      'listen 127.0.0.1:18443 ssl http2 default_server;',
      'ssl_certificate /tmp/certs/a.crt;',
      'ssl_certificate_key /tmp/certs/a.key;',
    ]);
  });

  it('fails loudly when a tagged line has changed', () => {
    expect(() => renderNginxConfig(settings, CONF.replace('server api:8000;', 'server api:9000;'))).toThrow(
      /render: upstream/,
    );
  });
});

describe.skipIf(skipWithout(['nginx', 'openssl']))('nginx -t', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTempDir('branch-loans-nginx-t-');
  });
  afterAll(() => removeTempDir(dir));

  it('accepts the configuration rendered for loopback with a generated certificate', async () => {
    const cert = await generateCert(join(dir, 'certs'));
    const rendered = renderNginxConfig({
      prefix: dir,
      httpPort: 18080,
      httpsPort: 18443,
      upstream: '127.0.0.1:18000',
      cert,
    });
    const result = await nginxTest(dir, rendered);
    expect(result.stderr).toMatch(/test is successful/);
    expect(result.stderr).not.toMatch(/\[warn\]/);
    expect(result.code).toBe(0);
  });
});

describe.skipIf(skipWithout(['shellcheck']))('scripts/generate-cert.sh with shellcheck', () => {
  it('is clean', async () => {
    const result = await run(SHELLCHECK_PATH, ['--severity=style', GENERATE_CERT]);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});

describe.skipIf(skipWithout(['openssl']))('scripts/generate-cert.sh', () => {
  let dir: string;
  let cert: CertFiles;
  const x509 = async (...options: string[]) => {
    const result = await run(OPENSSL_PATH, ['x509', '-in', cert.crt, '-noout', ...options]);
    expect(result.code, result.stderr).toBe(0);
    return result.stdout.trim();
  };

  beforeAll(async () => {
    dir = await makeTempDir('branch-loans-cert-');
    cert = await generateCert(join(dir, 'certs'));
  });
  afterAll(() => removeTempDir(dir));

  it('creates a P-256 certificate for branchloans.com with the four SANs, valid 825 days', async () => {
    expect(await x509('-ext', 'subjectAltName')).toBe(`X509v3 Subject Alternative Name: \n    ${SANS}`);
    expect(await x509('-subject')).toMatch(/CN = branchloans\.com$/);
    expect(await x509('-text')).toMatch(/ASN1 OID: prime256v1/);
    const start = Date.parse((await x509('-startdate')).replace('notBefore=', ''));
    const end = Date.parse((await x509('-enddate')).replace('notAfter=', ''));
    expect(Math.round((end - start) / 86_400_000)).toBe(825);
  });

  it('writes the key with mode 600, matching the certificate', async () => {
    expect(statSync(cert.key).mode & 0o777).toBe(0o600);
    const key = await run(OPENSSL_PATH, ['pkey', '-in', cert.key, '-pubout']);
    expect(key.stdout).toBe(`${await x509('-pubkey')}\n`);
  });

  it('keeps a valid certificate on a second run and replaces it with --force', async () => {
    const first = await fingerprint(cert.crt);
    const again = await generateCert(cert.dir);
    expect(again.stdout).toMatch(/^kept /);
    expect(await fingerprint(cert.crt)).toBe(first);
    const forced = await generateCert(cert.dir, ['--force']);
    expect(forced.stdout).toMatch(/^wrote /);
    expect(await fingerprint(cert.crt)).not.toBe(first);
    expect(await x509('-ext', 'subjectAltName')).toContain(SANS);
  });

  it('replaces a certificate that lacks a SAN or is about to expire', async () => {
    const other = join(dir, 'other');
    const make = (days: string, san: string) =>
      run('bash', [
        '-c',
        `mkdir -p "${other}" && openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout "${other}/branchloans.com.key" -out "${other}/branchloans.com.crt" -days ${days} -subj /CN=branchloans.com -addext subjectAltName=${san}`,
      ]);
    for (const [days, san] of [
      ['825', 'DNS:branchloans.com'],
      ['10', 'DNS:branchloans.com,DNS:www.branchloans.com,DNS:localhost,IP:127.0.0.1'],
    ] as const) {
      expect((await make(days, san)).code).toBe(0);
      const result = await generateCert(other);
      expect(result.stdout).toMatch(/^wrote /);
    }
  });

  it('writes to $CERT_DIR when no directory is given', async () => {
    const target = join(dir, 'from-env');
    const result = await run('bash', [GENERATE_CERT], { env: { ...process.env, CERT_DIR: target } });
    expect(result.code, result.stderr).toBe(0);
    expect(statSync(join(target, 'branchloans.com.crt')).isFile()).toBe(true);
  });

  it('rejects an unknown option', async () => {
    const result = await run('bash', [GENERATE_CERT, '--forse', join(dir, 'unused')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown option: --forse/);
  });
});
