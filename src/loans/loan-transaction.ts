// The transaction a loan command runs in (or, for a command of one statement, its connection alone): who
// asked, the clock, and the facts to report once it has committed. With an Idempotency-Key the outcome is rendered and stored in the same
// transaction, so a replay sends the very bytes of the first answer.
import type pg from 'pg';
import type { Config } from '../config.ts';
import { type Pool, withConnection, withTransaction } from '../platform/database.ts';
import type { AppError } from '../platform/errors.ts';
import { type IdempotencyKey, type Outcome, runIdempotent, type StoredResponse } from './idempotency.ts';
import type { LoanFact, LoanMetrics } from './loan-metrics.ts';

/** Who asked for a change, and on which version of the loan (If-Match). */
export interface Caller {
  actor: string;
  requestId: string;
  ifMatch: string | undefined;
}

export interface LoanTransaction extends Caller {
  client: pg.PoolClient;
  config: Config;
  /** The service's clock: read it once the loan is locked, so a loan's changes are in time order. */
  now(): Date;
  facts: LoanFact[];
}

export interface CommandDeps {
  pool: Pool;
  config: Config;
  clock: () => Date;
  /** The seed runs without metrics. */
  metrics?: LoanMetrics;
}

export type Command<R> = (tx: LoanTransaction) => Promise<R>;

export function createCommandRunner(deps: CommandDeps) {
  const { pool, config, clock, metrics } = deps;

  /** Runs `command` on `client` (the caller's transaction), collecting the facts to report once it commits. */
  async function attempt<R>(client: pg.PoolClient, caller: Caller, command: Command<R>) {
    const facts: LoanFact[] = [];
    const result = await command({ ...caller, client, config, now: clock, facts });
    return { result, facts };
  }
  const report = (facts: LoanFact[]) => {
    if (metrics) for (const fact of facts) metrics.record(fact);
  };

  return {
    /**
     * `oneStatement`: the command makes at most one statement, which is atomic by itself, so it runs
     * without BEGIN and COMMIT (two round trips fewer).
     */
    async run<R>(caller: Caller, command: Command<R>, options: { oneStatement?: boolean } = {}): Promise<R> {
      const inTransaction = options.oneStatement ? withConnection : withTransaction;
      const { result, facts } = await inTransaction(pool, (client) => attempt(client, caller, command));
      report(facts);
      return result;
    },

    /** A replay or a stored refusal runs nothing, and so reports nothing. */
    async runIdempotent<R>(
      caller: Caller,
      key: IdempotencyKey,
      command: Command<R>,
      render: (result: R) => StoredResponse,
      renderRefusal: (error: AppError) => StoredResponse,
    ): Promise<Outcome> {
      let committed: LoanFact[] = [];
      const outcome = await runIdempotent(
        pool,
        key,
        config.idempotency.waitMs,
        async (client) => {
          const { result, facts } = await attempt(client, caller, command);
          const response = render(result);
          committed = facts;
          return response;
        },
        renderRefusal,
      );
      report(committed);
      return outcome;
    },
  };
}

export type CommandRunner = ReturnType<typeof createCommandRunner>;
