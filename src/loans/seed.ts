// The original five loans of the Flask service, brought to their states through the real commands
// with a simulated clock, so that their schedules, repayments and events are consistent.
import type { Config } from '../config.ts';
import { formatMoney } from '../money/money.ts';
import type { Pool } from '../platform/database.ts';
import { approveLoan, createLoan, disburseLoan, recordRepayment, rejectLoan } from './loan-commands.ts';
import type { LoanStatus } from './loan-status.ts';
import { type Command, createCommandRunner } from './loan-transaction.ts';
import { findLoan } from './loans.repository.ts';
import { listRepayments } from './repayments.repository.ts';
import { scheduleOf } from './schedule.ts';

interface SeedLoan {
  id: string;
  borrower_id: string;
  amount: string;
  currency: string;
  term_months: number;
  interest_rate_apr: string;
  status: LoanStatus;
  /** For disbursed loans: when the money went out, and how many installments were paid on their due dates. */
  disbursedDaysAgo?: number;
  installmentsPaid?: number;
}

/** All five were applied for on the same day, so the list shows them by id: 5, 4, 3, 2, 1. */
export const ORIGINAL_LOANS: readonly SeedLoan[] = [
  {
    id: '00000000-0000-0000-0000-000000000001',
    borrower_id: 'usr_kenya_001',
    amount: '12500.00',
    currency: 'KES',
    term_months: 6,
    interest_rate_apr: '28.00',
    status: 'pending',
  },
  {
    id: '00000000-0000-0000-0000-000000000002',
    borrower_id: 'usr_india_002',
    amount: '50000.00',
    currency: 'INR',
    term_months: 12,
    interest_rate_apr: '24.00',
    status: 'approved',
  },
  {
    id: '00000000-0000-0000-0000-000000000003',
    borrower_id: 'usr_nigeria_003',
    amount: '32000.00',
    currency: 'NGN',
    term_months: 9,
    interest_rate_apr: '30.00',
    status: 'rejected',
  },
  {
    id: '00000000-0000-0000-0000-000000000004',
    borrower_id: 'usr_vietnam_004',
    amount: '8400',
    currency: 'VND',
    term_months: 4,
    interest_rate_apr: '26.00',
    status: 'disbursed',
    disbursedDaysAgo: 45,
    installmentsPaid: 1,
  },
  {
    id: '00000000-0000-0000-0000-000000000005',
    borrower_id: 'usr_philippines_005',
    amount: '21000.00',
    currency: 'PHP',
    term_months: 6,
    interest_rate_apr: '22.00',
    status: 'repaid',
    disbursedDaysAgo: 218,
    installmentsPaid: 6,
  },
];

const DAY_MS = 24 * 60 * 60 * 1000;
const APPLIED_DAYS_AGO = 220;

/**
 * Brings each original loan to its state, resuming where an earlier run stopped: every step is skipped
 * when the loan already took it, so a seed that failed half-way is completed, never left as it was.
 * Returns how many loans it created or completed (0 on a second run).
 */
export async function seedOriginalLoans(pool: Pool, config: Config, now: Date = new Date()): Promise<number> {
  const daysAgo = (days: number) => new Date(now.getTime() - days * DAY_MS);
  let clock = now;
  const runner = createCommandRunner({ pool, config, clock: () => clock });
  let seeded = 0;

  for (const { id, status, disbursedDaysAgo, installmentsPaid = 0, ...terms } of ORIGINAL_LOANS) {
    let loan = await findLoan(pool, id);
    const paid = loan ? (await listRepayments(pool, id)).length : 0;
    if (loan?.status === status && paid === installmentsPaid) continue;

    let step = 0;
    // Two actors, as maker–checker requires: one applies and collects, the other decides and disburses.
    const as =
      (actor: 'seed:clerk' | 'seed:officer') =>
      <R>(command: Command<R>) =>
        runner.run({ actor, requestId: `seed-${id.slice(-1)}-${step++}`, ifMatch: undefined }, command);
    const [clerk, officer] = [as('seed:clerk'), as('seed:officer')];
    const reload = async () => (await findLoan(pool, id))!;

    if (!loan) {
      clock = daysAgo(APPLIED_DAYS_AGO);
      await clerk((tx) => createLoan(tx, terms, id));
      loan = await reload();
    }
    clock = daysAgo(APPLIED_DAYS_AGO - 1);
    if (loan.status === 'pending' && status === 'rejected')
      await officer((tx) => rejectLoan(tx, id, { reason: 'Debt-to-income ratio above policy' }));
    if (loan.status === 'pending' && status !== 'pending' && status !== 'rejected')
      await officer((tx) => approveLoan(tx, id, { note: 'Meets policy' }));
    loan = await reload();
    if (disbursedDaysAgo !== undefined) {
      if (loan.status === 'approved') {
        clock = daysAgo(disbursedDaysAgo);
        await officer((tx) => disburseLoan(tx, id, {}));
        loan = await reload();
      }
      const installments = scheduleOf(loan, loan.disbursed_on!).installments.slice(paid, installmentsPaid);
      for (const installment of installments) {
        clock = new Date(`${installment.dueDate}T12:00:00.000Z`);
        const amount = formatMoney(installment.totalMinor, loan.currency);
        await clerk((tx) => recordRepayment(tx, id, { amount, reference: `seed-${installment.number}` }));
      }
    }
    seeded++;
  }
  return seeded;
}
