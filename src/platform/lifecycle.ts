import type { FastifyInstance } from 'fastify';
import { AppError } from './errors.ts';

/** Shared with the server's startup and signal handling: readiness and request handling depend on it. */
export interface Lifecycle {
  /** Until the schema is current and the API keys are prepared (MIGRATE_ON_START=false waits for them). */
  starting?: boolean;
  shuttingDown: boolean;
}

/**
 * While starting, /api answers 503 (the probes stay up, and readiness says why): a replica that waits for
 * the migration step must not serve requests against an old schema.
 */
export function refuseWhileStarting(app: FastifyInstance, lifecycle: Lifecycle): void {
  app.addHook('onRequest', async (request) => {
    if (lifecycle.starting && request.routeOptions.config.role) {
      throw new AppError('service-unavailable', {
        detail: 'The service is starting (waiting for database migrations); retry shortly',
        headers: { 'retry-after': '5' },
      });
    }
  });
}

/**
 * Node's server.close() only closes the connections idle at that moment: a keep-alive connection whose
 * request is still in flight would stay open after its response until the client's keep-alive timeout,
 * holding the drain open past the shutdown timeout. So responses sent while shutting down close their
 * connection (and tell the client to reconnect elsewhere).
 */
export function closeConnectionsWhileShuttingDown(app: FastifyInstance, lifecycle: Lifecycle): void {
  app.addHook('onSend', async (_request, reply, payload) => {
    if (lifecycle.shuttingDown) reply.header('connection', 'close');
    return payload;
  });
}
