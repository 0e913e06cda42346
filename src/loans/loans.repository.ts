import type pg from 'pg';
import type { Queryable } from '../platform/database.ts';
import type { Rfc3339 } from '../platform/timestamps.ts';
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
  created_at: Rfc3339;
  updated_at: Rfc3339;
  version: number;
  created_by: string;
  approved_at: Rfc3339 | null;
  approval_note: string | null;
  rejected_at: Rfc3339 | null;
  rejection_reason: string | null;
  disbursed_at: Rfc3339 | null;
  disbursed_on: string | null;
  defaulted_at: Rfc3339 | null;
  default_reason: string | null;
  repaid_at: Rfc3339 | null;
  outstanding_principal_minor: string;
  repaid_minor: string;
  oldest_unpaid_due_date: string | null;
}

const LOAN_COLUMNS = `id, borrower_id, currency, amount_minor, term_months, interest_rate_apr, status, created_at,
  updated_at, version, created_by, approved_at, approval_note, rejected_at, rejection_reason, disbursed_at,
  disbursed_on, defaulted_at, default_reason, repaid_at, outstanding_principal_minor, repaid_minor,
  oldest_unpaid_due_date`;

export interface NewLoan {
  id?: string;
  borrowerId: string;
  currency: string;
  amountMinor: bigint;
  termMonths: number;
  interestRateApr: string;
}

/**
 * A statement written together with a change of one loan, only when the change applies: an INSERT …
 * SELECT … FROM loan (the changed row). `param` adds a parameter and returns its placeholder.
 */
export type Companion = (param: (value: unknown) => string) => string;

/**
 * `statement` (an INSERT or UPDATE of one loan, RETURNING its columns, with `params`) and its companions
 * as one statement: all of them commit or fail together, in one round trip.
 */
function withCompanions(statement: string, params: unknown[], companions: Companion[]): string {
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const ctes = companions.map((companion, i) => `, companion${i} AS (${companion(param)})`);
  return `WITH loan AS (${statement})${ctes.join('')} SELECT * FROM loan`;
}

/** Inserts the loan and its companions (the `created` event) in one statement. */
export async function insertLoan(
  db: Queryable,
  loan: NewLoan,
  createdBy: string,
  createdAt: Date,
  companions: Companion[],
): Promise<LoanRow> {
  const params: unknown[] = [
    loan.id ?? null,
    loan.borrowerId,
    loan.currency,
    loan.amountMinor.toString(),
    loan.termMonths,
    loan.interestRateApr,
    createdBy,
    createdAt,
  ];
  const insert = `INSERT INTO loans (id, borrower_id, currency, amount_minor, term_months, interest_rate_apr,
                                      created_by, created_at, updated_at)
                  VALUES (COALESCE($1::uuid, gen_random_uuid()), $2, $3, $4, $5, $6, $7, $8, $8)
                  RETURNING ${LOAN_COLUMNS}`;
  const result = await db.query<LoanRow>(withCompanions(insert, params, companions), params);
  return result.rows[0]!;
}

export async function findLoan(db: Queryable, id: string, options: { forUpdate?: boolean } = {}) {
  const result = await db.query<LoanRow>(
    `SELECT ${LOAN_COLUMNS} FROM loans WHERE id = $1 ${options.forUpdate ? 'FOR UPDATE' : ''}`,
    [id],
  );
  return result.rows[0];
}

/**
 * Locks the loan, then reads the amounts of its repayments in recording order, in one round trip: two
 * statements in the simple protocol (hence the quoted literal), the second with a snapshot taken once the
 * lock is held. It sees the repayments of a transaction the lock waited for; a subquery of the locking
 * statement would not.
 */
export async function lockLoanWithRepayments(
  client: pg.PoolClient,
  id: string,
): Promise<{ loan: LoanRow | undefined; repaidMinor: bigint[] }> {
  const literal = client.escapeLiteral(id);
  const [locked, repayments] = (await client.query(
    `SELECT ${LOAN_COLUMNS} FROM loans WHERE id = ${literal} FOR UPDATE;
     SELECT amount_minor FROM repayments WHERE loan_id = ${literal} ORDER BY seq`,
  )) as unknown as [pg.QueryResult<LoanRow>, pg.QueryResult<{ amount_minor: string }>];
  return {
    loan: locked.rows[0],
    repaidMinor: repayments.rows.map((row) => BigInt(row.amount_minor)),
  };
}

/** Columns a state change may set, besides the status. */
export interface LoanChanges {
  approved_at?: Date;
  approval_note?: string | null;
  rejected_at?: Date;
  rejection_reason?: string;
  disbursed_at?: Date;
  disbursed_on?: string;
  defaulted_at?: Date;
  default_reason?: string;
  repaid_at?: Date;
  outstanding_principal_minor?: bigint;
  repaid_minor?: bigint;
  oldest_unpaid_due_date?: string | null;
}

/** Which loan a conditional update applies to, and while it is in which state. */
export interface LoanCondition {
  id: string;
  from: LoanStatus;
  /** If-Match: one of these versions (any version when undefined). */
  versions?: number[];
  /** Maker–checker: not a loan this API key created. */
  notCreatedBy?: string;
}

/**
 * The one conditional update behind every state change: it applies only while the loan is as `where`
 * says, so of concurrent changes exactly one wins; its companions (the events, a repayment) are written
 * with it.
 */
export async function updateLoanIf(
  db: Queryable,
  where: LoanCondition,
  to: LoanStatus,
  changes: LoanChanges,
  companions: Companion[],
): Promise<LoanRow | undefined> {
  const params: unknown[] = [where.id, where.from, to];
  const sets = ['status = $3'];
  for (const [column, value] of Object.entries(changes)) {
    params.push(typeof value === 'bigint' ? value.toString() : value);
    sets.push(`${column} = $${params.length}`);
  }
  let condition = 'id = $1 AND status = $2';
  if (where.versions !== undefined) {
    params.push(where.versions);
    condition += ` AND version = ANY($${params.length}::int[])`;
  }
  if (where.notCreatedBy !== undefined) {
    params.push(where.notCreatedBy);
    condition += ` AND created_by <> $${params.length}`;
  }
  const update = `UPDATE loans SET ${sets.join(', ')} WHERE ${condition} RETURNING ${LOAN_COLUMNS}`;
  const result = await db.query<LoanRow>(withCompanions(update, params, companions), params);
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
