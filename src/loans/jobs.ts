// Periodic work of the loans feature. Each job takes what it needs from the config it is given, so the
// in-process timer and a one-shot run behave the same.
import type { Config } from '../config.ts';
import type { Pool } from '../platform/database.ts';
import { purgeIdempotencyKeys } from './idempotency.ts';

export interface Job {
  intervalMs: number;
  /** Returns how many rows it removed or changed, for the log. */
  run(deps: { pool: Pool; config: Config }): Promise<number>;
}

export const LOAN_JOBS = {
  'purge-idempotency-keys': {
    intervalMs: 60 * 60 * 1000,
    run: ({ pool, config }) => purgeIdempotencyKeys(pool, config.idempotency.ttlHours),
  },
} as const satisfies Record<string, Job>;
