import type { Queryable } from '../platform/database.ts';
import type { Rfc3339 } from '../platform/timestamps.ts';
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

/**
 * `statement` (an INSERT or UPDATE of one loan, RETURNING its columns) and `events` of that loan as one
 * statement, with the events' parameters appended to `params`: the events are written, in order, only
 * when the statement returns the loan, and the two commit or fail together in one round trip.
 */
export function withEvents(statement: string, params: unknown[], events: NewEvent[]): string {
  const first = params.length + 1;
  params.push(
    events.map((event) => event.type),
    events.map((event) => event.from),
    events.map((event) => event.to),
    events.map((event) => event.actor),
    events.map((event) => event.requestId),
    events.map((event) => event.at),
    events.map((event) => JSON.stringify(event.data)),
  );
  const [type, from, to, actor, requestId, at, data] = [0, 1, 2, 3, 4, 5, 6].map((i) => `$${first + i}`);
  return `WITH loan AS (${statement}), events AS (
      INSERT INTO loan_events (loan_id, type, from_status, to_status, actor, request_id, at, data)
      SELECT loan.id, e.type, e.from_status, e.to_status, e.actor, e.request_id, e.at, e.data
        FROM loan, unnest(${type}::text[], ${from}::text[], ${to}::text[], ${actor}::text[], ${requestId}::text[],
                          ${at}::timestamptz[], ${data}::jsonb[])
                   WITH ORDINALITY AS e(type, from_status, to_status, actor, request_id, at, data, n)
       ORDER BY e.n
    )
    SELECT * FROM loan`;
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
