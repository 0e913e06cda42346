// Allocation of repayments to a schedule (API.md §3): oldest installment first, interest before
// principal within an installment. Pure: amounts in bigint minor units, dates as `YYYY-MM-DD`.
import { daysBetween, parseCalendarDate } from '../platform/calendar.ts';

/** The part of a schedule row that allocation needs (a schedule `Installment` fits). */
export interface InstallmentDue {
  number: number;
  dueDate: string;
  principalMinor: bigint;
  interestMinor: bigint;
}

export type AllocatedInstallment<T extends InstallmentDue = InstallmentDue> = T & {
  paidInterestMinor: bigint;
  paidPrincipalMinor: bigint;
  paidMinor: bigint;
  /** Still owed on this installment (interest and principal). */
  owedMinor: bigint;
};

export interface Allocation<T extends InstallmentDue = InstallmentDue> {
  installments: AllocatedInstallment<T>[];
  totalPaidMinor: bigint;
  /** Payments beyond everything owed; the service refuses overpayments, so normally 0. */
  unappliedMinor: bigint;
  outstandingPrincipalMinor: bigint;
  outstandingInterestMinor: bigint;
  /** Everything still owed: the largest payment that can be accepted now. */
  outstandingMinor: bigint;
}

/** Enough for any real loan; the bound that the lists of repayments and events are documented with. */
export const MAX_REPAYMENTS_PER_LOAN = 10_000;

export const INSTALLMENT_STATUSES = ['pending', 'partial', 'paid', 'overdue'] as const;
export type InstallmentStatus = (typeof INSTALLMENT_STATUSES)[number];

/** Applies `paymentsMinor` (in the order they were received) to `installments` (in schedule order). */
export function allocateRepayments<T extends InstallmentDue>(
  installments: readonly T[],
  paymentsMinor: readonly bigint[],
): Allocation<T> {
  if (paymentsMinor.some((amount) => amount < 0n)) throw new RangeError('payments cannot be negative');
  const totalPaidMinor = sum(paymentsMinor, (amount) => amount);
  // Oldest first and interest before principal make the result depend only on the total paid.
  let available = totalPaidMinor;
  const take = (owed: bigint): bigint => {
    const taken = available < owed ? available : owed;
    available -= taken;
    return taken;
  };
  const allocated = installments.map((installment): AllocatedInstallment<T> => {
    const paidInterestMinor = take(installment.interestMinor);
    const paidPrincipalMinor = take(installment.principalMinor);
    const paidMinor = paidInterestMinor + paidPrincipalMinor;
    const owedMinor = installment.interestMinor + installment.principalMinor - paidMinor;
    return { ...installment, paidInterestMinor, paidPrincipalMinor, paidMinor, owedMinor };
  });
  const outstandingPrincipalMinor = sum(allocated, (row) => row.principalMinor - row.paidPrincipalMinor);
  const outstandingInterestMinor = sum(allocated, (row) => row.interestMinor - row.paidInterestMinor);
  return {
    installments: allocated,
    totalPaidMinor,
    unappliedMinor: available,
    outstandingPrincipalMinor,
    outstandingInterestMinor,
    outstandingMinor: outstandingPrincipalMinor + outstandingInterestMinor,
  };
}

/**
 * An installment is due on its due date and past due from the next day: paying on the due date is on time.
 * `paid` when nothing is owed; else `overdue` once past due; else `partial` or `pending` by what was paid.
 */
export function installmentStatus(row: AllocatedInstallment, asOf: string): InstallmentStatus {
  if (row.owedMinor === 0n) return 'paid';
  if (row.dueDate < asOf) return 'overdue';
  return row.paidMinor > 0n ? 'partial' : 'pending';
}

/** Due date of the oldest installment not fully paid (possibly already past), or null when cleared. */
export function nextDueDate(allocation: Allocation): string | null {
  return allocation.installments.find((row) => row.owedMinor > 0n)?.dueDate ?? null;
}

/**
 * Days since the oldest unpaid installment fell due: asOf − dueDate once asOf is after the due date
 * (1 on the day after), else 0; 0 when nothing is owed.
 */
export function daysPastDue(oldestUnpaidDue: string | null, asOf: string): number {
  return oldestUnpaidDue === null ? 0 : Math.max(0, daysBetween(oldestUnpaidDue, asOf));
}

export type InstallmentPosition<T extends InstallmentDue = InstallmentDue> = AllocatedInstallment<T> & {
  status: InstallmentStatus;
};

export interface LoanPosition<T extends InstallmentDue = InstallmentDue> extends Allocation<T> {
  installments: InstallmentPosition<T>[];
}

/** The allocation with each installment's status as of the calendar date `asOf`. */
export function loanPosition<T extends InstallmentDue>(
  installments: readonly T[],
  paymentsMinor: readonly bigint[],
  asOf: string,
): LoanPosition<T> {
  parseCalendarDate(asOf);
  const allocation = allocateRepayments(installments, paymentsMinor);
  return {
    ...allocation,
    installments: allocation.installments.map((row) => ({ ...row, status: installmentStatus(row, asOf) })),
  };
}

/** A repayment as it is recorded, and where it leaves the loan. */
export interface RepaymentPlan {
  amountMinor: bigint;
  interestMinor: bigint;
  principalMinor: bigint;
  paidOn: string;
  outstandingPrincipalMinor: bigint;
  /** Everything paid so far, this payment included. */
  totalPaidMinor: bigint;
  nextDueDate: string | null;
  /** True when nothing is owed any more: the loan is repaid. */
  cleared: boolean;
}

/**
 * Allocates a payment of `amountMinor` after `priorPaymentsMinor`: oldest installment first, interest
 * before principal. More than everything owed is refused, with what is owed.
 */
export function planRepayment(
  schedule: { installments: readonly InstallmentDue[] },
  priorPaymentsMinor: readonly bigint[],
  amountMinor: bigint,
  paidOn: string,
): { accepted: true; plan: RepaymentPlan } | { accepted: false; outstandingMinor: bigint } {
  if (amountMinor <= 0n) throw new RangeError('a repayment must be positive');
  parseCalendarDate(paidOn);
  const before = allocateRepayments(schedule.installments, priorPaymentsMinor);
  if (amountMinor > before.outstandingMinor)
    return { accepted: false, outstandingMinor: before.outstandingMinor };
  const after = allocateRepayments(schedule.installments, [...priorPaymentsMinor, amountMinor]);
  const interestMinor = before.outstandingInterestMinor - after.outstandingInterestMinor;
  return {
    accepted: true,
    plan: {
      amountMinor,
      interestMinor,
      principalMinor: amountMinor - interestMinor,
      paidOn,
      outstandingPrincipalMinor: after.outstandingPrincipalMinor,
      totalPaidMinor: after.totalPaidMinor,
      nextDueDate: nextDueDate(after),
      cleared: after.outstandingMinor === 0n,
    },
  };
}

function sum<T>(items: readonly T[], amount: (item: T) => bigint): bigint {
  return items.reduce((total, item) => total + amount(item), 0n);
}
