import type { Queryable } from '../platform/database.ts';
import type { LoanStatus } from './loan-status.ts';

export const EVENT_TYPES = [
  'created',
  'approved',
  'rejected',
  'disbursed',
  'repayment',
  'defaulted',
  'repaid',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface EventRow {
  id: string;
  loan_id: string;
  type: EventType;
  from_status: LoanStatus | null;
  to_status: LoanStatus;
  actor: string;
  request_id: string;
  at: Date;
  data: Record<string, unknown>;
}

export interface NewEvent {
  loanId: string;
  type: EventType;
  from: LoanStatus | null;
  to: LoanStatus;
  actor: string;
  requestId: string;
  at: Date;
  data: Record<string, unknown>;
}

export async function appendEvent(db: Queryable, event: NewEvent): Promise<void> {
  await db.query(
    `INSERT INTO loan_events (loan_id, type, from_status, to_status, actor, request_id, at, data)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      event.loanId,
      event.type,
      event.from,
      event.to,
      event.actor,
      event.requestId,
      event.at,
      JSON.stringify(event.data),
    ],
  );
}

/** The history of a loan, oldest first. */
export async function listEvents(db: Queryable, loanId: string): Promise<EventRow[]> {
  const result = await db.query<EventRow>(
    `SELECT id, loan_id, type, from_status, to_status, actor, request_id, at, data
       FROM loan_events WHERE loan_id = $1 ORDER BY seq`,
    [loanId],
  );
  return result.rows;
}
