// Security headers on every response, and CORS only for the origins in CORS_ORIGINS.
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS_WITHOUT_HOOKS } from '../../src/platform/security-headers.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

const APP_ORIGIN = 'https://app.branchloans.test';
const API_POLICY = "default-src 'none';frame-ancestors 'none'";

function expectSecurityHeaders(response: LightMyRequestResponse) {
  expect(response.headers['x-content-type-options']).toBe('nosniff');
  expect(response.headers['referrer-policy']).toBe('no-referrer');
  expect(response.headers['x-frame-options']).toBe('DENY');
  // HSTS is the edge's (deploy/nginx); nothing tells a client what the server runs.
  expect(response.headers['strict-transport-security']).toBeUndefined();
  expect(response.headers['x-powered-by']).toBeUndefined();
  expect(response.headers.server).toBeUndefined();
}

describe('security headers', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ CORS_ORIGINS: APP_ORIGIN });
  });
  afterAll(() => t.close());

  it('are on an API response, which no cache may store', async () => {
    const response = await t.app.inject({ url: '/api/loans' });
    expect(response.statusCode).toBe(200);
    expectSecurityHeaders(response);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['content-security-policy']).toBe(API_POLICY);
  });

  it.each([
    ['a validation problem', '/api/loans/not-a-uuid', 400],
    ['a not-found problem', '/api/no-such-thing', 404],
  ])('are on %s from /api', async (_what, url, status) => {
    const response = await t.app.inject({ url });
    expect(response.statusCode).toBe(status);
    expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expectSecurityHeaders(response);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['content-security-policy']).toBe(API_POLICY);
  });

  it('are the same on a URL the router cannot decode, which no hook sees', async () => {
    const undecodable = await t.app.inject({ url: '/api/loans/%zz' });
    expect(undecodable.statusCode).toBe(400);
    const notFound = await t.app.inject({ url: '/api/no-such-thing' });
    const security = (response: LightMyRequestResponse) =>
      Object.fromEntries(Object.keys(HEADERS_WITHOUT_HOOKS).map((name) => [name, response.headers[name]]));
    expect(security(undecodable)).toEqual(security(notFound));
    expectSecurityHeaders(undecodable);
    expect(undecodable.headers['cache-control']).toBe('no-store');
    expect(undecodable.headers['content-security-policy']).toBe(API_POLICY);
  });

  it('are on the probes, which caches are not told to skip', async () => {
    const response = await t.app.inject({ url: '/health' });
    expect(response.statusCode).toBe(200);
    expectSecurityHeaders(response);
    expect(response.headers['content-security-policy']).toBe(API_POLICY);
    expect(response.headers['cache-control']).toBeUndefined();
  });

  it('let /docs keep the one policy Swagger UI works with: its own scripts and styles, nothing else', async () => {
    for (const url of ['/docs', '/docs/static/swagger-initializer.js']) {
      const response = await t.app.inject({ url });
      expect(response.statusCode, url).toBe(200);
      expectSecurityHeaders(response);
      const policy = response.headers['content-security-policy'];
      expect(typeof policy, `${url}: one policy`).toBe('string');
      expect(policy).toContain("default-src 'self'");
      expect(policy).toContain("script-src 'self' ;");
      expect(policy).toContain("object-src 'none'");
      expect(policy).not.toContain("default-src 'none'");
    }
  });
});

describe('CORS', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ CORS_ORIGINS: `${APP_ORIGIN},https://other.branchloans.test` });
  });
  afterAll(() => t.close());

  const preflight = (app: TestApp['app'], origin: string) =>
    app.inject({
      method: 'OPTIONS',
      url: '/api/loans',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,idempotency-key,content-type',
      },
    });

  it('allows a preflight from a listed origin, with the headers clients send', async () => {
    const response = await preflight(t.app, APP_ORIGIN);
    expect(response.statusCode).toBe(204);
    expect(response.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    expect(response.headers['access-control-allow-methods']).toBe('GET, HEAD, POST');
    expect(response.headers['access-control-allow-headers']).toBe(
      'Authorization, X-API-Key, Idempotency-Key, If-Match, X-Request-ID, Content-Type',
    );
    expect(response.headers['access-control-max-age']).toBe('600');
    expect(response.headers['access-control-allow-credentials']).toBeUndefined();
    expect(response.headers.vary).toBe('Origin');
  });

  it('exposes the headers a browser client reads on a response to a listed origin', async () => {
    const response = await t.app.inject({ url: '/api/loans', headers: { origin: APP_ORIGIN } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    expect(response.headers['access-control-expose-headers']).toBe(
      'ETag, Location, Link, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, ' +
        'RateLimit-Policy, X-Request-ID, Idempotent-Replayed',
    );
    expect(response.headers.vary).toBe('Origin');
  });

  it('refuses a preflight from an origin that is not listed', async () => {
    const response = await preflight(t.app, 'https://evil.example');
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
    expect(response.headers['access-control-allow-methods']).toBeUndefined();
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe('GET, HEAD, POST');
    const plain = await t.app.inject({ url: '/api/loans', headers: { origin: 'https://evil.example' } });
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('leaves unknown paths 404', async () => {
    const response = await t.app.inject({ url: '/no-such-thing' });
    expect(response.statusCode).toBe(404);
    expect(response.json().type).toBe('https://branchloans.com/problems/not-found');
  });

  it('is off when CORS_ORIGINS is empty', async () => {
    const closed = await buildTestApp();
    try {
      const response = await preflight(closed.app, APP_ORIGIN);
      expect(response.statusCode).toBe(405);
      expect(response.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await closed.close();
    }
  });
});
