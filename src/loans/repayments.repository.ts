import type { Queryable } from '../platform/database.ts';
import type { Rfc3339 } from '../platform/timestamps.ts';

export interface RepaymentRow {
  id: string;
  loan_id: string;
  amount_minor: string;
  interest_minor: string;
  principal_minor: string;
  paid_on: string;
  reference: string | null;
  actor: string;
  request_id: string;
  created_at: Rfc3339;
}

const REPAYMENT_COLUMNS =
  'id, loan_id, amount_minor, interest_minor, principal_minor, paid_on, reference, actor, request_id, created_at';

export interface NewRepayment {
  loanId: string;
  amountMinor: bigint;
  interestMinor: bigint;
  principalMinor: bigint;
  paidOn: string;
  reference: string | null;
  actor: string;
  requestId: string;
  createdAt: Date;
}

export async function insertRepayment(db: Queryable, repayment: NewRepayment): Promise<RepaymentRow> {
  const result = await db.query<RepaymentRow>(
    `INSERT INTO repayments (loan_id, amount_minor, interest_minor, principal_minor, paid_on, reference, actor,
                             request_id, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${REPAYMENT_COLUMNS}`,
    [
      repayment.loanId,
      repayment.amountMinor.toString(),
      repayment.interestMinor.toString(),
      repayment.principalMinor.toString(),
      repayment.paidOn,
      repayment.reference,
      repayment.actor,
      repayment.requestId,
      repayment.createdAt,
    ],
  );
  return result.rows[0]!;
}

/** Repayments of a loan in the order they were recorded (the allocation order). */
export async function listRepayments(db: Queryable, loanId: string): Promise<RepaymentRow[]> {
  const result = await db.query<RepaymentRow>(
    `SELECT ${REPAYMENT_COLUMNS} FROM repayments WHERE loan_id = $1 ORDER BY seq`,
    [loanId],
  );
  return result.rows;
}
