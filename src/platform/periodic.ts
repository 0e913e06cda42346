import type { FastifyInstance } from 'fastify';

/** Runs `task` every `intervalMs` while the app is open; a failure is logged and the next run goes ahead. */
export function runPeriodically(
  app: FastifyInstance,
  name: string,
  intervalMs: number,
  task: () => Promise<unknown>,
): void {
  const timer = setInterval(() => {
    task().catch((error) => app.log.warn({ err: error, task: name }, `${name} failed`));
  }, intervalMs).unref();
  app.addHook('onClose', async () => clearInterval(timer));
}
