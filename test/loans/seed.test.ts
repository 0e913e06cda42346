import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedOriginalLoans } from '../../src/loans/seed.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

const NOW = new Date('2026-11-21T10:00:00.000Z');
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({}, () => NOW);
});
afterAll(() => t.close());

const get = async (url: string) => (await t.app.inject({ url })).json();
const loan = (n: number) => `/api/loans/00000000-0000-0000-0000-00000000000${n}`;

describe('seedOriginalLoans', () => {
  it('inserts the five original loans once', async () => {
    expect(await seedOriginalLoans(t.pool, t.config, NOW)).toBe(5);
    expect(await seedOriginalLoans(t.pool, t.config, NOW)).toBe(0);
    const list = await get('/api/loans');
    expect(
      list.map((l: Record<string, unknown>) => [
        l.id,
        l.borrower_id,
        l.amount,
        l.currency,
        l.status,
        l.term_months,
        l.interest_rate_apr,
      ]),
    ).toEqual([
      [
        '00000000-0000-0000-0000-000000000005',
        'usr_philippines_005',
        '21000.00',
        'PHP',
        'repaid',
        6,
        '22.00',
      ],
      ['00000000-0000-0000-0000-000000000004', 'usr_vietnam_004', '8400', 'VND', 'disbursed', 4, '26.00'],
      ['00000000-0000-0000-0000-000000000003', 'usr_nigeria_003', '32000.00', 'NGN', 'rejected', 9, '30.00'],
      ['00000000-0000-0000-0000-000000000002', 'usr_india_002', '50000.00', 'INR', 'approved', 12, '24.00'],
      ['00000000-0000-0000-0000-000000000001', 'usr_kenya_001', '12500.00', 'KES', 'pending', 6, '28.00'],
    ]);
  });

  it('gives the repaid loan a schedule paid in full by its repayments', async () => {
    const schedule = await get(`${loan(5)}/schedule`);
    expect(
      schedule.installments.every(
        (row: { status: string; paid: string; total: string }) =>
          row.status === 'paid' && row.paid === row.total,
      ),
    ).toBe(true);
    const repayments = await get(`${loan(5)}/repayments`);
    expect(repayments).toHaveLength(6);
    const paidMinor = repayments.reduce(
      (sum: bigint, r: { amount: string }) => sum + BigInt(r.amount.replace('.', '')),
      0n,
    );
    expect(paidMinor).toBe(BigInt(schedule.total_repayable.replace('.', '')));
    expect(await get(loan(5))).toMatchObject({
      outstanding_principal: '0.00',
      total_repaid: schedule.total_repayable,
      days_past_due: 0,
    });
    const events = await get(`${loan(5)}/events`);
    expect(events.map((e: { type: string }) => e.type)).toEqual([
      'created',
      'approved',
      'disbursed',
      'repayment',
      'repayment',
      'repayment',
      'repayment',
      'repayment',
      'repayment',
      'repaid',
    ]);
    expect(events.map((e: { type: string; actor: string }) => `${e.type} by ${e.actor}`).slice(0, 4)).toEqual(
      [
        'created by seed:clerk',
        'approved by seed:officer',
        'disbursed by seed:officer',
        'repayment by seed:clerk',
      ],
    );
  });

  it('gives the disbursed loan one paid installment and nothing overdue', async () => {
    const schedule = await get(`${loan(4)}/schedule`);
    expect(schedule.installments.map((row: { status: string }) => row.status)).toEqual([
      'paid',
      'pending',
      'pending',
      'pending',
    ]);
    expect(schedule.disbursed_on).toBe('2026-10-07');
    expect(await get(loan(4))).toMatchObject({
      outstanding_principal: '6367',
      next_due_date: '2026-12-07',
      days_past_due: 0,
    });
  });

  it('records the approval and the rejection', async () => {
    expect((await get(`${loan(2)}/events`)).map((e: { type: string }) => e.type)).toEqual([
      'created',
      'approved',
    ]);
    expect(await get(loan(3))).toMatchObject({ rejection_reason: 'Debt-to-income ratio above policy' });
    expect(await get(`${loan(1)}/events`)).toHaveLength(1);
  });
});

describe('a seed interrupted half-way', () => {
  it('is completed by the next run, with the history a clean run writes', async () => {
    const fresh = await buildTestApp({}, () => NOW);
    try {
      // The fourth repayment of the repaid loan fails, as a lost connection would make it.
      await fresh.pool.query(`
        CREATE FUNCTION fail_fourth_seed_repayment() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.reference = 'seed-4' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$;
        CREATE TRIGGER fail_fourth_seed_repayment BEFORE INSERT ON repayments
          FOR EACH ROW EXECUTE FUNCTION fail_fourth_seed_repayment();`);
      await expect(seedOriginalLoans(fresh.pool, fresh.config, NOW)).rejects.toThrow(/injected failure/);
      await fresh.pool.query(
        'DROP TRIGGER fail_fourth_seed_repayment ON repayments; DROP FUNCTION fail_fourth_seed_repayment();',
      );

      expect(await seedOriginalLoans(fresh.pool, fresh.config, NOW)).toBe(1);
      expect(await seedOriginalLoans(fresh.pool, fresh.config, NOW)).toBe(0);
      const repaid = (await fresh.app.inject({ url: loan(5) })).json();
      expect(repaid).toMatchObject({ status: 'repaid', outstanding_principal: '0.00' });
      const events = (await fresh.app.inject({ url: `${loan(5)}/events` })).json();
      expect(events.map((event: { type: string }) => event.type)).toEqual([
        'created',
        'approved',
        'disbursed',
        ...Array(6).fill('repayment'),
        'repaid',
      ]);
      const references = (await fresh.app.inject({ url: `${loan(5)}/repayments` }))
        .json()
        .map((row: { reference: string }) => row.reference);
      expect(references).toEqual(['seed-1', 'seed-2', 'seed-3', 'seed-4', 'seed-5', 'seed-6']);
    } finally {
      await fresh.close();
    }
  });
});
