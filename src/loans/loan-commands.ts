// Every change to a loan, one small function per action. Each locks the loan, makes one conditional
// update and writes its events in the caller's transaction, and returns the changed rows; the route
// renders them.
import type { Static } from '@sinclair/typebox';
import { formatMoney } from '../money/money.ts';
import { ANONYMOUS } from '../platform/auth.ts';
import { calendarDateOf } from '../platform/calendar.ts';
import { AppError, notFound, validationError } from '../platform/errors.ts';
import { MAX_REPAYMENTS_PER_LOAN, planRepayment } from './allocation.ts';
import type { EventType, NewEvent } from './events.repository.ts';
import {
  allowedActions,
  CHECKER_ACTIONS,
  CLEARED_STATUS,
  canPerform,
  type LoanAction,
  type LoanStatus,
} from './loan-status.ts';
import { inBody, positiveAmount, validateTerms } from './loan-terms.ts';
import type { LoanTransaction } from './loan-transaction.ts';
import { etagOf } from './loan-views.ts';
import { findLoan, insertLoan, type LoanChanges, type LoanRow, updateLoanIf } from './loans.repository.ts';
import type {
  ApproveBody,
  CreateLoanBody,
  DisburseBody,
  ReasonBody,
  RepaymentBody,
} from './loans.schemas.ts';
import { insertRepayment, listRepayments, type RepaymentRow } from './repayments.repository.ts';
import { scheduleOf } from './schedule.ts';

export interface LoanResult {
  loan: LoanRow;
}
export interface RepaymentResult {
  repayment: RepaymentRow;
  loan: LoanRow;
}

const EARLIEST_DATE = '2000-01-01';

/** `id` is for importing loans that already have one (the seed); the API always generates it. */
export async function createLoan(
  tx: LoanTransaction,
  body: Static<typeof CreateLoanBody>,
  id?: string,
): Promise<LoanResult> {
  const now = tx.now();
  const terms = validateTerms(tx.config, body, inBody);
  const created = eventOf(tx, now, 'created', null, 'pending', {
    borrower_id: body.borrower_id,
    amount: formatMoney(terms.amountMinor, terms.currency),
    currency: terms.currency,
    term_months: terms.termMonths,
    interest_rate_apr: terms.interestRateApr,
  });
  const loan = await insertLoan(tx.client, { ...terms, id, borrowerId: body.borrower_id }, tx.actor, now, [
    created,
  ]);
  tx.facts.push({ kind: 'created', currency: terms.currency });
  return { loan };
}

export function approveLoan(tx: LoanTransaction, id: string, body: Static<typeof ApproveBody>) {
  return transition(tx, id, 'approve', (_loan, now) => ({
    to: 'approved',
    changes: { approved_at: now, approval_note: body.note ?? null },
    data: body.note === undefined ? {} : { note: body.note },
  }));
}

export function rejectLoan(tx: LoanTransaction, id: string, body: Static<typeof ReasonBody>) {
  return transition(tx, id, 'reject', (_loan, now) => ({
    to: 'rejected',
    changes: { rejected_at: now, rejection_reason: body.reason },
    data: { reason: body.reason },
  }));
}

export function disburseLoan(tx: LoanTransaction, id: string, body: Static<typeof DisburseBody>) {
  return transition(tx, id, 'disburse', (loan, now) => {
    const today = calendarDateOf(now);
    const disbursedOn = pastDate(body.disbursed_on, today, 'disbursed_on');
    const schedule = scheduleOf(loan, disbursedOn);
    return {
      to: 'disbursed',
      changes: {
        disbursed_at: now,
        disbursed_on: disbursedOn,
        outstanding_principal_minor: BigInt(loan.amount_minor),
        oldest_unpaid_due_date: schedule.installments[0]!.dueDate,
      },
      data: {
        disbursed_on: disbursedOn,
        recorded_on: today,
        amount: formatMoney(BigInt(loan.amount_minor), loan.currency),
        installment_amount: formatMoney(schedule.installmentMinor, loan.currency),
        total_repayable: formatMoney(schedule.totalRepayableMinor, loan.currency),
      },
    };
  });
}

export function defaultLoan(tx: LoanTransaction, id: string, body: Static<typeof ReasonBody>) {
  return transition(tx, id, 'default', (loan, now) => ({
    to: 'defaulted',
    changes: { defaulted_at: now, default_reason: body.reason },
    data: {
      reason: body.reason,
      outstanding_principal: formatMoney(BigInt(loan.outstanding_principal_minor), loan.currency),
    },
  }));
}

/**
 * The loan row stays locked until commit, so concurrent repayments apply one after the other and can
 * never push the balance below zero. The payment that clears the balance also moves the loan to repaid.
 */
export async function recordRepayment(
  tx: LoanTransaction,
  id: string,
  body: Static<typeof RepaymentBody>,
): Promise<RepaymentResult> {
  const { loan, now } = await lockFor(tx, id, 'repayments');
  const amount = positiveAmount(body.amount, loan.currency);
  if ('reason' in amount) throw validationError([inBody('amount', amount.reason)]);
  const paidOn = pastDate(body.paid_on, calendarDateOf(now), 'paid_on', loan.disbursed_on!);
  // A statement of its own, after the lock: a subquery of the locking statement would read the
  // repayments as they were before the lock's wait, without those of the transaction it waited for.
  const prior = (await listRepayments(tx.client, id)).map((row) => BigInt(row.amount_minor));
  if (prior.length >= MAX_REPAYMENTS_PER_LOAN) {
    throw new AppError('validation-error', {
      status: 422,
      detail: `a loan takes at most ${MAX_REPAYMENTS_PER_LOAN} repayments; pay what is outstanding in one`,
    });
  }
  const planned = planRepayment(scheduleOf(loan, loan.disbursed_on!), prior, amount.minor, paidOn);
  if (!planned.accepted) {
    const owed = formatMoney(planned.outstandingMinor, loan.currency);
    throw new AppError('validation-error', {
      status: 422,
      detail: `amount exceeds the outstanding balance of ${owed} ${loan.currency}`,
      errors: [{ pointer: '/amount', message: `must not exceed the outstanding balance of ${owed}` }],
      extensions: { outstanding_balance: owed },
    });
  }
  const { plan } = planned;

  const repayment = await insertRepayment(tx.client, {
    loanId: id,
    amountMinor: plan.amountMinor,
    interestMinor: plan.interestMinor,
    principalMinor: plan.principalMinor,
    paidOn,
    reference: body.reference ?? null,
    actor: tx.actor,
    requestId: tx.requestId,
    createdAt: now,
  });
  const money = (minor: bigint) => formatMoney(minor, loan.currency);
  const to = plan.cleared ? CLEARED_STATUS : loan.status;
  const events = [
    eventOf(tx, now, 'repayment', loan.status, loan.status, {
      repayment_id: repayment.id,
      amount: money(plan.amountMinor),
      interest: money(plan.interestMinor),
      principal: money(plan.principalMinor),
      paid_on: paidOn,
      reference: repayment.reference,
    }),
    ...(plan.cleared
      ? [eventOf(tx, now, CLEARED_STATUS, loan.status, to, { repayment_id: repayment.id })]
      : []),
  ];
  const changes = {
    outstanding_principal_minor: plan.outstandingPrincipalMinor,
    repaid_minor: plan.totalPaidMinor,
    oldest_unpaid_due_date: plan.nextDueDate,
    ...(plan.cleared ? { repaid_at: now } : {}),
  };
  const updated = await changeStatus(tx, loan, 'repayments', to, changes, events);
  tx.facts.push({ kind: 'repayment', currency: loan.currency, amountMinor: plan.amountMinor });
  if (plan.cleared) tx.facts.push({ kind: 'transition', from: loan.status, to });
  return { repayment, loan: updated };
}

interface TransitionPlan {
  to: LoanStatus & EventType;
  changes: LoanChanges;
  data: Record<string, unknown>;
}

/** A change of status with its event: the event type is the status it leads to. */
async function transition(
  tx: LoanTransaction,
  id: string,
  action: Exclude<LoanAction, 'repayments'>,
  plan: (loan: LoanRow, now: Date) => TransitionPlan,
): Promise<LoanResult> {
  const { loan, now } = await lockFor(tx, id, action);
  const { to, changes, data } = plan(loan, now);
  const updated = await changeStatus(tx, loan, action, to, changes, [
    eventOf(tx, now, to, loan.status, to, data),
  ]);
  tx.facts.push({ kind: 'transition', from: loan.status, to });
  return { loan: updated };
}

/**
 * Locks the loan, checks If-Match and that `action` is allowed. The clock is read once the lock is
 * held, so the changes of one loan (and their events' `at`) are in time order as well as in commit order.
 */
async function lockFor(tx: LoanTransaction, id: string, action: LoanAction) {
  const loan = await findLoan(tx.client, id, { forUpdate: true });
  if (!loan) throw notFound(`Loan ${id} does not exist`);
  if (CHECKER_ACTIONS.includes(action) && tx.actor !== ANONYMOUS && loan.created_by === tx.actor) {
    throw new AppError('forbidden', {
      detail: `Maker–checker: the API key that created this loan cannot ${action} it; another key must`,
    });
  }
  checkIfMatch(loan, tx.ifMatch);
  if (!canPerform(loan.status, action)) throw invalidTransition(loan, action);
  return { loan, now: tx.now() };
}

/** The conditional update with its events; when a concurrent change got there first, says why this one lost. */
async function changeStatus(
  tx: LoanTransaction,
  loan: LoanRow,
  action: LoanAction,
  to: LoanStatus,
  changes: LoanChanges,
  events: NewEvent[],
): Promise<LoanRow> {
  const version = tx.ifMatch === undefined ? undefined : loan.version;
  const where = { id: loan.id, from: loan.status, version };
  const updated = await updateLoanIf(tx.client, where, to, changes, events);
  if (updated) return updated;
  const current = await findLoan(tx.client, loan.id);
  if (!current) throw notFound(`Loan ${loan.id} does not exist`);
  checkIfMatch(current, tx.ifMatch);
  throw invalidTransition(current, action);
}

function eventOf(
  tx: LoanTransaction,
  at: Date,
  type: EventType,
  from: LoanStatus | null,
  to: LoanStatus,
  data: Record<string, unknown>,
): NewEvent {
  return { type, from, to, actor: tx.actor, requestId: tx.requestId, at, data };
}

function invalidTransition(loan: LoanRow, action: LoanAction): AppError {
  return new AppError('invalid-state-transition', {
    detail: `Cannot ${action === 'repayments' ? 'record a repayment on' : action} a loan that is ${loan.status}`,
    extensions: { current_status: loan.status, allowed_actions: allowedActions(loan.status) },
  });
}

/** If-Match: the client's view of the loan must be current (`*` matches any loan). */
function checkIfMatch(loan: LoanRow, ifMatch: string | undefined): void {
  if (ifMatch === undefined) return;
  const tags = ifMatch.split(',').map((tag) => tag.trim());
  if (tags.includes('*') || tags.includes(etagOf(loan))) return;
  throw new AppError('precondition-failed', {
    detail: `The loan has changed: its current ETag is ${etagOf(loan)}`,
    headers: { etag: etagOf(loan) },
  });
}

/** A calendar date given by the client: not in the future, not absurdly old. */
function pastDate(
  value: string | undefined,
  today: string,
  field: string,
  notBefore = EARLIEST_DATE,
): string {
  const date = value ?? today;
  if (date > today)
    throw validationError([inBody(field, `must not be in the future (today is ${today} UTC)`)]);
  if (date < notBefore) throw validationError([inBody(field, `must not be before ${notBefore}`)]);
  return date;
}
