// Small facts about a request that several platform modules and routes need.
import type { FastifyRequest } from 'fastify';

const UNMATCHED_ROUTE = 'unmatched';

// An absolute-form target (RFC 9112 3.2.2, "GET http://host/path"), which the router routes by its path.
const ORIGIN = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/;

/** The request's path, without its query string (or the origin of an absolute-form target). */
export function requestPath(request: FastifyRequest): string {
  const path = request.url.split('?')[0] ?? request.url;
  return path.startsWith('/') ? path : path.replace(ORIGIN, '') || '/';
}

/** The route template keeps label cardinality bounded; unknown paths share one label. */
export function routeLabel(request: FastifyRequest): string {
  return request.routeOptions.url ?? UNMATCHED_ROUTE;
}
