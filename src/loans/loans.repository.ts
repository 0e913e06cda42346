import type { Queryable } from '../platform/database.ts';
import type { LoanStatus } from './loan-status.ts';

export interface LoanRow {
  id: string;
  borrower_id: string;
  currency: string;
  /** int8 arrives as a string; convert with BigInt. */
  amount_minor: string;
  term_months: number;
  /** numeric(5,2) as written, e.g. "18.50". */
  interest_rate_apr: string;
  status: LoanStatus;
  created_at: Date;
  updated_at: Date;
  version: number;
}

const LOAN_COLUMNS =
  'id, borrower_id, currency, amount_minor, term_months, interest_rate_apr, status, created_at, updated_at, version';

export interface NewLoan {
  id?: string;
  borrowerId: string;
  currency: string;
  amountMinor: bigint;
  termMonths: number;
  interestRateApr: string;
}

export async function insertLoan(db: Queryable, loan: NewLoan): Promise<LoanRow> {
  const result = await db.query<LoanRow>(
    `INSERT INTO loans (id, borrower_id, currency, amount_minor, term_months, interest_rate_apr)
     VALUES (COALESCE($1::uuid, gen_random_uuid()), $2, $3, $4, $5, $6)
     RETURNING ${LOAN_COLUMNS}`,
    [
      loan.id ?? null,
      loan.borrowerId,
      loan.currency,
      loan.amountMinor.toString(),
      loan.termMonths,
      loan.interestRateApr,
    ],
  );
  return result.rows[0]!;
}

export async function findLoan(db: Queryable, id: string): Promise<LoanRow | undefined> {
  const result = await db.query<LoanRow>(`SELECT ${LOAN_COLUMNS} FROM loans WHERE id = $1`, [id]);
  return result.rows[0];
}

export interface LoanFilters {
  status?: LoanStatus;
  currency?: string;
  borrowerId?: string;
  createdAfter?: string;
  createdBefore?: string;
}

export interface KeysetPosition {
  createdAt: string;
  id: string;
}

/** One page, newest first, starting after `after`; an index range scan whatever the offset. */
export async function listLoans(
  db: Queryable,
  filters: LoanFilters,
  after: KeysetPosition | undefined,
  limit: number,
): Promise<LoanRow[]> {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    conditions.push(sql.replace('?', `$${params.length}`));
  };
  if (filters.status) add('status = ?', filters.status);
  if (filters.currency) add('currency = ?', filters.currency);
  if (filters.borrowerId) add('borrower_id = ?', filters.borrowerId);
  if (filters.createdAfter) add('created_at > ?::timestamptz', filters.createdAfter);
  if (filters.createdBefore) add('created_at < ?::timestamptz', filters.createdBefore);
  if (after) {
    params.push(after.createdAt, after.id);
    conditions.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  params.push(limit);
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
  const result = await db.query<LoanRow>(
    `SELECT ${LOAN_COLUMNS} FROM loans ${where} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  return result.rows;
}
