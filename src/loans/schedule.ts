// Amortization per API.md §3: declining balance, equal monthly installments, exact bigint arithmetic.
// Amounts are minor units, so rounding "to the currency's minor unit" is rounding to an integer and
// the computation needs no currency; formatting happens where the currency is known.
import { divideHalfEven, parseDecimal } from '../money/money.ts';
import { addMonthsClamped, parseCalendarDate } from '../platform/calendar.ts';

export interface ScheduleInput {
  principalMinor: bigint;
  /** APR in basis points of a percent: "18.50" % → 1850n. */
  aprBasisPoints: bigint;
  termMonths: number;
  /** Calendar date `YYYY-MM-DD`. */
  disbursedOn: string;
}

export interface Installment {
  number: number;
  dueDate: string;
  principalMinor: bigint;
  interestMinor: bigint;
  totalMinor: bigint;
  /** Principal still owed once this installment is paid. */
  balanceAfterMinor: bigint;
}

export interface Schedule {
  installmentMinor: bigint;
  totalInterestMinor: bigint;
  totalRepayableMinor: bigint;
  installments: Installment[];
}

export const MAX_TERM_MONTHS = 360;
export const MAX_APR_BASIS_POINTS = 10_000n;

/** r = apr/100/12 with apr = bps/100, so r = bps / 120000. */
const MONTHLY_RATE_DENOMINATOR = 120_000n;

/** Parses an APR decimal string such as "18.50" into basis points (1850n). */
export function aprToBasisPoints(apr: string): bigint {
  const parsed = parseDecimal(apr, 2);
  if (!parsed.ok) throw new RangeError(`invalid APR ${JSON.stringify(apr)}: ${parsed.reason}`);
  return parsed.value;
}

/** Interest on `balanceMinor` for one month at `aprBasisPoints`, rounded half-even. */
function monthlyInterest(balanceMinor: bigint, aprBasisPoints: bigint): bigint {
  return divideHalfEven(balanceMinor * aprBasisPoints, MONTHLY_RATE_DENOMINATOR);
}

/**
 * A = P·r·(1+r)^n / ((1+r)^n − 1) with r = B/D, which is P·B·(D+B)^n / (D·((D+B)^n − D^n)):
 * one exact rational, rounded once.
 */
export function installmentAmount(
  principalMinor: bigint,
  aprBasisPoints: bigint,
  termMonths: number,
): bigint {
  const n = BigInt(termMonths);
  if (aprBasisPoints === 0n) return divideHalfEven(principalMinor, n);
  const d = MONTHLY_RATE_DENOMINATOR;
  const growth = (d + aprBasisPoints) ** n;
  const numerator = principalMinor * aprBasisPoints * growth;
  const denominator = d * (growth - d ** n);
  return divideHalfEven(numerator, denominator);
}

/**
 * Builds the repayment schedule. Each month: interest = balance·r rounded half-even and
 * principal = A − interest; the last installment repays the remaining balance.
 *
 * Interest never exceeds A: round(P·r) ≤ round(A_exact) because P·r < A_exact and rounding is monotone,
 * and the balance only falls. The balance can, however, reach zero early when A was rounded up, since the
 * excess (up to ½ minor unit) repays principal every month (9 minor units over 6 months at 0 %: A = 2).
 * The principal part is therefore capped at the balance, so no part is ever negative; installments after
 * the balance reaches zero are 0.
 */
export function buildSchedule(input: ScheduleInput): Schedule {
  validate(input);
  const { principalMinor, aprBasisPoints, termMonths, disbursedOn } = input;
  const installmentMinor = installmentAmount(principalMinor, aprBasisPoints, termMonths);
  const installments: Installment[] = [];
  let balance = principalMinor;
  for (let number = 1; number <= termMonths; number++) {
    const interestMinor = monthlyInterest(balance, aprBasisPoints);
    const principalMinor =
      number === termMonths ? balance : minBigint(installmentMinor - interestMinor, balance);
    balance -= principalMinor;
    installments.push({
      number,
      dueDate: addMonthsClamped(disbursedOn, number),
      principalMinor,
      interestMinor,
      totalMinor: principalMinor + interestMinor,
      balanceAfterMinor: balance,
    });
  }
  const totalInterestMinor = installments.reduce((sum, row) => sum + row.interestMinor, 0n);
  return {
    installmentMinor,
    totalInterestMinor,
    totalRepayableMinor: principalMinor + totalInterestMinor,
    installments,
  };
}

function validate({ principalMinor, aprBasisPoints, termMonths, disbursedOn }: ScheduleInput): void {
  if (principalMinor <= 0n) throw new RangeError('principal must be positive');
  if (aprBasisPoints < 0n || aprBasisPoints > MAX_APR_BASIS_POINTS) {
    throw new RangeError('APR must be between 0 and 100 %');
  }
  if (!Number.isInteger(termMonths) || termMonths < 1 || termMonths > MAX_TERM_MONTHS) {
    throw new RangeError(`term must be a whole number of months from 1 to ${MAX_TERM_MONTHS}`);
  }
  parseCalendarDate(disbursedOn);
}

function minBigint(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** The schedule of a loan's terms when disbursed on `disbursedOn`. */
export function scheduleOf(
  loan: { amount_minor: string; interest_rate_apr: string; term_months: number },
  disbursedOn: string,
): Schedule {
  return buildSchedule({
    principalMinor: BigInt(loan.amount_minor),
    aprBasisPoints: aprToBasisPoints(loan.interest_rate_apr),
    termMonths: loan.term_months,
    disbursedOn,
  });
}
