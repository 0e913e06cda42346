// Amortization per API.md §3: declining balance, equal monthly installments, exact bigint arithmetic.
// Amounts are minor units, so rounding "to the currency's minor unit" is rounding to an integer and
// the computation needs no currency; formatting happens where the currency is known.
import { divideHalfEven, parseDecimal } from '../money/money.ts';

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
export function monthlyInterest(balanceMinor: bigint, aprBasisPoints: bigint): bigint {
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

// Calendar dates are plain `YYYY-MM-DD` values; all arithmetic is in UTC, so no local time zone or
// daylight-saving shift can move a date.

export interface CalendarDate {
  year: number;
  /** 1–12 */
  month: number;
  day: number;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const MS_PER_DAY = 86_400_000;

/** Parses `YYYY-MM-DD`; throws RangeError for malformed or impossible dates (2026-02-30). */
export function parseCalendarDate(text: string): CalendarDate {
  const match = DATE.exec(text);
  if (!match) throw new RangeError(`invalid date ${JSON.stringify(text)}: expected YYYY-MM-DD`);
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    throw new RangeError(`invalid date ${JSON.stringify(text)}: no such day`);
  }
  return { year, month, day };
}

export function formatCalendarDate({ year, month, day }: CalendarDate): string {
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
}

/** The UTC calendar date of an instant: what "today" is for the API. */
export function calendarDateOf(instant: Date): string {
  return instant.toISOString().slice(0, 10);
}

export function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** Same day of month `months` later, clamped to that month's last day (01-31 + 1 → 02-28). */
export function addMonthsClamped(date: string, months: number): string {
  const { year, month, day } = parseCalendarDate(date);
  const monthIndex = year * 12 + (month - 1) + months;
  const targetYear = Math.floor(monthIndex / 12);
  const targetMonth = (monthIndex % 12) + 1;
  return formatCalendarDate({
    year: targetYear,
    month: targetMonth,
    day: Math.min(day, daysInMonth(targetYear, targetMonth)),
  });
}

/** Whole days from `from` to `to` (negative when `to` is earlier). */
export function daysBetween(from: string, to: string): number {
  return (utcMidnight(to) - utcMidnight(from)) / MS_PER_DAY;
}

/** The calendar date `days` after `date` (before, when negative). */
export function addDays(date: string, days: number): string {
  return calendarDateOf(new Date(utcMidnight(date) + days * MS_PER_DAY));
}

function utcMidnight(date: string): number {
  const { year, month, day } = parseCalendarDate(date);
  // setUTCFullYear, unlike Date.UTC, does not map years 0–99 to 1900–1999.
  const instant = new Date(0);
  instant.setUTCFullYear(year, month - 1, day);
  return instant.getTime();
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}
