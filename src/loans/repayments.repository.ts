import { randomUUID } from 'node:crypto';
import type { Queryable } from '../platform/database.ts';
import type { Rfc3339 } from '../platform/timestamps.ts';
import type { Companion } from './loans.repository.ts';

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

/** The row a new repayment will be, its id chosen here so that its events can name it. */
export function repaymentRow(repayment: NewRepayment): RepaymentRow {
  return {
    id: randomUUID(),
    loan_id: repayment.loanId,
    amount_minor: repayment.amountMinor.toString(),
    interest_minor: repayment.interestMinor.toString(),
    principal_minor: repayment.principalMinor.toString(),
    paid_on: repayment.paidOn,
    reference: repayment.reference,
    actor: repayment.actor,
    request_id: repayment.requestId,
    created_at: repayment.createdAt.toISOString(),
  };
}

/** Writes `row` with the loan's update (see withCompanions in loans.repository.ts). */
export function repaymentInsert(row: RepaymentRow): Companion {
  return (param) =>
    `INSERT INTO repayments (${REPAYMENT_COLUMNS})
     SELECT ${param(row.id)}::uuid, loan.id, ${param(row.amount_minor)}::bigint, ${param(row.interest_minor)}::bigint,
            ${param(row.principal_minor)}::bigint, ${param(row.paid_on)}::date, ${param(row.reference)},
            ${param(row.actor)}, ${param(row.request_id)}, ${param(row.created_at)}::timestamptz
       FROM loan`;
}

/** Repayments of a loan in the order they were recorded (the allocation order). */
export async function listRepayments(db: Queryable, loanId: string): Promise<RepaymentRow[]> {
  const result = await db.query<RepaymentRow>(
    `SELECT ${REPAYMENT_COLUMNS} FROM repayments WHERE loan_id = $1 ORDER BY seq`,
    [loanId],
  );
  return result.rows;
}
