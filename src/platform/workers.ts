// WEB_CONCURRENCY > 1: this process becomes a node:cluster primary that serves nothing itself. It forks
// that many workers, each a whole service (its own event loop and pool) on the shared port, and forwards
// SIGTERM/SIGINT to them so they drain as one process would; it exits once they all have. A worker that
// dies after it was listening is replaced; one that dies before it ever listened stops them all.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { DatabaseTarget } from './database-target.ts';

/**
 * Runs the primary on `target` (already migrated and seeded as configured). Resolves with the exit code once
 * every worker has exited after a signal, or after a worker failed to start.
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
  const listened = new Set<Worker>();
  let stopping = false;
  let failed = false;

  const fork = (index: number) => {
    const worker = cluster.fork(environment(index));
    indexOf.set(worker, index);
    worker.once('listening', () => listened.add(worker));
  };

  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, workers: indexOf.size }, 'stopping workers');
      for (const worker of indexOf.keys()) worker.process.kill(signal);
    };
    cluster.on('exit', (worker, code, signal) => {
      const index = indexOf.get(worker)!;
      indexOf.delete(worker);
      const details = { worker: index, worker_pid: worker.process.pid, code, signal };
      if (!stopping && listened.has(worker)) {
        logger.error(details, 'worker died; starting another');
        fork(index);
        return;
      }
      if (!stopping) {
        logger.fatal(details, 'worker failed to start; stopping');
        failed = true;
        stop('SIGTERM');
      } else if (code !== 0) failed = true;
      if (indexOf.size === 0) resolve(failed ? 1 : 0);
    });
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    for (let index = 0; index < config.webConcurrency; index++) fork(index);
    logger.info({ workers: config.webConcurrency }, 'started workers');
  });
}
