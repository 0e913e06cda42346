// Authentication and roles (API.md §6). A route declares the least role it needs (`config.role`); routes
// without one (probes, metrics, docs) are open. A key is checked against the database once per
// VERIFIED_KEY_TTL_MS per process, so a revoked key stops working everywhere within that time.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import {
  type ApiKey,
  countActiveKeys,
  findActiveKey,
  insertKey,
  ROLES,
  type Role,
  touchKey,
} from './api-keys.ts';
import type { Pool } from './database.ts';
import { AppError } from './errors.ts';

export const ANONYMOUS = 'anonymous';
export const VERIFIED_KEY_TTL_MS = 5000;
const CACHE_LIMIT = 10_000;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The least role that may call the route; unset: open to everyone. */
    role?: Role;
  }
  interface FastifyRequest {
    /** Who is calling, as events, idempotency scopes and logs record it: the API key's id, or "anonymous". */
    actor: string;
    apiKey: ApiKey | undefined;
    /** The request presented a key that is malformed, unknown, revoked or expired. */
    presentedBadKey: boolean;
  }
}

/** Whether `role` may do what `required` may (roles are ordered: each includes the ones before it). */
function hasRole(role: Role, required: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(required);
}

const unauthorized = (detail: string) =>
  new AppError('unauthorized', { detail, headers: { 'www-authenticate': 'Bearer' } });

/** The key the request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`; '' when malformed. */
function presentedKey(request: FastifyRequest): string | undefined {
  const { authorization, 'x-api-key': apiKey } = request.headers;
  if (typeof apiKey === 'string') return apiKey.trim();
  if (authorization === undefined) return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(authorization);
  return match?.[1] ?? '';
}

/** Verified keys by the hash of what was presented, each for VERIFIED_KEY_TTL_MS. */
function keyVerifier(pool: Pool) {
  const verified = new Map<string, { key: ApiKey | undefined; until: number }>();
  return async (presented: string): Promise<ApiKey | undefined> => {
    const hash = createHash('sha256').update(presented).digest('base64');
    const now = Date.now();
    let entry = verified.get(hash);
    if (!entry || entry.until <= now) {
      entry = { key: await findActiveKey(pool, presented), until: now + VERIFIED_KEY_TTL_MS };
      if (verified.size >= CACHE_LIMIT) verified.clear();
      verified.set(hash, entry);
      // At most one write a minute per key; the request does not wait for it.
      if (entry.key) touchKey(pool, entry.key.id).catch(() => {});
    }
    const { key } = entry;
    return key && (key.expiresAt === null || key.expiresAt.getTime() > now) ? key : undefined;
  };
}

/**
 * Identifies the caller. Runs before rate limiting, so that a key has its own budget while bad keys
 * are counted against their address; `registerAuthorization` then refuses what needs refusing.
 */
export function registerAuthentication(app: FastifyInstance, pool: Pool): void {
  const verify = keyVerifier(pool);
  app.decorateRequest('actor', ANONYMOUS);
  app.decorateRequest('apiKey', undefined);
  app.decorateRequest('presentedBadKey', false);

  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/api') && !route.config?.role) {
      throw new Error(`${route.method} ${route.url} declares no role: every /api route must (config.role)`);
    }
  });

  app.addHook('onRequest', async (request) => {
    if (!request.routeOptions.config.role) return;
    const presented = presentedKey(request);
    if (presented === undefined) return;
    const key = presented === '' ? undefined : await verify(presented);
    if (!key) {
      request.presentedBadKey = true;
      return;
    }
    request.apiKey = key;
    request.actor = key.id;
  });
}

/** Refuses the request when its key is bad, missing while required, or lacks the route's role. */
export function registerAuthorization(app: FastifyInstance, config: Config): void {
  app.addHook('onRequest', async (request) => {
    const required = request.routeOptions.config.role;
    if (!required) return;
    if (request.presentedBadKey) {
      throw unauthorized('The API key is not valid, or it was revoked or has expired');
    }
    const key = request.apiKey;
    if (!key) {
      if (config.auth.required)
        throw unauthorized('Send an API key: Authorization: Bearer <key>, or X-API-Key');
      return;
    }
    if (!hasRole(key.role, required)) {
      throw new AppError('forbidden', {
        detail: `This needs the ${required} role; the API key has ${key.role}`,
      });
    }
  });
}

/**
 * Before serving: registers the bootstrap admin key, if one is configured, and refuses to go on when
 * authentication is required and no key could ever be presented. Returns a warning to log when it is off.
 */
export async function prepareAuthentication(pool: Pool, config: Config): Promise<string | undefined> {
  const { required, bootstrapAdminKey } = config.auth;
  if (bootstrapAdminKey !== undefined) {
    await insertKey(pool, bootstrapAdminKey, { name: 'bootstrap admin', role: 'admin' }, { ifAbsent: true });
  }
  if (!required) {
    return `AUTHENTICATION IS OFF (APP_ENV=${config.env}, AUTH_REQUIRED=false): requests without an API key have full access`;
  }
  if ((await countActiveKeys(pool)) === 0) {
    throw new Error(
      'authentication is required and no active API key exists: set BOOTSTRAP_ADMIN_KEY_FILE to a file holding ' +
        `a key of the form bl_${config.auth.keyTag}_<random> (README: first run), or create one with ` +
        '`npm run keys -- create --name NAME --role admin`',
    );
  }
  return undefined;
}
