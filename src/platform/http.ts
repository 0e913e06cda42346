// Small facts about a request that several platform modules and routes need.
import type { FastifyRequest } from 'fastify';

const UNMATCHED_ROUTE = 'unmatched';

/** The request's path, without its query string. */
export function requestPath(request: FastifyRequest): string {
  return request.url.split('?')[0] ?? request.url;
}

/** The route template keeps label cardinality bounded; unknown paths share one label. */
export function routeLabel(request: FastifyRequest): string {
  return request.routeOptions.url ?? UNMATCHED_ROUTE;
}
