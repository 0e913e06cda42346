// Every change to a loan, one small function per action. Each makes one conditional update that writes
// its events (and repayment) with it, in the caller's transaction, and returns the changed rows; the route
// renders them. Actions that need the loan's values lock it first; a decision on a pending loan needs none.
import type { Static } from '@sinclair/typebox';
import { formatMoney } from '../money/money.ts';
import { ANONYMOUS } from '../platform/auth.ts';
import { calendarDateOf } from '../platform/calendar.ts';
import { AppError, notFound, validationError } from '../platform/errors.ts';
import { MAX_REPAYMENTS_PER_LOAN, planRepayment } from './allocation.ts';
import { type EventType, eventsInsert, type NewEvent } from './events.repository.ts';
import {
  allowedActions,
  CHECKER_ACTIONS,
  CLEARED_STATUS,
  canPerform,
  type LoanAction,
  type LoanStatus,
  onlyStatusFor,
} from './loan-status.ts';
import { inBody, positiveAmount, validateTerms } from './loan-terms.ts';
import type { LoanTransaction } from './loan-transaction.ts';
import { etagOf, versionsIn } from './loan-views.ts';
import {
  type Companion,
  findLoan,
  insertLoan,
  type LoanChanges,
  type LoanRow,
  lockLoanWithRepayments,
  updateLoanIf,
} from './loans.repository.ts';
import type {
  ApproveBody,
  CreateLoanBody,
  DisburseBody,
  ReasonBody,
  RepaymentBody,
} from './loans.schemas.ts';
import { type RepaymentRow, repaymentInsert, repaymentRow } from './repayments.repository.ts';
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
    eventsInsert([created]),
  ]);
  tx.facts.push({ kind: 'created', currency: terms.currency });
  return { loan };
}

export function approveLoan(tx: LoanTransaction, id: string, body: Static<typeof ApproveBody>) {
  return decide(tx, id, 'approve', (now) => ({
    to: 'approved',
    changes: { approved_at: now, approval_note: body.note ?? null },
    data: body.note === undefined ? {} : { note: body.note },
  }));
}

export function rejectLoan(tx: LoanTransaction, id: string, body: Static<typeof ReasonBody>) {
  return decide(tx, id, 'reject', (now) => ({
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
  const locked = await lockLoanWithRepayments(tx.client, id);
  const { loan, now } = lockedFor(tx, id, locked.loan, 'repayments');
  const amount = positiveAmount(body.amount, loan.currency);
  if ('reason' in amount) throw validationError([inBody('amount', amount.reason)]);
  const paidOn = pastDate(body.paid_on, calendarDateOf(now), 'paid_on', loan.disbursed_on!);
  const prior = locked.repaidMinor;
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
  // The last repayment a loan takes must clear it: one that did not would leave a balance nothing could pay.
  if (prior.length + 1 >= MAX_REPAYMENTS_PER_LOAN && !plan.cleared) {
    throw new AppError('validation-error', {
      status: 422,
      detail: `a loan takes at most ${MAX_REPAYMENTS_PER_LOAN} repayments and this would be the last; pay what is outstanding in one`,
    });
  }

  const repayment = repaymentRow({
    loanId: loan.id,
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
  const updated = await changeStatus(tx, loan, 'repayments', to, changes, [
    repaymentInsert(repayment),
    eventsInsert(events),
  ]);
  tx.facts.push({ kind: 'repayment', currency: loan.currency, amountMinor: plan.amountMinor });
  if (plan.cleared) tx.facts.push({ kind: 'transition', from: loan.status, to });
  return { repayment, loan: updated };
}

/**
 * Commands that make at most one statement (atomic by itself), so they may run without BEGIN and COMMIT:
 * a create and the decisions. Every other command locks the loan first and needs its transaction.
 */
export const ONE_STATEMENT_COMMANDS: ReadonlySet<unknown> = new Set([createLoan, approveLoan, rejectLoan]);

interface TransitionPlan {
  to: LoanStatus & EventType;
  changes: LoanChanges;
  data: Record<string, unknown>;
}

/** A change of status with its event: the event type is the status it leads to. */
async function transition(
  tx: LoanTransaction,
  id: string,
  action: 'disburse' | 'default',
  plan: (loan: LoanRow, now: Date) => TransitionPlan,
): Promise<LoanResult> {
  const { loan, now } = lockedFor(tx, id, await findLoan(tx.client, id, { forUpdate: true }), action);
  const { to, changes, data } = plan(loan, now);
  const updated = await changeStatus(tx, loan, action, to, changes, [
    eventsInsert([eventOf(tx, now, to, loan.status, to, data)]),
  ]);
  tx.facts.push({ kind: 'transition', from: loan.status, to });
  return { loan: updated };
}

/**
 * A decision on a pending loan reads nothing from it, so it is one statement: the checks of lockedFor
 * are conditions of the update, and only when it changes nothing is the loan read, to say why. The clock
 * is read before the statement: the only changes of a pending loan are decisions, and one at most applies.
 */
async function decide(
  tx: LoanTransaction,
  id: string,
  action: 'approve' | 'reject',
  plan: (now: Date) => TransitionPlan,
): Promise<LoanResult> {
  const from = onlyStatusFor(action);
  const now = tx.now();
  const { to, changes, data } = plan(now);
  const where = {
    id,
    from,
    versions: versionsIn(tx.ifMatch, id),
    notCreatedBy: CHECKER_ACTIONS.includes(action) && tx.actor !== ANONYMOUS ? tx.actor : undefined,
  };
  const event = eventOf(tx, now, to, from, to, data);
  const updated = await updateLoanIf(tx.client, where, to, changes, [eventsInsert([event])]);
  if (!updated) throw await refusal(tx, id, action);
  tx.facts.push({ kind: 'transition', from, to });
  return { loan: updated };
}

/**
 * The locked loan, once checked: it exists, the caller may act on it (maker–checker), If-Match holds
 * and `action` is allowed from its status. The clock is read once the lock is held, so the changes of
 * one loan (and their events' `at`) are in time order as well as in commit order.
 */
function lockedFor(tx: LoanTransaction, id: string, loan: LoanRow | undefined, action: LoanAction) {
  return { loan: checked(tx, id, loan, action), now: tx.now() };
}

/** `loan` when the caller may do `action` on it; otherwise the reason, in the order a client fixes them. */
function checked(tx: LoanTransaction, id: string, loan: LoanRow | undefined, action: LoanAction): LoanRow {
  if (!loan) throw notFound(`Loan ${id} does not exist`);
  if (CHECKER_ACTIONS.includes(action) && tx.actor !== ANONYMOUS && loan.created_by === tx.actor) {
    throw new AppError('forbidden', {
      detail: `Maker–checker: the API key that created this loan cannot ${action} it; another key must`,
    });
  }
  checkIfMatch(loan, tx.ifMatch);
  if (!canPerform(loan.status, action)) throw invalidTransition(loan, action);
  return loan;
}

/** Why a conditional update of `action` changed nothing, from the loan as it is now. */
async function refusal(tx: LoanTransaction, id: string, action: LoanAction): Promise<AppError> {
  return invalidTransition(checked(tx, id, await findLoan(tx.client, id), action), action);
}

/** The conditional update with its companions; when a concurrent change got there first, says why this one lost. */
async function changeStatus(
  tx: LoanTransaction,
  loan: LoanRow,
  action: LoanAction,
  to: LoanStatus,
  changes: LoanChanges,
  companions: Companion[],
): Promise<LoanRow> {
  const versions = tx.ifMatch === undefined ? undefined : [loan.version];
  const updated = await updateLoanIf(
    tx.client,
    { id: loan.id, from: loan.status, versions },
    to,
    changes,
    companions,
  );
  if (updated) return updated;
  throw await refusal(tx, loan.id, action);
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
  const versions = versionsIn(ifMatch, loan.id);
  if (versions === undefined || versions.includes(loan.version)) return;
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
