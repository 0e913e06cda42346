// WEB_CONCURRENCY > 1: this process becomes a node:cluster primary that serves nothing itself. It forks
// that many workers, each a whole service (its own event loop and pool) on the shared port, and forwards
// SIGTERM/SIGINT to them so they drain as one process would; it exits once they all have. A worker that
// dies after it was ready is replaced, unless workers keep dying (a crash loop); one that dies before it
// was ever ready stops them all, as a single process would stop.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { DatabaseTarget } from './database-target.ts';

/** What a worker sends its primary once it serves /api (server.ts). */
export const WORKER_READY = 'branch-loans:ready';
// More deaths than this within the window is a crash loop: stop rather than fork for ever.
const MAX_DEATHS = 5;
const DEATH_WINDOW_MS = 60_000;

/**
 * Runs the primary on `target` (already migrated and seeded as configured). Resolves with the exit code
 * once every worker has exited after a signal, after a worker failed to start, or after a crash loop.
 */
export function runWorkers(config: Config, logger: Logger, target: DatabaseTarget): Promise<number> {
  // Workers read the same configuration, except: the embedded database is this process's, the schema is
  // migrated and seeded here once, and periodic jobs run in one worker only.
  const environment = (index: number): Record<string, string> => ({
    ...(target.embedded ? { DATABASE_URL: target.url } : {}),
    MIGRATE_ON_START: 'false',
    SEED_ON_START: 'false',
    JOBS_IN_PROCESS: String(config.jobsInProcess && index === 0),
  });
  const indexOf = new Map<Worker, number>();
  const ready = new Set<Worker>();
  const deaths: number[] = [];
  let stopping = false;
  let failed = false;

  const fork = (index: number) => {
    const worker = cluster.fork(environment(index));
    indexOf.set(worker, index);
    worker.on('message', (message: unknown) => {
      if (message === WORKER_READY) ready.add(worker);
    });
  };

  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, workers: indexOf.size }, 'stopping workers');
      for (const worker of indexOf.keys()) worker.process.kill(signal);
    };
    const fail = (details: Record<string, unknown>, message: string) => {
      logger.fatal(details, message);
      failed = true;
      stop('SIGTERM');
    };
    cluster.on('exit', (worker, code, signal) => {
      const index = indexOf.get(worker)!;
      indexOf.delete(worker);
      const details = { worker: index, worker_pid: worker.process.pid, code, signal };
      if (!stopping) {
        const now = Date.now();
        deaths.push(now);
        while (deaths[0]! < now - DEATH_WINDOW_MS) deaths.shift();
        if (!ready.has(worker)) fail(details, 'worker failed to start; stopping');
        else if (deaths.length > MAX_DEATHS)
          fail(details, `workers died ${deaths.length} times in a minute; stopping`);
        else {
          logger.error(details, 'worker died; starting another');
          fork(index);
          return;
        }
      } else if (code !== 0 && signal === null) failed = true;
      if (indexOf.size === 0) resolve(failed ? 1 : 0);
    });
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    for (let index = 0; index < config.webConcurrency; index++) fork(index);
    logger.info({ workers: config.webConcurrency }, 'started workers');
  });
}
