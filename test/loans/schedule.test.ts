import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  aprToBasisPoints,
  buildSchedule,
  installmentAmount,
  type Schedule,
} from '../../src/loans/schedule.ts';
import { divideHalfEven, formatMoney, parseMoney } from '../../src/money/money.ts';
import {
  addMonthsClamped,
  calendarDateOf,
  daysBetween,
  daysInMonth,
  parseCalendarDate,
} from '../../src/platform/calendar.ts';

function minor(text: string, currency: string): bigint {
  const parsed = parseMoney(text, currency);
  if (!parsed.ok) throw new Error(`bad amount ${text}: ${parsed.reason}`);
  return parsed.value;
}

type Row = [number, string, string, string, string, string];

/** Rows as [number, due date, principal, interest, total, balance after] in major-unit strings. */
function rows(schedule: Schedule, currency: string): Row[] {
  const money = (value: bigint) => formatMoney(value, currency);
  return schedule.installments.map((row) => [
    row.number,
    row.dueDate,
    money(row.principalMinor),
    money(row.interestMinor),
    money(row.totalMinor),
    money(row.balanceAfterMinor),
  ]);
}

function totals(schedule: Schedule, currency: string) {
  return {
    installment: formatMoney(schedule.installmentMinor, currency),
    interest: formatMoney(schedule.totalInterestMinor, currency),
    repayable: formatMoney(schedule.totalRepayableMinor, currency),
  };
}

describe('buildSchedule: the worked example of API.md (15000.00 INR, 12 months, 18.50 % APR)', () => {
  const schedule = buildSchedule({
    principalMinor: minor('15000.00', 'INR'),
    aprBasisPoints: aprToBasisPoints('18.50'),
    termMonths: 12,
    disbursedOn: '2026-01-31',
  });

  it('has installment 1378.77, total interest 1545.27 and total repayable 16545.27', () => {
    expect(totals(schedule, 'INR')).toEqual({
      installment: '1378.77',
      interest: '1545.27',
      repayable: '16545.27',
    });
  });

  it('reproduces every row to the paisa, with due dates clamped from a 31st', () => {
    expect(rows(schedule, 'INR')).toEqual([
      [1, '2026-02-28', '1147.52', '231.25', '1378.77', '13852.48'],
      [2, '2026-03-31', '1165.21', '213.56', '1378.77', '12687.27'],
      [3, '2026-04-30', '1183.17', '195.60', '1378.77', '11504.10'],
      [4, '2026-05-31', '1201.42', '177.35', '1378.77', '10302.68'],
      [5, '2026-06-30', '1219.94', '158.83', '1378.77', '9082.74'],
      [6, '2026-07-31', '1238.74', '140.03', '1378.77', '7844.00'],
      [7, '2026-08-31', '1257.84', '120.93', '1378.77', '6586.16'],
      [8, '2026-09-30', '1277.23', '101.54', '1378.77', '5308.93'],
      [9, '2026-10-31', '1296.92', '81.85', '1378.77', '4012.01'],
      [10, '2026-11-30', '1316.92', '61.85', '1378.77', '2695.09'],
      [11, '2026-12-31', '1337.22', '41.55', '1378.77', '1357.87'],
      [12, '2027-01-31', '1357.87', '20.93', '1378.80', '0.00'],
    ]);
  });

  it('gives the same schedule for the rate as basis points and as the parsed "18.50" string', () => {
    const fromBasisPoints = buildSchedule({
      principalMinor: 1_500_000n,
      aprBasisPoints: 1850n,
      termMonths: 12,
      disbursedOn: '2026-01-31',
    });
    expect(fromBasisPoints).toEqual(schedule);
  });
});

// Expected rows below come from an independent exact-rational implementation (Python fractions).
describe('buildSchedule: other currencies, rates and terms', () => {
  it.each<{
    name: string;
    currency: string;
    amount: string;
    apr: string;
    n: number;
    totals: object;
    rows: Row[];
  }>([
    {
      name: 'VND has no minor unit: 8400 VND, 4 months, 26 %',
      currency: 'VND',
      amount: '8400',
      apr: '26',
      n: 4,
      totals: { installment: '2215', interest: '460', repayable: '8860' },
      rows: [
        [1, '2026-02-15', '2033', '182', '2215', '6367'],
        [2, '2026-03-15', '2077', '138', '2215', '4290'],
        [3, '2026-04-15', '2122', '93', '2215', '2168'],
        [4, '2026-05-15', '2168', '47', '2215', '0'],
      ],
    },
    {
      name: 'KWD has three digits: 150.000 KWD, 6 months, 12 %',
      currency: 'KWD',
      amount: '150.000',
      apr: '12.00',
      n: 6,
      totals: { installment: '25.882', interest: '5.293', repayable: '155.293' },
      rows: [
        [1, '2026-02-15', '24.382', '1.500', '25.882', '125.618'],
        [2, '2026-03-15', '24.626', '1.256', '25.882', '100.992'],
        [3, '2026-04-15', '24.872', '1.010', '25.882', '76.120'],
        [4, '2026-05-15', '25.121', '0.761', '25.882', '50.999'],
        [5, '2026-06-15', '25.372', '0.510', '25.882', '25.627'],
        [6, '2026-07-15', '25.627', '0.256', '25.883', '0.000'],
      ],
    },
    {
      name: 'KWD 1234.567 at 9.99 % over 3 months',
      currency: 'KWD',
      amount: '1234.567',
      apr: '9.99',
      n: 3,
      totals: { installment: '418.393', interest: '20.612', repayable: '1255.179' },
      rows: [
        [1, '2026-02-15', '408.115', '10.278', '418.393', '826.452'],
        [2, '2026-03-15', '411.513', '6.880', '418.393', '414.939'],
        [3, '2026-04-15', '414.939', '3.454', '418.393', '0.000'],
      ],
    },
    {
      name: 'zero interest: A = P/n and the last installment takes the residual',
      currency: 'INR',
      amount: '10.00',
      apr: '0',
      n: 3,
      totals: { installment: '3.33', interest: '0.00', repayable: '10.00' },
      rows: [
        [1, '2026-02-15', '3.33', '0.00', '3.33', '6.67'],
        [2, '2026-03-15', '3.33', '0.00', '3.33', '3.34'],
        [3, '2026-04-15', '3.34', '0.00', '3.34', '0.00'],
      ],
    },
    {
      name: 'zero interest rounds P/n half to even (0.05 / 2 = 0.025 → 0.02)',
      currency: 'INR',
      amount: '0.05',
      apr: '0.00',
      n: 2,
      totals: { installment: '0.02', interest: '0.00', repayable: '0.05' },
      rows: [
        [1, '2026-02-15', '0.02', '0.00', '0.02', '0.03'],
        [2, '2026-03-15', '0.03', '0.00', '0.03', '0.00'],
      ],
    },
    {
      name: 'zero interest rounds P/n half to even (0.07 / 2 = 0.035 → 0.04)',
      currency: 'INR',
      amount: '0.07',
      apr: '0.00',
      n: 2,
      totals: { installment: '0.04', interest: '0.00', repayable: '0.07' },
      rows: [
        [1, '2026-02-15', '0.04', '0.00', '0.04', '0.03'],
        [2, '2026-03-15', '0.03', '0.00', '0.03', '0.00'],
      ],
    },
    {
      name: 'one month: everything is due at once with one month of interest',
      currency: 'INR',
      amount: '123.45',
      apr: '7.25',
      n: 1,
      totals: { installment: '124.20', interest: '0.75', repayable: '124.20' },
      rows: [[1, '2026-02-15', '123.45', '0.75', '124.20', '0.00']],
    },
    {
      name: 'one month at 0 %',
      currency: 'JPY',
      amount: '1000000',
      apr: '0',
      n: 1,
      totals: { installment: '1000000', interest: '0', repayable: '1000000' },
      rows: [[1, '2026-02-15', '1000000', '0', '1000000', '0']],
    },
    {
      name: 'one month at 100 %',
      currency: 'INR',
      amount: '50000.00',
      apr: '100.00',
      n: 1,
      totals: { installment: '54166.67', interest: '4166.67', repayable: '54166.67' },
      rows: [[1, '2026-02-15', '50000.00', '4166.67', '54166.67', '0.00']],
    },
    {
      name: 'a tiny loan whose balance runs out early: parts are capped, never negative',
      currency: 'INR',
      amount: '0.07',
      apr: '100.00',
      n: 6,
      totals: { installment: '0.02', interest: '0.01', repayable: '0.08' },
      rows: [
        [1, '2026-02-15', '0.01', '0.01', '0.02', '0.06'],
        [2, '2026-03-15', '0.02', '0.00', '0.02', '0.04'],
        [3, '2026-04-15', '0.02', '0.00', '0.02', '0.02'],
        [4, '2026-05-15', '0.02', '0.00', '0.02', '0.00'],
        [5, '2026-06-15', '0.00', '0.00', '0.00', '0.00'],
        [6, '2026-07-15', '0.00', '0.00', '0.00', '0.00'],
      ],
    },
    {
      name: 'A rounded up at 0 % runs out before the last month (9 over 6: A = 2 would end at −1)',
      currency: 'VND',
      amount: '9',
      apr: '0',
      n: 6,
      totals: { installment: '2', interest: '0', repayable: '9' },
      rows: [
        [1, '2026-02-15', '2', '0', '2', '7'],
        [2, '2026-03-15', '2', '0', '2', '5'],
        [3, '2026-04-15', '2', '0', '2', '3'],
        [4, '2026-05-15', '2', '0', '2', '1'],
        [5, '2026-06-15', '1', '0', '1', '0'],
        [6, '2026-07-15', '0', '0', '0', '0'],
      ],
    },
  ])('$name', ({ currency, amount, apr, n, totals: expectedTotals, rows: expectedRows }) => {
    const schedule = buildSchedule({
      principalMinor: minor(amount, currency),
      aprBasisPoints: aprToBasisPoints(apr),
      termMonths: n,
      disbursedOn: '2026-01-15',
    });
    expect(totals(schedule, currency)).toEqual(expectedTotals);
    expect(rows(schedule, currency)).toEqual(expectedRows);
  });

  it('a last installment can be smaller than A (250000.00 at 36 % over 24 months ends with 14761)', () => {
    const schedule = buildSchedule({
      principalMinor: 250_000n,
      aprBasisPoints: 3600n,
      termMonths: 24,
      disbursedOn: '2026-01-15',
    });
    expect(schedule.installmentMinor).toBe(14_762n);
    expect(schedule.installments.slice(0, 23).every((row) => row.totalMinor === 14_762n)).toBe(true);
    expect(schedule.installments[23]).toMatchObject({
      principalMinor: 14_331n,
      interestMinor: 430n,
      totalMinor: 14_761n,
    });
    expect(schedule.totalInterestMinor).toBe(104_287n);
  });

  it('100.00 INR over 360 months at 0 % pays 0.28 a month and is cleared in month 358', () => {
    const schedule = buildSchedule({
      principalMinor: 10_000n,
      aprBasisPoints: 0n,
      termMonths: 360,
      disbursedOn: '2026-01-15',
    });
    expect(schedule.installmentMinor).toBe(28n);
    expect(schedule.installments.slice(0, 357).every((row) => row.totalMinor === 28n)).toBe(true);
    expect(
      schedule.installments.slice(357).map((row) => [row.number, row.totalMinor, row.balanceAfterMinor]),
    ).toEqual([
      [358, 4n, 0n],
      [359, 0n, 0n],
      [360, 0n, 0n],
    ]);
  });

  it('360 months at 100 % is interest-only with the principal in the last installment', () => {
    // A differs from P·r by P·r / ((1+r)^360 − 1) ≈ 1e-7 minor units, so it rounds to the interest.
    const schedule = buildSchedule({
      principalMinor: 5_000_000n,
      aprBasisPoints: 10_000n,
      termMonths: 360,
      disbursedOn: '2026-01-15',
    });
    expect(schedule.installmentMinor).toBe(416_667n);
    expect(schedule.installments).toHaveLength(360);
    expect(
      schedule.installments
        .slice(0, 359)
        .every((row) => row.interestMinor === 416_667n && row.principalMinor === 0n),
    ).toBe(true);
    expect(schedule.installments[359]).toEqual({
      number: 360,
      dueDate: '2056-01-15',
      principalMinor: 5_000_000n,
      interestMinor: 416_667n,
      totalMinor: 5_416_667n,
      balanceAfterMinor: 0n,
    });
    expect(schedule.totalInterestMinor).toBe(416_667n * 360n);
  });
});

describe('installmentAmount', () => {
  it.each([
    [1_500_000n, 1850n, 12, 137_877n],
    [1_500_000n, 0n, 12, 125_000n],
    [1_000n, 0n, 3, 333n],
    [2_000n, 0n, 3, 667n],
    [5n, 0n, 2, 2n],
    [7n, 0n, 2, 4n],
    [8_400n, 2600n, 4, 2215n],
    [5_000_000n, 10_000n, 1, 5_416_667n],
    [1n, 10_000n, 360, 0n],
  ])('P=%s minor, %s bps, %s months → %s', (principal, bps, n, expected) => {
    expect(installmentAmount(principal, bps, n)).toBe(expected);
  });
});

describe('aprToBasisPoints', () => {
  it.each([
    ['18.50', 1850n],
    ['18.5', 1850n],
    ['0', 0n],
    ['0.01', 1n],
    ['100', 10_000n],
    ['100.00', 10_000n],
  ])('%s %% is %s bps', (apr, expected) => {
    expect(aprToBasisPoints(apr)).toBe(expected);
  });

  it.each(['18.505', '-1', '1e2', '', ' 5'])('rejects %j', (apr) => {
    expect(() => aprToBasisPoints(apr)).toThrow(RangeError);
  });
});

describe('buildSchedule rejects impossible input', () => {
  const valid = { principalMinor: 100n, aprBasisPoints: 1000n, termMonths: 12, disbursedOn: '2026-01-15' };
  it.each([
    ['zero principal', { principalMinor: 0n }, 'principal must be positive'],
    ['negative principal', { principalMinor: -1n }, 'principal must be positive'],
    ['negative APR', { aprBasisPoints: -1n }, 'APR must be between 0 and 100 %'],
    ['APR over 100 %', { aprBasisPoints: 10_001n }, 'APR must be between 0 and 100 %'],
    ['zero months', { termMonths: 0 }, 'term must be a whole number of months from 1 to 360'],
    ['361 months', { termMonths: 361 }, 'term must be a whole number of months from 1 to 360'],
    ['fractional months', { termMonths: 1.5 }, 'term must be a whole number of months from 1 to 360'],
    ['an impossible date', { disbursedOn: '2026-02-29' }, 'invalid date "2026-02-29": no such day'],
  ])('%s', (_name, change, message) => {
    expect(() => buildSchedule({ ...valid, ...change })).toThrow(new RangeError(message));
  });
});

describe('due dates', () => {
  it.each([
    ['2026-01-31', 1, '2026-02-28'],
    ['2026-01-31', 2, '2026-03-31'],
    ['2026-01-31', 3, '2026-04-30'],
    ['2026-01-31', 4, '2026-05-31'],
    ['2026-01-31', 13, '2027-02-28'],
    ['2027-12-31', 2, '2028-02-29'],
    ['2028-01-31', 1, '2028-02-29'],
    ['2028-01-29', 1, '2028-02-29'],
    ['2028-02-29', 1, '2028-03-29'],
    ['2028-02-29', 12, '2029-02-28'],
    ['2028-02-29', 48, '2032-02-29'],
    ['2099-12-31', 2, '2100-02-28'],
    ['2399-12-31', 2, '2400-02-29'],
    ['2026-05-30', 9, '2027-02-28'],
    ['2026-03-31', 1, '2026-04-30'],
    ['2026-12-15', 1, '2027-01-15'],
    ['2026-11-30', 3, '2027-02-28'],
    ['2026-01-15', 360, '2056-01-15'],
    ['2026-01-01', 0, '2026-01-01'],
  ])('%s + %s months = %s', (date, months, expected) => {
    expect(addMonthsClamped(date, months)).toBe(expected);
  });

  it('follows the disbursement day, not the previous clamped date (Jan 31 → Feb 28 → Mar 31)', () => {
    const schedule = buildSchedule({
      principalMinor: 1_200n,
      aprBasisPoints: 0n,
      termMonths: 14,
      disbursedOn: '2027-12-31',
    });
    expect(schedule.installments.map((row) => row.dueDate)).toEqual([
      '2028-01-31',
      '2028-02-29',
      '2028-03-31',
      '2028-04-30',
      '2028-05-31',
      '2028-06-30',
      '2028-07-31',
      '2028-08-31',
      '2028-09-30',
      '2028-10-31',
      '2028-11-30',
      '2028-12-31',
      '2029-01-31',
      '2029-02-28',
    ]);
  });

  it.each([
    [2026, 2, 28],
    [2028, 2, 29],
    [2100, 2, 28],
    [2000, 2, 29],
    [2026, 4, 30],
    [2026, 12, 31],
  ])('%s-%s has %s days', (year, month, days) => {
    expect(daysInMonth(year, month)).toBe(days);
  });
});

describe('calendar dates', () => {
  it.each(['2028-02-29', '2000-02-29', '2026-12-31', '0001-01-01'])(
    'parses %s and formats it back',
    (text) => {
      expect(addMonthsClamped(text, 0)).toBe(text);
      expect(parseCalendarDate(text).day).toBe(Number(text.slice(8)));
    },
  );

  it.each([
    '2026-02-29',
    '1900-02-29',
    '2026-04-31',
    '2026-13-01',
    '2026-00-10',
    '2026-01-00',
    '2026-1-01',
    '20260101',
    '2026-01-01T00:00:00Z',
    ' 2026-01-01',
  ])('rejects %j', (text) => {
    expect(() => parseCalendarDate(text)).toThrow(RangeError);
  });

  it.each([
    ['2026-02-28', '2026-03-01', 1],
    ['2028-02-28', '2028-03-01', 2],
    ['2026-03-28', '2026-03-30', 2],
    ['2026-10-24', '2026-10-26', 2],
    ['2026-01-01', '2027-01-01', 365],
    ['2028-01-01', '2029-01-01', 366],
    ['2026-03-01', '2026-02-28', -1],
    ['2026-03-01', '2026-03-01', 0],
    ['0050-01-01', '0050-01-02', 1],
  ])('%s to %s is %s days', (from, to, days) => {
    expect(daysBetween(from, to)).toBe(days);
  });

  it('takes "today" as the UTC calendar date', () => {
    expect(calendarDateOf(new Date('2026-03-29T23:59:59.999Z'))).toBe('2026-03-29');
    expect(calendarDateOf(new Date('2026-03-30T00:00:00.000+05:30'))).toBe('2026-03-29');
  });

  describe('in a local time zone far from UTC', () => {
    const original = process.env.TZ;
    afterEach(() => {
      process.env.TZ = original;
    });

    it.each(['Pacific/Kiritimati', 'America/Los_Angeles', 'Australia/Lord_Howe'])(
      '%s moves no date',
      (zone) => {
        process.env.TZ = zone;
        expect(addMonthsClamped('2026-01-31', 1)).toBe('2026-02-28');
        expect(addMonthsClamped('2026-10-31', 5)).toBe('2027-03-31');
        expect(daysBetween('2026-03-07', '2026-03-09')).toBe(2);
        expect(daysBetween('2026-10-03', '2026-10-05')).toBe(2);
      },
    );
  });
});

describe('buildSchedule properties', () => {
  const D = 120_000n;

  const loans = fc
    .record({
      digits: fc.constantFrom(0, 2, 3),
      small: fc.boolean(),
      termMonths: fc.oneof(fc.integer({ min: 1, max: 360 }), fc.constantFrom(1, 2, 12, 360)),
      aprBasisPoints: fc.oneof(fc.bigInt({ min: 0n, max: 10_000n }), fc.constantFrom(0n, 1n, 1850n, 10_000n)),
      disbursedOn: fc.constantFrom('2026-01-31', '2027-12-31', '2028-02-29', '2026-06-15'),
      seed: fc.bigInt({ min: 1n, max: 50_000_000n }),
    })
    .map(({ digits, small, seed, ...rest }) => {
      const max = 50_000n * 10n ** BigInt(digits);
      // Half the loans are tiny (≤ 1000 minor units), where rounding decides most.
      const principalMinor = small ? 1n + (seed % 1_000n) : 1n + ((seed * 7919n) % max);
      return { ...rest, principalMinor };
    });

  it('repays exactly the principal with non-negative parts and an exact running balance', () => {
    fc.assert(
      fc.property(loans, (loan) => {
        const schedule = buildSchedule(loan);
        const { installments } = schedule;
        expect(installments.map((row) => row.number)).toEqual(
          Array.from({ length: loan.termMonths }, (_, i) => i + 1),
        );
        const faults: string[] = [];
        let balance = loan.principalMinor;
        for (const row of installments) {
          const fault = (what: string) => faults.push(`row ${row.number}: ${what}`);
          if (row.principalMinor < 0n || row.interestMinor < 0n) fault('negative part');
          if (row.interestMinor !== divideHalfEven(balance * loan.aprBasisPoints, D)) fault('interest');
          if (row.totalMinor !== row.principalMinor + row.interestMinor) fault('total');
          balance -= row.principalMinor;
          if (row.balanceAfterMinor !== balance) fault('balance');
          if (row.dueDate !== addMonthsClamped(loan.disbursedOn, row.number)) fault('due date');
        }
        expect(faults).toEqual([]);
        expect(balance).toBe(0n);
        const interest = installments.reduce((sum, row) => sum + row.interestMinor, 0n);
        expect(schedule.totalInterestMinor).toBe(interest);
        expect(schedule.totalRepayableMinor).toBe(loan.principalMinor + interest);
      }),
      { numRuns: 400 },
    );
  });

  it('charges A every month but the last, except after the balance runs out early', () => {
    fc.assert(
      fc.property(loans, (loan) => {
        const { installments, installmentMinor } = buildSchedule(loan);
        const firstShort = installments.slice(0, -1).findIndex((row) => row.totalMinor !== installmentMinor);
        if (firstShort === -1) return;
        expect(installments[firstShort]!.totalMinor < installmentMinor).toBe(true);
        expect(installments[firstShort]!.balanceAfterMinor).toBe(0n);
        expect(installments.slice(firstShort + 1).every((row) => row.totalMinor === 0n)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('the last total differs from A by at most the compounded rounding error Σ_{i<n} (1+r)^i minor units', () => {
    // Each month's rounding (of A, and of the interest) is at most ½ minor unit and grows with the balance
    // at (1+r) per month until the end, so |last − A| ≤ Σ_{i<n} (1+r)^i = ((D+B)^n − D^n) / (B·D^(n−1)),
    // and ≤ n/2 when r = 0 (the last is P − (n−1)·A).
    fc.assert(
      fc.property(loans, (loan) => {
        const { installments, installmentMinor } = buildSchedule(loan);
        const last = installments.at(-1)!;
        const deviation = last.totalMinor - installmentMinor;
        const absolute = deviation < 0n ? -deviation : deviation;
        const n = BigInt(loan.termMonths);
        const b = loan.aprBasisPoints;
        if (b === 0n) {
          expect(absolute * 2n <= n).toBe(true);
        } else {
          expect(absolute * b * D ** (n - 1n) <= (D + b) ** n - D ** n).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
  });
});
