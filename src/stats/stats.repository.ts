import type { LoanStatus } from '../loans/loan-status.ts';
import type { Queryable } from '../platform/database.ts';

export interface StatsRow {
  currency: string;
  status: LoanStatus;
  loans: string;
  amount_minor: string;
  outstanding_minor: string;
}

/** The maintained per (currency, status) aggregates, summed over their shards: a few hundred rows at most. */
export async function loadStatsRows(db: Queryable, currency?: string): Promise<StatsRow[]> {
  const result = await db.query<StatsRow>(
    `SELECT currency, status, sum(loans)::text AS loans, sum(amount_minor)::text AS amount_minor,
            sum(outstanding_minor)::text AS outstanding_minor
       FROM loan_stats
      WHERE $1::text IS NULL OR currency = $1
      GROUP BY currency, status
     HAVING sum(loans) > 0
      ORDER BY currency, status`,
    [currency ?? null],
  );
  return result.rows;
}

/**
 * Outstanding principal per currency of active loans whose oldest unpaid installment falls due on or
 * after `cutoff`. PAR30 is the total outstanding minus this: reading the recent due dates only (an index
 * range of about two months) keeps the cost flat however many loans and past due dates there are.
 */
export async function loadOutstandingDueSince(
  db: Queryable,
  cutoff: string,
  currency?: string,
): Promise<Map<string, bigint>> {
  const result = await db.query<{ currency: string; outstanding_minor: string }>(
    `SELECT currency, sum(outstanding_minor)::text AS outstanding_minor
       FROM loan_arrears
      WHERE oldest_unpaid_due >= $1::date AND ($2::text IS NULL OR currency = $2)
      GROUP BY currency`,
    [cutoff, currency ?? null],
  );
  return new Map(result.rows.map((row) => [row.currency, BigInt(row.outstanding_minor)]));
}
