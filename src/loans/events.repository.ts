import type { Queryable } from '../platform/database.ts';
import type { Rfc3339 } from '../platform/timestamps.ts';
import type { LoanStatus } from './loan-status.ts';
import type { Companion } from './loans.repository.ts';

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
  at: Rfc3339;
  data: Record<string, unknown>;
}

/** An event of the loan that the statement it is written with changes. */
export interface NewEvent {
  type: EventType;
  from: LoanStatus | null;
  to: LoanStatus;
  actor: string;
  requestId: string;
  at: Date;
  data: Record<string, unknown>;
}

/** The events of the loan that the statement they are written with changes (see withCompanions). */
export function eventsInsert(events: NewEvent[]): Companion {
  return (param) => `
      INSERT INTO loan_events (loan_id, type, from_status, to_status, actor, request_id, at, data)
      SELECT loan.id, e.type, e.from_status, e.to_status, e.actor, e.request_id, e.at, e.data
        FROM loan, unnest(${param(events.map((event) => event.type))}::text[],
                          ${param(events.map((event) => event.from))}::text[],
                          ${param(events.map((event) => event.to))}::text[],
                          ${param(events.map((event) => event.actor))}::text[],
                          ${param(events.map((event) => event.requestId))}::text[],
                          ${param(events.map((event) => event.at))}::timestamptz[],
                          ${param(events.map((event) => JSON.stringify(event.data)))}::jsonb[])
                   WITH ORDINALITY AS e(type, from_status, to_status, actor, request_id, at, data, n)
       ORDER BY e.n`;
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
