import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isDatabaseUnavailable } from './database.ts';
import { AppError, toProblem, validationError } from './errors.ts';
import { requestPath } from './http.ts';
import { toFieldErrors } from './validation.ts';

export const BODY_LIMIT_BYTES = 64 * 1024;

/** Fastify's own errors that are the client's fault, as API problems. */
function fromFastifyError(error: FastifyError): AppError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payload-too-large', {
        detail: `The request body exceeds the limit of ${BODY_LIMIT_BYTES} bytes`,
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported-media-type', {
        detail: 'Send the request body as application/json',
      });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('invalid-json', { detail: 'The request body is empty; send a JSON object' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('validation-error', {
        detail: 'The Content-Length header does not match the body',
      });
    default:
      return undefined;
  }
}

export function toAppError(error: FastifyError | Error): AppError {
  if (error instanceof AppError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    return validationError(toFieldErrors(fastifyError.validation, fastifyError.validationContext ?? 'body'));
  }
  const known = fromFastifyError(fastifyError);
  if (known) return known;
  if (isDatabaseUnavailable(error)) {
    return new AppError('service-unavailable', {
      detail: 'The database is unavailable; retry shortly',
      headers: { 'retry-after': '5' },
    });
  }
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return new AppError('validation-error', { detail: fastifyError.message });
  }
  return new AppError('internal-error', {
    detail: 'An unexpected error occurred; quote the request_id when reporting it',
  });
}

const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/** A problem as it goes on the wire (also what an idempotency key stores). */
export function problemResponse(error: AppError, path: string, requestId: string) {
  return {
    status: error.status,
    headers: { ...error.headers, 'content-type': PROBLEM_CONTENT_TYPE },
    body: JSON.stringify(toProblem(error, path, requestId)),
  };
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: AppError): FastifyReply {
  const problem = problemResponse(error, requestPath(request), request.id);
  return reply.status(problem.status).headers(problem.headers).send(problem.body);
}

/** Path patterns of the registered routes, to tell 405 (known path, other method) from 404. */
function routeMatcher(app: FastifyInstance): (path: string) => string[] {
  const routes: { pattern: RegExp; methods: string[] }[] = [];
  app.addHook('onRoute', (route) => {
    // A catch-all (CORS preflights: OPTIONS *) would make every path a known one.
    if (route.url === '*') return;
    const source = route.url
      .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
      .replace(/:[A-Za-z_]+/g, '[^/]+')
      .replace(/\*/g, '.*');
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    routes.push({ pattern: new RegExp(`^${source.replace(/\/$/, '')}/?$`), methods });
  });
  return (path) => [...new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods))].sort();
}

export function registerErrorHandling(app: FastifyInstance): void {
  const allowedMethods = routeMatcher(app);

  app.setErrorHandler((error: FastifyError, request, reply) => {
    // A client that hangs up mid-body fails the body stream with ECONNRESET, which from the pool would
    // mean an outage; nobody is left to read the answer, which is sent only for the log and metrics.
    if (request.raw.readableAborted) {
      request.log.info('client closed the connection before its request was read');
      return sendProblem(
        request,
        reply,
        new AppError('malformed-request', {
          detail: 'The connection closed before the request was complete',
        }),
      );
    }
    const appError = toAppError(error);
    // An outage is logged as a warning (it is not a bug); anything else unexpected with its stack.
    if (appError.status === 503) request.log.warn({ reason: error.message }, 'database unavailable');
    else if (appError.status >= 500) request.log.error({ err: error }, 'request failed');
    return sendProblem(request, reply, appError);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = requestPath(request);
    const allowed = allowedMethods(path);
    // A route that takes this method but found nothing under it (a missing file under /docs/static/*) is a 404.
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      return sendProblem(
        request,
        reply,
        new AppError('method-not-allowed', {
          detail: `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`,
          headers: { allow: allowed.join(', ') },
        }),
      );
    }
    return sendProblem(
      request,
      reply,
      new AppError('not-found', { detail: `No route matches ${request.method} ${path}` }),
    );
  });
}
