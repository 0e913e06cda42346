import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  allocateRepayments,
  daysPastDue,
  installmentStatus,
  loanPosition,
  nextDueDate,
  planRepayment,
} from '../../src/loans/allocation.ts';
import { buildSchedule } from '../../src/loans/schedule.ts';
import { formatMoney, parseMoney } from '../../src/money/money.ts';

const inr = (text: string): bigint => {
  const parsed = parseMoney(text, 'INR');
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value;
};
const money = (value: bigint) => formatMoney(value, 'INR');

// The worked example: 12 × 1378.77 (the last 1378.80), due on the 28th/30th/31st from 2026-02-28.
const { installments } = buildSchedule({
  principalMinor: inr('15000.00'),
  aprBasisPoints: 1850n,
  termMonths: 12,
  disbursedOn: '2026-01-31',
});

function position(payments: string[], asOf: string) {
  const result = loanPosition(installments, payments.map(inr), asOf);
  return {
    rows: result.installments.map((row) => [
      row.number,
      money(row.paidInterestMinor),
      money(row.paidPrincipalMinor),
      money(row.paidMinor),
      row.status,
    ]),
    outstandingPrincipal: money(result.outstandingPrincipalMinor),
    outstanding: money(result.outstandingMinor),
    unapplied: money(result.unappliedMinor),
    nextDueDate: nextDueDate(result),
    daysPastDue: daysPastDue(nextDueDate(result), asOf),
  };
}

/** Rows 1..k with the given state, then untouched rows with `rest` status. */
function expectedRows(touched: [string, string, string, string][], rest: string) {
  return installments.map((row, index) => {
    const seen = touched[index];
    return seen ? [row.number, ...seen] : [row.number, '0.00', '0.00', '0.00', rest];
  });
}

describe('allocating repayments to the worked example', () => {
  it.each([
    {
      name: 'nothing paid before the first due date: all pending',
      payments: [],
      asOf: '2026-02-01',
      touched: [],
      outstandingPrincipal: '15000.00',
      outstanding: '16545.27',
      nextDueDate: '2026-02-28',
      daysPastDue: 0,
    },
    {
      name: 'a payment smaller than the interest goes to interest only (partial)',
      payments: ['100.00'],
      asOf: '2026-02-10',
      touched: [['100.00', '0.00', '100.00', 'partial']],
      outstandingPrincipal: '15000.00',
      outstanding: '16445.27',
      nextDueDate: '2026-02-28',
      daysPastDue: 0,
    },
    {
      name: 'exactly the interest leaves the principal of the installment owed',
      payments: ['231.25'],
      asOf: '2026-02-10',
      touched: [['231.25', '0.00', '231.25', 'partial']],
      outstandingPrincipal: '15000.00',
      outstanding: '16314.02',
      nextDueDate: '2026-02-28',
      daysPastDue: 0,
    },
    {
      name: 'interest first, then principal',
      payments: ['300.00'],
      asOf: '2026-02-10',
      touched: [['231.25', '68.75', '300.00', 'partial']],
      outstandingPrincipal: '14931.25',
      outstanding: '16245.27',
      nextDueDate: '2026-02-28',
      daysPastDue: 0,
    },
    {
      name: 'on the due date itself a partly paid installment is not yet overdue',
      payments: ['300.00'],
      asOf: '2026-02-28',
      touched: [['231.25', '68.75', '300.00', 'partial']],
      outstandingPrincipal: '14931.25',
      outstanding: '16245.27',
      nextDueDate: '2026-02-28',
      daysPastDue: 0,
    },
    {
      name: 'the day after the due date a partly paid installment is overdue by 1 day',
      payments: ['300.00'],
      asOf: '2026-03-01',
      touched: [['231.25', '68.75', '300.00', 'overdue']],
      outstandingPrincipal: '14931.25',
      outstanding: '16245.27',
      nextDueDate: '2026-02-28',
      daysPastDue: 1,
    },
    {
      name: 'exactly one installment paid: the next one is pending',
      payments: ['1378.77'],
      asOf: '2026-03-15',
      touched: [['231.25', '1147.52', '1378.77', 'paid']],
      outstandingPrincipal: '13852.48',
      outstanding: '15166.50',
      nextDueDate: '2026-03-31',
      daysPastDue: 0,
    },
    {
      name: 'oldest first across installments and payments',
      payments: ['1000.00', '1000.00'],
      asOf: '2026-03-15',
      touched: [
        ['231.25', '1147.52', '1378.77', 'paid'],
        ['213.56', '407.67', '621.23', 'partial'],
      ],
      outstandingPrincipal: '13444.81',
      outstanding: '14545.27',
      nextDueDate: '2026-03-31',
      daysPastDue: 0,
    },
    {
      name: 'two missed installments: both overdue, days counted from the oldest',
      payments: [],
      asOf: '2026-04-10',
      touched: [
        ['0.00', '0.00', '0.00', 'overdue'],
        ['0.00', '0.00', '0.00', 'overdue'],
      ],
      outstandingPrincipal: '15000.00',
      outstanding: '16545.27',
      nextDueDate: '2026-02-28',
      daysPastDue: 41,
    },
    {
      name: 'a late partial payment moves days past due to the next unpaid installment',
      payments: ['1500.00'],
      asOf: '2026-04-10',
      touched: [
        ['231.25', '1147.52', '1378.77', 'paid'],
        ['121.23', '0.00', '121.23', 'overdue'],
      ],
      outstandingPrincipal: '13852.48',
      outstanding: '15045.27',
      nextDueDate: '2026-03-31',
      daysPastDue: 10,
    },
  ])('$name', ({ payments, asOf, touched, outstandingPrincipal, outstanding, nextDueDate, daysPastDue }) => {
    expect(position(payments, asOf)).toEqual({
      rows: expectedRows(touched as [string, string, string, string][], 'pending'),
      outstandingPrincipal,
      outstanding,
      unapplied: '0.00',
      nextDueDate,
      daysPastDue,
    });
  });

  it('exactly clearing the loan leaves nothing owed, no next due date and no days past due', () => {
    const payments = [...Array(11).fill('1378.77'), '1378.80'];
    const result = position(payments, '2030-01-01');
    expect(result).toEqual({
      rows: installments.map((row) => [
        row.number,
        money(row.interestMinor),
        money(row.principalMinor),
        money(row.totalMinor),
        'paid',
      ]),
      outstandingPrincipal: '0.00',
      outstanding: '0.00',
      unapplied: '0.00',
      nextDueDate: null,
      daysPastDue: 0,
    });
  });

  it('an overpayment pays everything and reports the excess as unapplied', () => {
    const result = position(['16545.28'], '2026-02-01');
    expect(result.outstanding).toBe('0.00');
    expect(result.unapplied).toBe('0.01');
    expect(result.rows.every((row) => row[4] === 'paid')).toBe(true);
  });

  it.each([
    [[], '16545.27'],
    [['300.00'], '16245.27'],
    [['16000.00'], '545.27'],
    [['16545.27'], '0.00'],
    [['20000.00'], '0.00'],
  ])('after paying %j the largest acceptable payment is %s', (payments, expected) => {
    expect(money(allocateRepayments(installments, payments.map(inr)).outstandingMinor)).toBe(expected);
  });

  it('refuses a negative payment', () => {
    expect(() => allocateRepayments(installments, [100n, -1n])).toThrow(RangeError);
  });

  it('rejects an asOf that is not a calendar date', () => {
    expect(() => loanPosition(installments, [], '2026-03-01T00:00:00Z')).toThrow(RangeError);
  });
});

describe('installment status', () => {
  const row = (paid: bigint, owed: bigint) => ({
    number: 1,
    dueDate: '2026-03-31',
    principalMinor: 0n,
    interestMinor: 0n,
    paidInterestMinor: 0n,
    paidPrincipalMinor: paid,
    paidMinor: paid,
    owedMinor: owed,
  });
  it.each([
    [0n, 100n, '2026-03-30', 'pending'],
    [0n, 100n, '2026-03-31', 'pending'],
    [0n, 100n, '2026-04-01', 'overdue'],
    [40n, 60n, '2026-03-31', 'partial'],
    [40n, 60n, '2026-04-01', 'overdue'],
    [100n, 0n, '2026-03-30', 'paid'],
    [100n, 0n, '2027-01-01', 'paid'],
    [0n, 0n, '2027-01-01', 'paid'],
  ])('paid %s, owing %s, as of %s: %s', (paid, owed, asOf, status) => {
    expect(installmentStatus(row(paid, owed), asOf)).toBe(status);
  });
});

describe('installments with nothing owed (a tiny loan that is cleared early)', () => {
  // 9 VND over 6 months at 0 %: 2, 2, 2, 2, 1, 0.
  const tiny = buildSchedule({
    principalMinor: 9n,
    aprBasisPoints: 0n,
    termMonths: 6,
    disbursedOn: '2026-01-15',
  });

  it('count as paid and do not hold the next due date', () => {
    const result = loanPosition(tiny.installments, [8n], '2026-08-01');
    expect(result.installments.map((row) => row.status)).toEqual([
      'paid',
      'paid',
      'paid',
      'paid',
      'overdue',
      'paid',
    ]);
    expect(nextDueDate(result)).toBe('2026-06-15');
    expect(daysPastDue(nextDueDate(result), '2026-08-01')).toBe(47);
    expect(result.outstandingMinor).toBe(1n);
  });
});

describe('allocation properties', () => {
  const scenarios = fc
    .record({
      principalMinor: fc.oneof(fc.bigInt({ min: 1n, max: 1_000n }), fc.bigInt({ min: 1n, max: 5_000_000n })),
      aprBasisPoints: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 10_000n })),
      termMonths: fc.integer({ min: 1, max: 60 }),
      cuts: fc.array(fc.bigInt({ min: 0n, max: 1_000_000n }), { maxLength: 8 }),
      overpay: fc.bigInt({ min: 0n, max: 1_000n }),
      asOfOffset: fc.integer({ min: -40, max: 2_000 }),
    })
    .map(({ principalMinor, aprBasisPoints, termMonths, cuts, overpay, asOfOffset }) => {
      const schedule = buildSchedule({
        principalMinor,
        aprBasisPoints,
        termMonths,
        disbursedOn: '2026-01-31',
      });
      // Payments are fractions (in millionths) of the total, so their sum stays within it.
      const total = schedule.totalRepayableMinor;
      const sorted = [...cuts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const points = [0n, ...sorted.map((cut) => (total * cut) / 1_000_000n)];
      const payments = points.slice(1).map((point, i) => point - points[i]!);
      return { schedule, payments, overpay, asOf: shiftDays('2026-01-31', asOfOffset) };
    });

  it('never allocates more than owed and conserves every payment', () => {
    fc.assert(
      fc.property(scenarios, ({ schedule, payments, overpay }) => {
        const all = [...payments, overpay];
        const paid = all.reduce((sum, amount) => sum + amount, 0n);
        const result = allocateRepayments(schedule.installments, all);
        const allocated = result.installments.reduce((sum, row) => sum + row.paidMinor, 0n);
        for (const row of result.installments) {
          expect(row.paidInterestMinor >= 0n && row.paidInterestMinor <= row.interestMinor).toBe(true);
          expect(row.paidPrincipalMinor >= 0n && row.paidPrincipalMinor <= row.principalMinor).toBe(true);
          expect(row.paidMinor + row.owedMinor).toBe(row.interestMinor + row.principalMinor);
        }
        expect(allocated + result.unappliedMinor).toBe(paid);
        const excess = paid - schedule.totalRepayableMinor;
        expect(result.unappliedMinor).toBe(excess > 0n ? excess : 0n);
        expect(result.outstandingMinor).toBe(schedule.totalRepayableMinor - allocated);
      }),
      { numRuns: 300 },
    );
  });

  it('payments within the total are allocated in full, oldest first, interest before principal', () => {
    fc.assert(
      fc.property(scenarios, ({ schedule, payments }) => {
        const paid = payments.reduce((sum, amount) => sum + amount, 0n);
        const result = allocateRepayments(schedule.installments, payments);
        expect(result.unappliedMinor).toBe(0n);
        expect(result.installments.reduce((sum, row) => sum + row.paidMinor, 0n)).toBe(paid);
        const principalPaid = result.installments.reduce((sum, row) => sum + row.paidPrincipalMinor, 0n);
        expect(result.outstandingPrincipalMinor).toBe(
          schedule.installments.reduce((s, r) => s + r.principalMinor, 0n) - principalPaid,
        );
        const firstOwing = result.installments.findIndex((row) => row.owedMinor > 0n);
        if (firstOwing === -1) return;
        for (const row of result.installments.slice(firstOwing + 1)) expect(row.paidMinor).toBe(0n);
        const owing = result.installments[firstOwing]!;
        if (owing.paidPrincipalMinor > 0n) expect(owing.paidInterestMinor).toBe(owing.interestMinor);
      }),
      { numRuns: 300 },
    );
  });

  it('splitting a payment in two changes nothing', () => {
    fc.assert(
      fc.property(scenarios, fc.bigInt({ min: 0n, max: 1_000_000n }), ({ schedule, payments }, cut) => {
        const paid = payments.reduce((sum, amount) => sum + amount, 0n);
        const first = (paid * cut) / 1_000_000n;
        expect(allocateRepayments(schedule.installments, [first, paid - first])).toEqual(
          allocateRepayments(schedule.installments, [paid]),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('days past due, next due date and statuses agree with each other', () => {
    fc.assert(
      fc.property(scenarios, ({ schedule, payments, asOf }) => {
        const result = loanPosition(schedule.installments, payments, asOf);
        const overdue = result.installments.filter((row) => row.status === 'overdue');
        for (const row of result.installments) {
          expect(row.status === 'overdue').toBe(row.owedMinor > 0n && row.dueDate < asOf);
          expect(row.status === 'paid').toBe(row.owedMinor === 0n);
        }
        const next = nextDueDate(result);
        expect(next === null).toBe(result.outstandingMinor === 0n);
        expect(daysPastDue(next, asOf) > 0).toBe(overdue.length > 0);
        if (overdue.length > 0) expect(next).toBe(overdue[0]!.dueDate);
      }),
      { numRuns: 300 },
    );
  });
});

function shiftDays(date: string, days: number): string {
  const instant = new Date(`${date}T00:00:00Z`);
  instant.setUTCDate(instant.getUTCDate() + days);
  return instant.toISOString().slice(0, 10);
}

describe('planRepayment', () => {
  // 1000.00 at 0 % over 4 months from 2026-01-31: 250.00 due on 02-28, 03-31, 04-30, 05-31.
  const flat = buildSchedule({
    principalMinor: inr('1000.00'),
    aprBasisPoints: 0n,
    termMonths: 4,
    disbursedOn: '2026-01-31',
  });
  it.each([
    {
      prior: [],
      amount: '100.00',
      principal: '100.00',
      outstanding: '900.00',
      next: '2026-02-28',
      cleared: false,
    },
    {
      prior: [],
      amount: '250.00',
      principal: '250.00',
      outstanding: '750.00',
      next: '2026-03-31',
      cleared: false,
    },
    {
      prior: ['900.00'],
      amount: '100.00',
      principal: '100.00',
      outstanding: '0.00',
      next: null,
      cleared: true,
    },
    {
      prior: ['250.00', '250.00'],
      amount: '300.00',
      principal: '300.00',
      outstanding: '200.00',
      next: '2026-05-31',
      cleared: false,
    },
  ])(
    '$amount after $prior leaves $outstanding, next due $next',
    ({ prior, amount, principal, outstanding, next, cleared }) => {
      const result = planRepayment(flat, prior.map(inr), inr(amount), '2026-03-01');
      expect(result.accepted).toBe(true);
      if (!result.accepted) return;
      expect({
        ...result.plan,
        interestMinor: money(result.plan.interestMinor),
        principalMinor: money(result.plan.principalMinor),
        outstandingPrincipalMinor: money(result.plan.outstandingPrincipalMinor),
      }).toMatchObject({
        amountMinor: inr(amount),
        interestMinor: '0.00',
        principalMinor: principal,
        paidOn: '2026-03-01',
        outstandingPrincipalMinor: outstanding,
        nextDueDate: next,
        cleared,
      });
    },
  );

  it('splits a payment into interest first, then principal (the worked example)', () => {
    const result = planRepayment({ installments }, [], inr('300.00'), '2026-02-10');
    expect(result).toMatchObject({
      accepted: true,
      plan: { interestMinor: inr('231.25'), principalMinor: inr('68.75'), totalPaidMinor: inr('300.00') },
    });
  });

  it.each([
    [[], '1000.01', '1000.00'],
    [['999.99'], '0.02', '0.01'],
    [['1000.00'], '0.01', '0.00'],
  ])('after %j refuses %s, reporting %s owed', (prior, amount, owed) => {
    expect(planRepayment(flat, prior.map(inr), inr(amount), '2026-03-01')).toEqual({
      accepted: false,
      outstandingMinor: inr(owed),
    });
  });

  it('refuses a payment that is not positive, or a paid-on that is not a date', () => {
    expect(() => planRepayment(flat, [], 0n, '2026-03-01')).toThrow(RangeError);
    expect(() => planRepayment(flat, [], 1n, '2026-02-30')).toThrow(RangeError);
  });
});
