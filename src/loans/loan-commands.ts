// Every change to a loan: one transaction with its conditional update, its events and, when the
// client sent an Idempotency-Key, the stored response.
import type { Static } from '@sinclair/typebox';
import type pg from 'pg';
import type { Config } from '../config.ts';
import { formatMoney } from '../money/money.ts';
import type { Pool } from '../platform/database.ts';
import { AppError, notFound, validationError } from '../platform/errors.ts';
import { problemResponse } from '../platform/http-errors.ts';
import { allocateRepayments, nextDueDate } from './allocation.ts';
import { appendEvent, type EventType } from './events.repository.ts';
import {
  type IdempotentRequest,
  type Outcome,
  requestFingerprint,
  runIdempotent,
  type StoredResponse,
} from './idempotency.ts';
import { allowedActions, canPerform, type LoanAction, type LoanStatus } from './loan-status.ts';
import { inBody, positiveAmount, validateTerms } from './loan-terms.ts';
import { etagOf, loanView, repaymentView } from './loan-views.ts';
import { findLoan, insertLoan, type LoanChanges, type LoanRow, updateLoanIf } from './loans.repository.ts';
import type {
  ApproveBody,
  CreateLoanBody,
  DisburseBody,
  ReasonBody,
  RepaymentBody,
} from './loans.schemas.ts';
import { insertRepayment, listRepayments } from './repayments.repository.ts';
import { aprToBasisPoints, buildSchedule, calendarDateOf, type Schedule } from './schedule.ts';

/** What a command needs to know about the request that asked for it. */
export interface CommandContext {
  actor: string;
  requestId: string;
  method: string;
  path: string;
  body: unknown;
  idempotencyKey: string | undefined;
  ifMatch: string | undefined;
}

/** Told what the commands changed, once it has committed; never for a replay, a refusal or a failure. */
export interface LoanMetrics {
  loanCreated(currency: string): void;
  transition(from: LoanStatus, to: LoanStatus): void;
  repayment(currency: string, amountMinor: bigint): void;
}

export interface CommandDeps {
  pool: Pool;
  config: Config;
  /** The service's notion of now; tests and the seed set it. */
  clock: () => Date;
  /** The seed and the CLI run without metrics. */
  metrics?: LoanMetrics;
}

/** Something a command did, held back until its transaction commits. */
type Fact =
  | { kind: 'created'; currency: string }
  | { kind: 'transition'; from: LoanStatus; to: LoanStatus }
  | { kind: 'repayment'; currency: string; amountMinor: bigint };

function report(metrics: LoanMetrics, fact: Fact): void {
  if (fact.kind === 'created') metrics.loanCreated(fact.currency);
  else if (fact.kind === 'transition') metrics.transition(fact.from, fact.to);
  else metrics.repayment(fact.currency, fact.amountMinor);
}

const JSON_TYPE = 'application/json; charset=utf-8';
const EARLIEST_DATE = '2000-01-01';

export function scheduleOf(loan: LoanRow, disbursedOn: string): Schedule {
  return buildSchedule({
    principalMinor: BigInt(loan.amount_minor),
    aprBasisPoints: aprToBasisPoints(loan.interest_rate_apr),
    termMonths: loan.term_months,
    disbursedOn,
  });
}

function invalidTransition(loan: LoanRow, action: LoanAction): AppError {
  const allowed = allowedActions(loan.status);
  return new AppError('invalid-state-transition', 409, {
    detail: `Cannot ${action === 'repayments' ? 'record a repayment on' : action} a loan that is ${loan.status}`,
    extensions: { current_status: loan.status, allowed_actions: allowed },
  });
}

/** If-Match: the client's view of the loan must be current (`*` matches any loan). */
function checkIfMatch(loan: LoanRow, ifMatch: string | undefined): void {
  if (ifMatch === undefined) return;
  const tags = ifMatch.split(',').map((tag) => tag.trim());
  if (tags.includes('*') || tags.includes(etagOf(loan))) return;
  throw new AppError('precondition-failed', 412, {
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

export function createLoanCommands(deps: CommandDeps) {
  const { pool, config, clock, metrics } = deps;

  /**
   * Runs `work` idempotently and reports the facts it recorded once they have committed. A replay
   * never runs `work`, and a client error stored with the key is thrown out of it, so neither has any.
   */
  const run = async (
    ctx: CommandContext,
    work: (client: pg.PoolClient, facts: Fact[]) => Promise<StoredResponse>,
  ): Promise<Outcome> => {
    const request: IdempotentRequest = {
      scope: ctx.actor,
      key: ctx.idempotencyKey,
      fingerprint: requestFingerprint(ctx.method, ctx.path, ctx.body),
      renderError: (error) => problemResponse(error, ctx.path, ctx.requestId),
    };
    let committed: Fact[] = [];
    const outcome = await runIdempotent(pool, request, config.idempotency.waitMs, async (client) => {
      const facts: Fact[] = [];
      const response = await work(client, facts);
      committed = facts;
      return response;
    });
    if (metrics) for (const fact of committed) report(metrics, fact);
    return outcome;
  };

  const loanResponse = (row: LoanRow, now: Date, status = 200, headers: Record<string, string> = {}) => ({
    status,
    headers: { 'content-type': JSON_TYPE, etag: etagOf(row), ...headers },
    body: JSON.stringify(loanView(row, calendarDateOf(now))),
  });

  const event = (
    client: pg.PoolClient,
    ctx: CommandContext,
    now: Date,
    loanId: string,
    type: EventType,
    from: LoanStatus | null,
    to: LoanStatus,
    data: Record<string, unknown>,
  ) =>
    appendEvent(client, {
      loanId,
      type,
      from,
      to,
      actor: ctx.actor,
      requestId: ctx.requestId,
      at: now,
      data,
    });

  /**
   * Locks the loan, checks If-Match and that `action` is allowed. The clock is read once the lock is
   * held, so the changes of one loan (and their events' `at`) are in time order as well as in commit order.
   */
  async function loadFor(client: pg.PoolClient, id: string, action: LoanAction, ctx: CommandContext) {
    const loan = await findLoan(client, id, { forUpdate: true });
    if (!loan) throw notFound(`Loan ${id} does not exist`);
    checkIfMatch(loan, ctx.ifMatch);
    if (!canPerform(loan.status, action)) throw invalidTransition(loan, action);
    return { loan, now: clock() };
  }

  /** The conditional update; when a concurrent change got there first, says why this one lost. */
  async function applyTransition(
    client: pg.PoolClient,
    loan: LoanRow,
    action: LoanAction,
    to: LoanStatus,
    changes: LoanChanges,
    ctx: CommandContext,
  ): Promise<LoanRow> {
    const version = ctx.ifMatch === undefined ? undefined : loan.version;
    const updated = await updateLoanIf(client, { id: loan.id, from: loan.status, version }, to, changes);
    if (updated) return updated;
    const current = await findLoan(client, loan.id);
    if (!current) throw notFound(`Loan ${loan.id} does not exist`);
    checkIfMatch(current, ctx.ifMatch);
    throw invalidTransition(current, action);
  }

  async function transition(
    id: string,
    ctx: CommandContext,
    action: Exclude<LoanAction, 'repayments'>,
    plan: (
      loan: LoanRow,
      now: Date,
    ) => { to: LoanStatus; type: EventType; changes: LoanChanges; data: Record<string, unknown> },
  ): Promise<Outcome> {
    return run(ctx, async (client, facts) => {
      const { loan, now } = await loadFor(client, id, action, ctx);
      const { to, type, changes, data } = plan(loan, now);
      const updated = await applyTransition(client, loan, action, to, changes, ctx);
      await event(client, ctx, now, id, type, loan.status, to, data);
      facts.push({ kind: 'transition', from: loan.status, to });
      return loanResponse(updated, now);
    });
  }

  return {
    /** `id` is for importing loans that already have one (the seed); the API always generates it. */
    create(body: Static<typeof CreateLoanBody>, ctx: CommandContext, id?: string): Promise<Outcome> {
      return run(ctx, async (client, facts) => {
        const now = clock();
        const terms = validateTerms(config, body, inBody);
        const loan = await insertLoan(client, { ...terms, id, borrowerId: body.borrower_id }, ctx.actor, now);
        await event(client, ctx, now, loan.id, 'created', null, 'pending', {
          borrower_id: loan.borrower_id,
          amount: formatMoney(terms.amountMinor, terms.currency),
          currency: terms.currency,
          term_months: terms.termMonths,
          interest_rate_apr: terms.interestRateApr,
        });
        facts.push({ kind: 'created', currency: terms.currency });
        return loanResponse(loan, now, 201, { location: `/api/loans/${loan.id}` });
      });
    },

    approve(id: string, body: Static<typeof ApproveBody>, ctx: CommandContext) {
      return transition(id, ctx, 'approve', (_loan, now) => ({
        to: 'approved',
        type: 'approved',
        changes: { approved_at: now, approval_note: body.note ?? null },
        data: body.note === undefined ? {} : { note: body.note },
      }));
    },

    reject(id: string, body: Static<typeof ReasonBody>, ctx: CommandContext) {
      return transition(id, ctx, 'reject', (_loan, now) => ({
        to: 'rejected',
        type: 'rejected',
        changes: { rejected_at: now, rejection_reason: body.reason },
        data: { reason: body.reason },
      }));
    },

    disburse(id: string, body: Static<typeof DisburseBody>, ctx: CommandContext) {
      return transition(id, ctx, 'disburse', (loan, now) => {
        const today = calendarDateOf(now);
        const disbursedOn = pastDate(body.disbursed_on, today, 'disbursed_on');
        const schedule = scheduleOf(loan, disbursedOn);
        return {
          to: 'disbursed',
          type: 'disbursed',
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
    },

    markDefaulted(id: string, body: Static<typeof ReasonBody>, ctx: CommandContext) {
      return transition(id, ctx, 'default', (loan, now) => ({
        to: 'defaulted',
        type: 'defaulted',
        changes: { defaulted_at: now, default_reason: body.reason },
        data: {
          reason: body.reason,
          outstanding_principal: formatMoney(BigInt(loan.outstanding_principal_minor), loan.currency),
        },
      }));
    },

    /**
     * Allocates oldest installment first, interest before principal. The loan row is locked, so
     * concurrent repayments apply one after the other and can never push the balance below zero.
     */
    recordRepayment(id: string, body: Static<typeof RepaymentBody>, ctx: CommandContext): Promise<Outcome> {
      return run(ctx, async (client, facts) => {
        const { loan, now } = await loadFor(client, id, 'repayments', ctx);
        const amount = positiveAmount(body.amount, loan.currency);
        if ('reason' in amount) throw validationError([inBody('amount', amount.reason)]);
        const today = calendarDateOf(now);
        const paidOn = pastDate(body.paid_on, today, 'paid_on', loan.disbursed_on!);

        const schedule = scheduleOf(loan, loan.disbursed_on!);
        const prior = (await listRepayments(client, id)).map((row) => BigInt(row.amount_minor));
        const before = allocateRepayments(schedule.installments, prior);
        if (amount.minor > before.outstandingMinor) {
          const owed = formatMoney(before.outstandingMinor, loan.currency);
          throw new AppError('validation-error', 422, {
            detail: `amount exceeds the outstanding balance of ${owed} ${loan.currency}`,
            errors: [{ pointer: '/amount', message: `must not exceed the outstanding balance of ${owed}` }],
            extensions: { outstanding_balance: owed },
          });
        }
        const after = allocateRepayments(schedule.installments, [...prior, amount.minor]);
        const interestMinor = before.outstandingInterestMinor - after.outstandingInterestMinor;

        const repayment = await insertRepayment(client, {
          loanId: id,
          amountMinor: amount.minor,
          interestMinor,
          principalMinor: amount.minor - interestMinor,
          paidOn,
          reference: body.reference ?? null,
          actor: ctx.actor,
          requestId: ctx.requestId,
          createdAt: now,
        });
        const view = repaymentView(repayment, loan.currency);
        await event(client, ctx, now, id, 'repayment', loan.status, loan.status, {
          repayment_id: repayment.id,
          amount: view.amount,
          interest: view.interest,
          principal: view.principal,
          paid_on: paidOn,
          reference: view.reference,
        });

        const cleared = after.outstandingMinor === 0n;
        const to: LoanStatus = cleared ? 'repaid' : loan.status;
        const updated = await applyTransition(
          client,
          loan,
          'repayments',
          to,
          {
            outstanding_principal_minor: after.outstandingPrincipalMinor,
            repaid_minor: after.totalPaidMinor,
            oldest_unpaid_due_date: nextDueDate(after),
            ...(cleared ? { repaid_at: now } : {}),
          },
          ctx,
        );
        facts.push({ kind: 'repayment', currency: loan.currency, amountMinor: amount.minor });
        if (cleared) {
          await event(client, ctx, now, id, 'repaid', loan.status, 'repaid', { repayment_id: repayment.id });
          facts.push({ kind: 'transition', from: loan.status, to: 'repaid' });
        }
        return {
          status: 201,
          headers: {
            'content-type': JSON_TYPE,
            location: `/api/loans/${id}/repayments`,
            etag: etagOf(updated),
          },
          body: JSON.stringify(view),
        };
      });
    },
  };
}

export type LoanCommands = ReturnType<typeof createLoanCommands>;
