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

function formatCalendarDate({ year, month, day }: CalendarDate): string {
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
