// Response headers for browsers and caches (helmet), and CORS for the origins in CORS_ORIGINS only.

import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';
import type { Config } from '../config.ts';
import { requestPath } from './http.ts';

const API_PATH = /^\/api(\/|$)/;
const DOCS_PATH = /^\/docs(\/|$)/;

// What browser clients send, and what they may read, beyond the CORS-safelisted headers.
const REQUEST_HEADERS = [
  'Authorization',
  'X-API-Key',
  'Idempotency-Key',
  'If-Match',
  'X-Request-ID',
  'Content-Type',
];
const RESPONSE_HEADERS = [
  'ETag',
  'Location',
  'Link',
  'Retry-After',
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'RateLimit-Policy',
  'X-Request-ID',
  'Idempotent-Replayed',
];
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * Runs helmet once and keeps the headers it sets: they depend only on the options, and building its
 * middleware for every request (as @fastify/helmet does) cost about 4% of a read (BENCHMARKS.md, Profiles).
 */
function headersOf(options: HelmetOptions): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: string) => {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
  };
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, () => {});
  return Object.freeze(headers);
}

const HELMET: HelmetOptions = {
  // JSON loads nothing and is framed by no one.
  contentSecurityPolicy: {
    useDefaults: false,
    directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
  },
  // HSTS is the edge's (deploy/nginx): only it knows the client came over TLS.
  strictTransportSecurity: false,
  xFrameOptions: { action: 'deny' },
};
const BASE_HEADERS = headersOf(HELMET);
// Swagger UI under /docs sends its own policy, which lets its scripts and styles load (platform/openapi.ts,
// staticCSP); the API's policy would block them.
const DOCS_HEADERS = headersOf({ ...HELMET, contentSecurityPolicy: false });
// Loans and keys' answers are never for a shared cache or the browser's disk.
const NO_STORE = { 'cache-control': 'no-store' } as const;

/** An /api answer's headers; also set on one that no hook sees, a URL the router cannot decode (app.ts). */
export const HEADERS_WITHOUT_HOOKS: Readonly<Record<string, string>> = { ...BASE_HEADERS, ...NO_STORE };

function headersFor(path: string): Readonly<Record<string, string>> {
  if (API_PATH.test(path)) return HEADERS_WITHOUT_HOOKS;
  return DOCS_PATH.test(path) ? DOCS_HEADERS : BASE_HEADERS;
}

/**
 * Registers the headers as an onRequest hook, so that they are on every response, problems included:
 * register before the hooks that may refuse a request (authentication, rate limit).
 */
export async function registerSecurityHeaders(app: FastifyInstance, config: Config): Promise<void> {
  app.addHook('onRequest', async (request, reply) => {
    reply.headers(headersFor(requestPath(request)));
  });

  if (config.corsOrigins.length === 0) return;
  const allowed = new Set(config.corsOrigins);
  await app.register(cors, {
    // false (rather than a list) makes a preflight from any other origin fall through to the router,
    // which refuses it like any unsupported method.
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: REQUEST_HEADERS,
    exposedHeaders: RESPONSE_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_S,
  });
}
