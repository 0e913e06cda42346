// Response headers for browsers and caches (helmet), and CORS for the origins in CORS_ORIGINS only.
// HSTS is left to the edge (deploy/nginx), which alone knows that the client came over TLS.
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
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
 * The same headers for an answer that no hook sees: a URL the router cannot decode (app.ts). A test
 * holds them equal to what the hooks below send on any other error.
 */
export const HEADERS_WITHOUT_HOOKS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none';frame-ancestors 'none'",
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};

/**
 * Registers the headers as onRequest hooks, so that they are on every response, problems included:
 * register before the hooks that may refuse a request (authentication, rate limit).
 */
export async function registerSecurityHeaders(app: FastifyInstance, config: Config): Promise<void> {
  // Swagger UI under /docs sends its own policy, which lets its scripts and styles load
  // (platform/openapi.ts, staticCSP); the API's policy below would block them.
  app.addHook('onRoute', (route) => {
    if (DOCS_PATH.test(route.url)) route.helmet = { contentSecurityPolicy: false };
  });
  await app.register(helmet, {
    // JSON loads nothing and is framed by no one.
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    },
    strictTransportSecurity: false,
    xFrameOptions: { action: 'deny' },
  });
  // Loans and keys' answers are never for a shared cache or the browser's disk.
  app.addHook('onRequest', async (request, reply) => {
    if (API_PATH.test(requestPath(request))) reply.header('cache-control', 'no-store');
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
