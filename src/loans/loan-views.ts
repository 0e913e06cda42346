// Rows → API objects. Money leaves here as strings with the currency's digits, dates as RFC 3339.
import { formatMoney } from '../money/money.ts';
import { daysPastDue, type LoanPosition } from './allocation.ts';
import type { EventRow } from './events.repository.ts';
import { isActive } from './loan-status.ts';
import type { LoanRow } from './loans.repository.ts';
import type { RepaymentRow } from './repayments.repository.ts';
import type { Installment, Schedule } from './schedule.ts';

/** Strong validator that changes with every update of the loan row. */
export function etagOf(row: LoanRow): string {
  return `"${row.id.slice(0, 8)}-v${row.version}"`;
}

const ETAG = /^"([0-9a-f]{8})-v(0|[1-9][0-9]{0,9})"$/;
const MAX_VERSION = 2 ** 31 - 1;

/**
 * The versions of loan `id` that an If-Match header names (its ETags as etagOf writes them); undefined
 * for no header or `*`, when any version will do.
 */
export function versionsIn(ifMatch: string | undefined, id: string): number[] | undefined {
  if (ifMatch === undefined) return undefined;
  const tags = ifMatch.split(',').map((tag) => tag.trim());
  if (tags.includes('*')) return undefined;
  const prefix = id.toLowerCase().slice(0, 8);
  return tags.flatMap((tag) => {
    const match = ETAG.exec(tag);
    const version = Number(match?.[2]);
    return match?.[1] === prefix && version <= MAX_VERSION ? [version] : [];
  });
}

export function loanView(row: LoanRow, today: string) {
  const money = (minor: string) => formatMoney(BigInt(minor), row.currency);
  const oldestDue = isActive(row.status) ? row.oldest_unpaid_due_date : null;
  return {
    id: row.id,
    borrower_id: row.borrower_id,
    amount: money(row.amount_minor),
    currency: row.currency,
    term_months: row.term_months,
    interest_rate_apr: row.interest_rate_apr,
    status: row.status,
    created_at: row.created_at,
    updated_at: row.updated_at,
    approved_at: row.approved_at,
    approval_note: row.approval_note,
    rejected_at: row.rejected_at,
    rejection_reason: row.rejection_reason,
    disbursed_at: row.disbursed_at,
    disbursed_on: row.disbursed_on,
    defaulted_at: row.defaulted_at,
    default_reason: row.default_reason,
    repaid_at: row.repaid_at,
    outstanding_principal: money(row.outstanding_principal_minor),
    total_repaid: money(row.repaid_minor),
    next_due_date: oldestDue,
    days_past_due: daysPastDue(oldestDue, today),
  };
}

export function scheduleView(
  currency: string,
  schedule: Schedule,
  position: LoanPosition<Installment> | undefined,
  disbursedOn: string,
) {
  const money = (minor: bigint) => formatMoney(minor, currency);
  return {
    currency,
    disbursed_on: disbursedOn,
    installment_amount: money(schedule.installmentMinor),
    total_interest: money(schedule.totalInterestMinor),
    total_repayable: money(schedule.totalRepayableMinor),
    installments: schedule.installments.map((row, index) => {
      const paid = position?.installments[index];
      return {
        number: row.number,
        due_date: row.dueDate,
        principal: money(row.principalMinor),
        interest: money(row.interestMinor),
        total: money(row.totalMinor),
        paid: money(paid?.paidMinor ?? 0n),
        status: paid?.status ?? 'pending',
      };
    }),
  };
}

export function repaymentView(row: RepaymentRow, currency: string) {
  const money = (minor: string) => formatMoney(BigInt(minor), currency);
  return {
    id: row.id,
    loan_id: row.loan_id,
    amount: money(row.amount_minor),
    currency,
    interest: money(row.interest_minor),
    principal: money(row.principal_minor),
    paid_on: row.paid_on,
    reference: row.reference,
    actor: row.actor,
    request_id: row.request_id,
    created_at: row.created_at,
  };
}

export function eventView(row: EventRow) {
  return {
    id: row.id,
    loan_id: row.loan_id,
    type: row.type,
    from_status: row.from_status,
    to_status: row.to_status,
    actor: row.actor,
    request_id: row.request_id,
    at: row.at,
    data: row.data,
  };
}
