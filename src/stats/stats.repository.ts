import type { LoanStatus } from '../loans/loan-status.ts';
import type { Queryable } from '../platform/database.ts';

export interface StatsRow {
  currency: string;
  status: LoanStatus;
  loans: string;
  amount_minor: string;
  outstanding_minor: string;
}

/** The maintained per (currency, status) aggregates: a few dozen rows at most, whatever the table size. */
export async function loadStatsRows(db: Queryable, currency?: string): Promise<StatsRow[]> {
  const result = await db.query<StatsRow>(
    `SELECT currency, status, loans::text, amount_minor::text, outstanding_minor::text
       FROM loan_stats
      WHERE loans > 0 AND ($1::text IS NULL OR currency = $1)
      ORDER BY currency, status`,
    [currency ?? null],
  );
  return result.rows;
}

/**
 * Outstanding principal per currency of active loans whose oldest unpaid installment fell due before
 * `cutoff`; reads the per-due-date aggregates, so its cost follows the number of dates, not of loans.
 */
export async function loadArrears(
  db: Queryable,
  cutoff: string,
  currency?: string,
): Promise<Map<string, bigint>> {
  const result = await db.query<{ currency: string; outstanding_minor: string }>(
    `SELECT currency, sum(outstanding_minor)::text AS outstanding_minor
       FROM loan_arrears
      WHERE oldest_unpaid_due < $1::date AND loans > 0 AND ($2::text IS NULL OR currency = $2)
      GROUP BY currency`,
    [cutoff, currency ?? null],
  );
  return new Map(result.rows.map((row) => [row.currency, BigInt(row.outstanding_minor)]));
}
