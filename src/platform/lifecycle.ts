import type { FastifyInstance } from 'fastify';

/** Shared with the server's signal handler: readiness and connection reuse depend on it. */
export interface Lifecycle {
  shuttingDown: boolean;
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
