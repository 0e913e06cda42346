// The loan business metrics: counters fed by the commands once their transaction has committed, and
// loans per status read from the maintained aggregates at each scrape.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Pool } from '../platform/database.ts';
import { withTimeout } from '../platform/metrics.ts';
import { LOAN_STATUSES, type LoanStatus, statusChanges } from './loan-status.ts';

/** Something a command did, reported once its transaction has committed. */
export type LoanFact =
  | { kind: 'created'; currency: string }
  | { kind: 'transition'; from: LoanStatus; to: LoanStatus }
  | { kind: 'repayment'; currency: string; amountMinor: bigint };

export interface LoanMetrics {
  record(fact: LoanFact): void;
}

/** Registers the loan metrics on `registry`; `timeoutMs` bounds the scrape-time query. */
export function registerLoanMetrics(registry: Registry, pool: Pool, timeoutMs: number): LoanMetrics {
  registerLoansByStatus(registry, pool, timeoutMs);
  const created = new Counter({
    name: 'loans_created_total',
    help: 'Loans created, by currency',
    labelNames: ['currency'],
    registers: [registry],
  });
  const transitions = new Counter({
    name: 'loan_transitions_total',
    help: 'Loan status changes, by from and to status',
    labelNames: ['from', 'to'],
    registers: [registry],
  });
  // The changes are few and known: with every series present from the start, the first transition
  // after a restart is seen by rate() and increase().
  for (const change of statusChanges()) transitions.inc(change, 0);
  const repayments = new Counter({
    name: 'repayments_total',
    help: 'Repayments recorded, by currency',
    labelNames: ['currency'],
    registers: [registry],
  });
  const repaidAmount = new Counter({
    name: 'repayments_amount_minor_total',
    help:
      'Sum of repaid amounts in integer MINOR units of the currency (INR paise, KWD fils; VND has none), ' +
      'by currency: divide by 10^exponent for major units. Never add currencies together',
    labelNames: ['currency'],
    registers: [registry],
  });

  return {
    record(fact) {
      if (fact.kind === 'created') created.inc({ currency: fact.currency });
      else if (fact.kind === 'transition') transitions.inc({ from: fact.from, to: fact.to });
      else {
        repayments.inc({ currency: fact.currency });
        // The metric boundary is the one place money becomes a float: a Prometheus sample is a
        // float64, exact for running totals below 2^53 minor units. The ledger stays the record.
        repaidAmount.inc({ currency: fact.currency }, Number(fact.amountMinor));
      }
    },
  };
}

/**
 * One query per scrape on the trigger-maintained loan_stats (a few dozen rows, never a scan of loans).
 * While the database does not answer, the gauge has no samples (database_up says why).
 */
function registerLoansByStatus(registry: Registry, pool: Pool, timeoutMs: number): void {
  new Gauge({
    name: 'loans_by_status',
    help: 'Loans per status (every status, 0 when none), from the maintained loan_stats aggregates',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      this.reset();
      const result = await withTimeout(
        pool.query<{ status: string; loans: string }>(
          'SELECT status, sum(loans)::text AS loans FROM loan_stats GROUP BY status',
        ),
        timeoutMs,
      ).catch(() => undefined);
      if (!result) return;
      const counts = new Map(result.rows.map((row) => [row.status, Number(row.loans)]));
      for (const status of LOAN_STATUSES) this.set({ status }, counts.get(status) ?? 0);
    },
  });
}
