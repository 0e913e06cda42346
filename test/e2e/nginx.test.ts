// Debian's real nginx runs the project's deploy/nginx/nginx.conf (rendered for loopback ports by
// test/helpers/nginx.ts) with a certificate fresh from scripts/generate-cert.sh, in front of the running
// service; curl and openssl are the clients. A second nginx points at a port nothing listens on, for
// nginx's own 502.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedOriginalLoans } from '../../src/loans/seed.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import {
  type CertFiles,
  CURL_PATH,
  type CurlResponse,
  generateCert,
  handshake,
  type RunningNginx,
  skipWithout,
  startNginx,
} from '../helpers/nginx.ts';
import { freePort } from '../helpers/ports.ts';
import { makeTempDir, removeTempDir, run, waitFor } from '../helpers/process.ts';

const SETUP_TIMEOUT_MS = 60_000;
const HSTS = /^max-age=(\d+)(;|$)/;
const TWO_YEARS = 63_072_000;
const NGINX_REQUEST_ID = /^[0-9a-f]{32}$/;
// Its own address, so that its rate-limit bucket is not the one the other tests draw from.
const BURST_CLIENT = '127.0.0.2';
const BURST_SIZE = 60;

function expectHsts(response: CurlResponse): void {
  const match = HSTS.exec(response.header('strict-transport-security'));
  expect(match, response.header('strict-transport-security')).not.toBeNull();
  expect(Number(match![1])).toBeGreaterThanOrEqual(TWO_YEARS);
}

function expectProblem(response: CurlResponse, status: number, type: string): Record<string, unknown> {
  expect(response.status, response.body).toBe(status);
  expect(response.header('content-type')).toMatch(/^application\/problem\+json(; charset=utf-8)?$/);
  const problem = JSON.parse(response.body) as Record<string, unknown>;
  expect(problem).toMatchObject({ type: `https://branchloans.com/problems/${type}`, status });
  expect(typeof problem.title).toBe('string');
  expect(problem.request_id).toBe(response.header('x-request-id'));
  return problem;
}

describe.skipIf(skipWithout(['nginx', 'openssl', 'curl']))(
  'nginx terminating TLS for the running service',
  () => {
    let t: TestApp | undefined;
    let nginx: RunningNginx | undefined;
    let deadUpstream: RunningNginx | undefined;
    let certDir: string | undefined;
    let cert: CertFiles;
    let apiOrigin: string;

    beforeAll(async () => {
      t = await buildTestApp({ TRUST_PROXY: '127.0.0.1' });
      await seedOriginalLoans(t.pool, t.config);
      apiOrigin = await t.app.listen({ host: '127.0.0.1', port: 0 });
      certDir = await makeTempDir('branch-loans-cert-');
      cert = await generateCert(join(certDir, 'certs'));
      nginx = await startNginx(new URL(apiOrigin).host, cert);
      deadUpstream = await startNginx(`127.0.0.1:${await freePort()}`, cert);
    }, SETUP_TIMEOUT_MS);

    afterAll(async () => {
      const stopped = await Promise.allSettled([nginx?.stop(), deadUpstream?.stop()]);
      await t?.close();
      if (certDir) await removeTempDir(certDir);
      for (const result of stopped) if (result.status === 'rejected') throw result.reason;
    });

    /** The service's completion log line of the request with `requestId`. */
    function serviceLine(requestId: string) {
      return waitFor(`the service's log line of ${requestId}`, () =>
        t!.logs.find((line) => line.request_id === requestId && line.msg === 'request completed'),
      );
    }

    it('serves the API over HTTPS with the generated certificate, over HTTP/2, with HSTS', async () => {
      const response = await nginx!.curl('/api/loans');
      expect(response.status, response.body).toBe(200);
      expect(response.header('content-type')).toMatch(/^application\/json/);
      const loans = JSON.parse(response.body) as { id: string }[];
      expect(loans.map((loan) => loan.id)).toEqual(
        [5, 4, 3, 2, 1].map((n) => `00000000-0000-0000-0000-00000000000${n}`),
      );
      expectHsts(response);
      expect(response.header('x-content-type-options')).toBe('nosniff');
      expect(response.headers.server).toEqual(['nginx']);

      const version = await run(CURL_PATH, [
        ...nginx!.curlArgs(),
        '-o',
        '/dev/null',
        '-w',
        '%{http_version}',
        `${nginx!.origin()}/health`,
      ]);
      expect(version.stdout).toBe('2');
    });

    it('sends HSTS on the service’s own 404 problem', async () => {
      const response = await nginx!.curl('/api/no-such-thing');
      expectProblem(response, 404, 'not-found');
      expectHsts(response);
    });

    it('answers 502 as problem+json with HSTS when the service cannot be reached', async () => {
      const response = await deadUpstream!.curl('/api/loans', {
        headers: { 'X-Request-ID': 'e2e-nginx-502' },
      });
      const problem = expectProblem(response, 502, 'service-unavailable');
      expect(problem).toMatchObject({
        title: 'Service unavailable',
        instance: '/api/loans',
        request_id: 'e2e-nginx-502',
      });
      expectHsts(response);
    });

    it('redirects plain HTTP with 308 to HTTPS, keeping path and query, without HSTS', async () => {
      const response = await nginx!.curl('/api/loans?status=pending&limit=2', { http: true });
      expect(response.status).toBe(308);
      expect(response.header('location')).toBe(`${nginx!.origin()}/api/loans?status=pending&limit=2`);
      expect(response.headers['strict-transport-security']).toBeUndefined();

      const post = await nginx!.curl('/api/loans', { http: true, method: 'POST' });
      expect(post.status).toBe(308);
    });

    it('follows the redirect to the same answer as HTTPS', async () => {
      const followed = await nginx!.curl('/api/loans/00000000-0000-0000-0000-000000000002', {
        http: true,
        extraArgs: [
          '--location',
          '--cacert',
          cert.crt,
          '--resolve',
          `branchloans.com:${nginx!.httpsPort}:127.0.0.1`,
        ],
      });
      expect(followed.status).toBe(200);
      expect(JSON.parse(followed.body)).toMatchObject({
        id: '00000000-0000-0000-0000-000000000002',
        currency: 'INR',
      });
    });

    it.each([
      ['TLS 1.0', '-tls1'],
      ['TLS 1.1', '-tls1_1'],
    ])('refuses %s with a protocol-version alert', async (_name, flag) => {
      const result = await handshake(nginx!.httpsPort, cert, [flag, '-cipher', 'DEFAULT:@SECLEVEL=0']);
      expect(result.code).not.toBe(0);
      expect(result.protocol).toBeUndefined();
      // The server's alert, not a client that could not even offer the version (see DESIGN.md).
      expect(result.stderr).toMatch(/alert protocol version/);
    });

    it.each([
      ['TLSv1.2', '-tls1_2'],
      ['TLSv1.3', '-tls1_3'],
    ])('completes a verified %s handshake', async (protocol, flag) => {
      const result = await handshake(nginx!.httpsPort, cert, [flag]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.protocol).toBe(protocol);
      expect(result.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    });

    it('refuses a TLS 1.2 cipher outside the intermediate list', async () => {
      const result = await handshake(nginx!.httpsPort, cert, [
        '-tls1_2',
        '-cipher',
        'ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0',
      ]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/alert handshake failure/);
    });

    it('passes the client’s X-Request-ID to the service and back', async () => {
      const response = await nginx!.curl('/api/loans', { headers: { 'X-Request-ID': 'e2e-nginx-1' } });
      expect(response.status).toBe(200);
      expect(response.header('x-request-id')).toBe('e2e-nginx-1');
      expect(await serviceLine('e2e-nginx-1')).toMatchObject({ path: '/api/loans', status: 200 });
    });

    it('generates a request id when there is none, and the service logs that one', async () => {
      const response = await nginx!.curl('/api/stats');
      expect(response.status, response.body).toBe(200);
      const id = response.header('x-request-id');
      expect(id).toMatch(NGINX_REQUEST_ID);
      expect(await serviceLine(id)).toMatchObject({ path: '/api/stats' });
    });

    it('replaces a malformed X-Request-ID, as the service would', async () => {
      const response = await nginx!.curl('/health', {
        headers: { 'X-Request-ID': 'has spaces "and quotes"' },
      });
      const id = response.header('x-request-id');
      expect(id).toMatch(NGINX_REQUEST_ID);
      expect(await serviceLine(id)).toMatchObject({ path: '/health' });
    });

    it('tells the service the client’s address and scheme, not what the client claims', async () => {
      const response = await nginx!.curl('/liveness', {
        headers: { 'X-Forwarded-For': '203.0.113.9', 'X-Request-ID': 'e2e-nginx-xff' },
        extraArgs: ['--interface', BURST_CLIENT],
      });
      expect(response.status).toBe(200);
      expect(await serviceLine('e2e-nginx-xff')).toMatchObject({ client_ip: BURST_CLIENT });
    });

    it('refuses /metrics from outside, in every spelling, while the service serves it directly', async () => {
      for (const path of [
        '/metrics',
        '/metrics/',
        '//metrics',
        '/%6Detrics',
        '/METRICS',
        '/api/../metrics',
        '/metrics?format=text',
      ]) {
        const response = await nginx!.curl(path, { extraArgs: ['--path-as-is'] });
        // nginx's own answer: the service words its 404 "No route matches …".
        expect(expectProblem(response, 404, 'not-found').detail, path).toBe('no such resource');
        expectHsts(response);
      }
      const direct = await fetch(`${apiOrigin}/metrics`);
      expect(direct.status).toBe(200);
      expect(await direct.text()).toMatch(/^# HELP /m);
    });

    it('answers a body over 64 KiB with 413 problem+json before the service sees it', async () => {
      const file = join(certDir!, 'large.json');
      await writeFile(file, JSON.stringify({ borrower_id: 'x'.repeat(70 * 1024) }));
      const response = await nginx!.curl('/api/loans', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Request-ID': 'e2e-nginx-413' },
        bodyFile: file,
      });
      const problem = expectProblem(response, 413, 'payload-too-large');
      // nginx's wording: the service's own 413 says "The request body exceeds the limit of …".
      expect(problem).toMatchObject({
        title: 'Payload too large',
        detail: 'request bodies are limited to 65536 bytes',
        instance: '/api/loans',
        request_id: 'e2e-nginx-413',
      });
      expectHsts(response);
      expect(t!.logs.some((line) => line.request_id === 'e2e-nginx-413')).toBe(false);
    });

    it('writes one JSON access log line per request, with the request id', async () => {
      await nginx!.curl('/api/loans?limit=1', {
        headers: { 'X-Request-ID': 'e2e-nginx-log', 'User-Agent': 'e2e "quoted" agent' },
      });
      const line = await waitFor('the access log line', async () =>
        (await nginx!.accessLog()).find((entry) => entry.request_id === 'e2e-nginx-log'),
      );
      expect(line).toMatchObject({
        request_id: 'e2e-nginx-log',
        remote_addr: '127.0.0.1',
        method: 'GET',
        uri: '/api/loans?limit=1',
        status: 200,
        user_agent: 'e2e "quoted" agent',
        host: 'branchloans.com',
        protocol: 'HTTP/2.0',
        tls: 'TLSv1.3',
      });
      expect(line.bytes).toBeGreaterThan(0);
      expect(typeof line.request_time).toBe('number');
      expect(line.upstream_response_time).toMatch(/^\d+\.\d{3}$/);
      expect(Date.parse(String(line.time))).not.toBeNaN();
    });

    // Last: it empties its client's bucket.
    it('answers a burst over the per-client limit with 429 problem+json and Retry-After', async () => {
      const bodies = await makeTempDir('branch-loans-burst-');
      try {
        const result = await run(CURL_PATH, [
          ...nginx!.curlArgs(),
          '--interface',
          BURST_CLIENT,
          '--output',
          join(bodies, 'response-#1.json'),
          '--write-out',
          '%{http_code}\t%{content_type}\t%header{retry-after}\t%header{strict-transport-security}\n',
          `${nginx!.origin()}/health?n=[1-${BURST_SIZE}]`,
        ]);
        expect(result.code, result.stderr).toBe(0);
        const responses = result.stdout
          .trim()
          .split('\n')
          .map((line, index) => {
            const [status, contentType, retryAfter, hsts] = line.split('\t');
            return { n: index + 1, status: Number(status), contentType, retryAfter, hsts };
          });
        expect(responses).toHaveLength(BURST_SIZE);
        const limited = responses.filter((response) => response.status === 429);
        const served = responses.filter((response) => response.status === 200);
        expect(limited.length + served.length).toBe(BURST_SIZE);
        // A burst of 20 passes at once, plus what 10 r/s refills while the burst lasts.
        expect(served.length).toBeGreaterThanOrEqual(20);
        expect(limited.length).toBeGreaterThan(0);
        for (const response of limited) {
          expect(response).toMatchObject({ contentType: 'application/problem+json', retryAfter: '1' });
          expect(response.hsts).toMatch(HSTS);
        }
        const { n } = limited[0]!;
        const problem = JSON.parse(await readFile(join(bodies, `response-${n}.json`), 'utf8'));
        expect(problem).toMatchObject({
          type: 'https://branchloans.com/problems/rate-limited',
          title: 'Too many requests',
          status: 429,
          instance: '/health',
        });
        expect(problem.request_id).toMatch(NGINX_REQUEST_ID);
      } finally {
        await removeTempDir(bodies);
      }
    });
  },
);
