import type { LoanStatus } from '../loans/loan-status.ts';
import type { Queryable } from '../platform/database.ts';

export interface StatsRow {
  currency: string;
  status: LoanStatus;
  loans: string;
  amount_minor: string;
  outstanding_minor: string;
}

export interface StatsSnapshot {
  /** The maintained per (currency, status) aggregates, summed over their shards: a few hundred rows at most. */
  rows: StatsRow[];
  /** Outstanding principal per currency of active loans whose oldest unpaid installment is due on or after the cutoff. */
  outstandingDueSince: Map<string, bigint>;
}

/**
 * Both aggregates in one statement, so they come from one snapshot: read apart, a repayment committing
 * between them makes PAR30 drift (even below zero). Reading the recent due dates only (an index range of
 * about two months) keeps the cost flat however many loans and past due dates there are.
 */
export async function loadStats(db: Queryable, cutoff: string, currency?: string): Promise<StatsSnapshot> {
  const result = await db.query<StatsRow & { kind: 'status' | 'current' }>(
    `SELECT 'status' AS kind, currency, status, sum(loans)::text AS loans, sum(amount_minor)::text AS amount_minor,
            sum(outstanding_minor)::text AS outstanding_minor
       FROM loan_stats
      WHERE $1::text IS NULL OR currency = $1
      GROUP BY currency, status
     HAVING sum(loans) > 0
     UNION ALL
     SELECT 'current', currency, NULL, NULL, NULL, sum(outstanding_minor)::text
       FROM loan_arrears
      WHERE oldest_unpaid_due >= $2::date AND ($1::text IS NULL OR currency = $1)
      GROUP BY currency
      ORDER BY 1 DESC, 2, 3`,
    [currency ?? null, cutoff],
  );
  const rows: StatsRow[] = [];
  const outstandingDueSince = new Map<string, bigint>();
  for (const { kind, ...row } of result.rows) {
    if (kind === 'status') rows.push(row);
    else outstandingDueSince.set(row.currency, BigInt(row.outstanding_minor));
  }
  return { rows, outstandingDueSince };
}
