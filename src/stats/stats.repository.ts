import type { LoanStatus } from '../loans/loan-status.ts';
import type { Queryable } from '../platform/database.ts';

export interface StatsRow {
  currency: string;
  status: LoanStatus;
  loans: string;
  amount_minor: string;
}

/** The maintained per (currency, status) aggregates: a few dozen rows at most, whatever the table size. */
export async function loadStatsRows(db: Queryable, currency?: string): Promise<StatsRow[]> {
  const result = await db.query<StatsRow>(
    `SELECT currency, status, loans::text, amount_minor::text
       FROM loan_stats
      WHERE loans > 0 AND ($1::text IS NULL OR currency = $1)
      ORDER BY currency, status`,
    [currency ?? null],
  );
  return result.rows;
}
