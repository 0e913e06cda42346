// Reads of loans and their companions. Changes live in loan-commands.ts.
import type { Static } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { checkCurrency } from '../money/currencies.ts';
import { calendarDateOf } from '../platform/calendar.ts';
import type { Pool } from '../platform/database.ts';
import { type FieldError, notFound, validationError } from '../platform/errors.ts';
import { inUtc } from '../platform/timestamps.ts';
import { loanPosition } from './allocation.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { listEvents } from './events.repository.ts';
import { inQuery, validateTerms } from './loan-terms.ts';
import { eventView, loanView, repaymentView, scheduleView } from './loan-views.ts';
import { findLoan, type LoanRow, listLoans } from './loans.repository.ts';
import type { ListLoansQuery, QuoteQuery } from './loans.schemas.ts';
import { listRepayments } from './repayments.repository.ts';
import { buildSchedule, scheduleOf } from './schedule.ts';

export interface LoanPage {
  loans: ReturnType<typeof loanView>[];
  nextCursor: string | undefined;
}

/**
 * `readPool` serves the list only: a page may lag the primary by the standby's replay delay. Everything
 * else reads the primary, so a loan just changed is never read stale.
 */
export function createLoansService(deps: { pool: Pool; readPool: Pool; config: Config; clock: () => Date }) {
  const { pool, readPool, config, clock } = deps;
  const today = () => calendarDateOf(clock());

  async function load(id: string): Promise<LoanRow> {
    const row = await findLoan(pool, id.toLowerCase());
    if (!row) throw notFound(`Loan ${id} does not exist`);
    return row;
  }

  return {
    load,
    today,
    view: (row: LoanRow) => loanView(row, today()),

    async list(query: Static<typeof ListLoansQuery>): Promise<LoanPage> {
      const errors: FieldError[] = [];
      const checked = query.currency === undefined ? undefined : checkCurrency(query.currency);
      if (checked && 'reason' in checked) errors.push(inQuery('currency', checked.reason));
      const currency = checked && 'currency' in checked ? checked.currency : undefined;
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      if (query.cursor !== undefined && !after) {
        errors.push(inQuery('cursor', 'is not a cursor this API issued; follow the Link header'));
      }
      if (errors.length > 0) throw validationError(errors);

      const filters = {
        status: query.status,
        currency,
        borrowerId: query.borrower_id,
        createdAfter: query.created_after && inUtc(query.created_after),
        createdBefore: query.created_before && inUtc(query.created_before),
      };
      const rows = await listLoans(readPool, filters, after, query.limit + 1);
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      const nextCursor =
        rows.length > query.limit && last
          ? encodeCursor({ createdAt: last.created_at, id: last.id })
          : undefined;
      const asOf = today();
      return { loans: page.map((row) => loanView(row, asOf)), nextCursor };
    },

    /** The fixed schedule of a disbursed loan with what was paid; otherwise the one it would get today. */
    async schedule(id: string) {
      const loan = await load(id);
      const asOf = today();
      if (loan.disbursed_on === null)
        return scheduleView(loan.currency, scheduleOf(loan, asOf), undefined, asOf);
      const schedule = scheduleOf(loan, loan.disbursed_on);
      const payments = (await listRepayments(pool, loan.id)).map((row) => BigInt(row.amount_minor));
      const position = loanPosition(schedule.installments, payments, asOf);
      return scheduleView(loan.currency, schedule, position, loan.disbursed_on);
    },

    quote(query: Static<typeof QuoteQuery>) {
      const terms = validateTerms(config, query, inQuery);
      const asOf = today();
      const schedule = buildSchedule({
        principalMinor: terms.amountMinor,
        aprBasisPoints: terms.aprBasisPoints,
        termMonths: terms.termMonths,
        disbursedOn: asOf,
      });
      return scheduleView(terms.currency, schedule, undefined, asOf);
    },

    async repayments(id: string) {
      const loan = await load(id);
      return (await listRepayments(pool, loan.id)).map((row) => repaymentView(row, loan.currency));
    },

    async events(id: string) {
      const loan = await load(id);
      return (await listEvents(pool, loan.id)).map(eventView);
    },
  };
}

export type LoansService = ReturnType<typeof createLoansService>;
