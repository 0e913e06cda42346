import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { parseSeedArgs, seedDatabase } from '../../src/cli/seed.ts';
import { allocateRepayments, daysPastDue, nextDueDate } from '../../src/loans/allocation.ts';
import { LOAN_STATUSES, type LoanStatus } from '../../src/loans/loan-status.ts';
import { aprToBasisPoints, buildSchedule } from '../../src/loans/schedule.ts';
import { currencyExponent } from '../../src/money/currencies.ts';
import { createPool, type Pool } from '../../src/platform/database.ts';
import { testConfig } from '../helpers/app.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const runSeedCli = (args: string[]) => runCli('seed', args);

async function countLoans(pool: Pool): Promise<number> {
  const result = await pool.query<{ count: string }>('SELECT count(*) FROM loans');
  return Number(result.rows[0]!.count);
}

/** The trigger-maintained aggregates must equal fresh aggregates of the table; returns the differences. */
async function aggregateDrift(pool: Pool): Promise<unknown[]> {
  const stats = await pool.query(
    `SELECT * FROM (
       SELECT currency, status, count(*) AS loans, sum(amount_minor) AS amount,
              sum(outstanding_principal_minor) AS outstanding
         FROM loans GROUP BY 1, 2) t
       FULL JOIN (SELECT currency, status, sum(loans) AS loans, sum(amount_minor) AS amount,
                         sum(outstanding_minor) AS outstanding
                    FROM loan_stats GROUP BY 1, 2
                  HAVING sum(loans) <> 0 OR sum(amount_minor) <> 0 OR sum(outstanding_minor) <> 0) s
              USING (currency, status)
      WHERE t.loans IS DISTINCT FROM s.loans OR t.amount IS DISTINCT FROM s.amount
         OR t.outstanding IS DISTINCT FROM s.outstanding`,
  );
  const arrears = await pool.query(
    `SELECT * FROM (
       SELECT currency, oldest_unpaid_due_date AS due, count(*) AS loans, sum(outstanding_principal_minor) AS outstanding
         FROM loans WHERE status IN ('disbursed', 'defaulted') AND oldest_unpaid_due_date IS NOT NULL GROUP BY 1, 2) t
       FULL JOIN (SELECT currency, oldest_unpaid_due AS due, sum(loans) AS loans, sum(outstanding_minor) AS outstanding
                    FROM loan_arrears GROUP BY 1, 2 HAVING sum(loans) <> 0 OR sum(outstanding_minor) <> 0) a
              USING (currency, due)
      WHERE t.loans IS DISTINCT FROM a.loans OR t.outstanding IS DISTINCT FROM a.outstanding`,
  );
  return [...stats.rows, ...arrears.rows];
}

interface RandomLoan {
  id: string;
  borrower_id: string;
  currency: string;
  amount_minor: string;
  term_months: number;
  interest_rate_apr: string;
  status: LoanStatus;
  age_days: number;
  timestamps_in_order: boolean;
  ms_precision: boolean;
  disbursed_on: string | null;
  disbursed_on_is_utc_date: boolean | null;
  outstanding_principal_minor: string;
  repaid_minor: string;
  oldest_unpaid_due_date: string | null;
  payments: string[];
  today: string;
}

/** Why a random loan breaks a rule of the API or of its lifecycle; empty when it is consistent. */
function violations(loan: RandomLoan): string[] {
  const problems: string[] = [];
  const check = (ok: boolean, rule: string) => ok || problems.push(rule);
  const maxMinor = 50_000n * 10n ** BigInt(currencyExponent(loan.currency));
  const amount = BigInt(loan.amount_minor);
  check(/^[A-Za-z0-9_.:-]{1,64}$/.test(loan.borrower_id), 'borrower_id');
  check(amount > 0n && amount <= maxMinor, 'amount within (0, max]');
  check(Number.isInteger(loan.term_months) && loan.term_months >= 1 && loan.term_months <= 360, 'term');
  check(/^(100\.00|\d{1,2}\.\d{2})$/.test(loan.interest_rate_apr), 'apr');
  check(loan.age_days >= 0 && loan.age_days <= 731, 'created in the past two years');
  check(loan.timestamps_in_order, 'created ≤ decided ≤ disbursed ≤ closed ≤ updated ≤ now');
  check(loan.ms_precision, 'millisecond timestamps');
  const paid = loan.payments.reduce((sum, payment) => sum + BigInt(payment), 0n);
  check(BigInt(loan.repaid_minor) === paid, 'repaid_minor is the sum of the repayments');

  if (loan.disbursed_on === null) {
    check(paid === 0n && loan.outstanding_principal_minor === '0', 'nothing owed before disbursement');
    check(loan.oldest_unpaid_due_date === null, 'no due date before disbursement');
    return problems;
  }
  check(loan.disbursed_on_is_utc_date === true, 'disbursed_on is the UTC date of disbursed_at');
  const schedule = buildSchedule({
    principalMinor: amount,
    aprBasisPoints: aprToBasisPoints(loan.interest_rate_apr),
    termMonths: loan.term_months,
    disbursedOn: loan.disbursed_on,
  });
  const position = allocateRepayments(
    schedule.installments,
    loan.payments.map((payment) => BigInt(payment)),
  );
  check(position.unappliedMinor === 0n, 'no overpayment');
  check(
    BigInt(loan.outstanding_principal_minor) === position.outstandingPrincipalMinor,
    'outstanding principal matches the allocation',
  );
  check(loan.oldest_unpaid_due_date === nextDueDate(position), 'oldest unpaid due date matches');
  check(
    loan.status === 'repaid' ? position.outstandingMinor === 0n : position.outstandingMinor > 0n,
    'repaid exactly when nothing is owed',
  );
  const due = schedule.installments.filter((row) => row.dueDate <= loan.today);
  check(
    loan.status !== 'defaulted' || daysPastDue(nextDueDate(position), loan.today) > 30,
    'defaulted loans are more than 30 days past due',
  );
  check(
    loan.status !== 'disbursed' || due.length > 0 || paid === 0n,
    'nothing paid before the first due date',
  );
  return problems;
}

describe('db:seed', () => {
  const config = testConfig();
  let db: TestDatabase;
  let pool: Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = createPool(db.url, config.database, () => {});
  });
  afterAll(async () => {
    await pool.end();
    await db.drop();
  });

  it('inserts the five original loans of API.md §7 on the first run, as clients see them', async () => {
    const report = await seedDatabase(db.url, config, { loans: 0 });
    expect(report).toEqual({ appliedMigrations: [], originalInserted: 5, randomInserted: 0 });

    const rows = await pool.query({
      text: `SELECT id, borrower_id, amount_minor, currency, status, term_months, interest_rate_apr
               FROM loans ORDER BY id`,
      rowMode: 'array',
    });
    expect(rows.rows).toEqual([
      ['00000000-0000-0000-0000-000000000001', 'usr_kenya_001', '1250000', 'KES', 'pending', 6, '28.00'],
      ['00000000-0000-0000-0000-000000000002', 'usr_india_002', '5000000', 'INR', 'approved', 12, '24.00'],
      ['00000000-0000-0000-0000-000000000003', 'usr_nigeria_003', '3200000', 'NGN', 'rejected', 9, '30.00'],
      ['00000000-0000-0000-0000-000000000004', 'usr_vietnam_004', '8400', 'VND', 'disbursed', 4, '26.00'],
      ['00000000-0000-0000-0000-000000000005', 'usr_philippines_005', '2100000', 'PHP', 'repaid', 6, '22.00'],
    ]);

    const app = await buildApp({ config, pool });
    try {
      const response = await app.inject({ method: 'GET', url: '/api/loans' });
      expect(response.statusCode).toBe(200);
      const loans = response.json<Record<string, unknown>[]>();
      expect(
        loans.map(({ id, borrower_id, amount, currency, status, term_months, interest_rate_apr }) => [
          id,
          borrower_id,
          amount,
          currency,
          status,
          term_months,
          interest_rate_apr,
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
        [
          '00000000-0000-0000-0000-000000000003',
          'usr_nigeria_003',
          '32000.00',
          'NGN',
          'rejected',
          9,
          '30.00',
        ],
        ['00000000-0000-0000-0000-000000000002', 'usr_india_002', '50000.00', 'INR', 'approved', 12, '24.00'],
        ['00000000-0000-0000-0000-000000000001', 'usr_kenya_001', '12500.00', 'KES', 'pending', 6, '28.00'],
      ]);
    } finally {
      await app.close();
    }
  });

  it('inserts nothing on a second run', async () => {
    const report = await seedDatabase(db.url, config, { loans: 0 });
    expect(report).toEqual({ appliedMigrations: [], originalInserted: 0, randomInserted: 0 });
    expect(await countLoans(pool)).toBe(5);
  });

  it('adds exactly 1000 random loans that satisfy every rule, across statuses and currencies', async () => {
    const progress: [number, number][] = [];
    const report = await seedDatabase(db.url, config, {
      loans: 1000,
      onProgress: (done, total) => progress.push([done, total]),
    });
    expect(report).toEqual({ appliedMigrations: [], originalInserted: 0, randomInserted: 1000 });
    expect(await countLoans(pool)).toBe(1005);
    expect(progress.at(0)).toEqual([0, 1000]);
    expect(progress.at(-1)).toEqual([1000, 1000]);

    const random = await pool.query<RandomLoan>(
      `SELECT l.id, borrower_id, currency, amount_minor, term_months, interest_rate_apr, status,
              extract(epoch FROM now() - created_at) / 86400 AS age_days,
              (created_at <= least(approved_at, rejected_at, disbursed_at, defaulted_at, repaid_at)) IS NOT FALSE
                AND (approved_at <= disbursed_at) IS NOT FALSE
                AND (disbursed_at <= least(repaid_at, defaulted_at)) IS NOT FALSE
                AND updated_at = greatest(created_at, approved_at, rejected_at, disbursed_at, defaulted_at, repaid_at,
                                          (SELECT max(r.created_at) FROM repayments r WHERE r.loan_id = l.id))
                AND updated_at <= now() AS timestamps_in_order,
              created_at = date_trunc('milliseconds', created_at)
                AND updated_at = date_trunc('milliseconds', updated_at) AS ms_precision,
              disbursed_on, disbursed_on = (disbursed_at AT TIME ZONE 'UTC')::date AS disbursed_on_is_utc_date,
              outstanding_principal_minor, repaid_minor, oldest_unpaid_due_date,
              coalesce((SELECT array_agg(r.amount_minor::text ORDER BY r.seq) FROM repayments r WHERE r.loan_id = l.id),
                       '{}') AS payments,
              (now() AT TIME ZONE 'UTC')::date AS today
         FROM loans l WHERE l.id::text NOT LIKE '00000000-0000-0000-0000-%'`,
    );
    expect(random.rows).toHaveLength(1000);
    const broken = random.rows
      .map((loan) => ({ id: loan.id, status: loan.status, problems: violations(loan) }))
      .filter((loan) => loan.problems.length > 0);
    expect(broken).toEqual([]);

    expect(new Set(random.rows.map((row) => row.status))).toEqual(new Set(LOAN_STATUSES));
    const currencies = new Set(random.rows.map((row) => row.currency));
    expect(currencies.size).toBeGreaterThanOrEqual(5);
    const exponents = new Set([...currencies].map(currencyExponent));
    expect(exponents).toEqual(new Set([0, 2, 3]));
    expect(await aggregateDrift(pool)).toEqual([]);
    const totals = await pool.query('SELECT (SELECT sum(loans) FROM loan_stats)::int AS loans');
    expect(totals.rows[0]).toEqual({ loans: 1005 });
  });

  it('leaves the aggregates as compact as a rewrite would, although one transaction updated their rows', async () => {
    await seedDatabase(db.url, config, { loans: 1000 });
    const sizes = async () =>
      (
        await pool.query<{ relation: string; bytes: string }>(
          `SELECT relname AS relation, pg_total_relation_size(oid)::text AS bytes FROM pg_class
            WHERE relname IN ('loan_stats', 'loan_arrears') ORDER BY relname`,
        )
      ).rows;
    const seeded = await sizes();
    await pool.query('VACUUM FULL loan_stats, loan_arrears');
    expect(seeded).toEqual(await sizes());
  });

  it('runs as a command against --database-url and reports what it inserted', async () => {
    const before = await countLoans(pool);
    const result = await runSeedCli(['--database-url', db.url, '--loans', '50']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^schema is up to date\noriginal loans already present, nothing inserted\ninserted 50 random loans \(the seed took \d+\.\d s\)\n$/,
    );
    expect(result.stderr).toContain('random loans: 100% (50/50)');
    expect(await countLoans(pool)).toBe(before + 50);
    expect(await aggregateDrift(pool)).toEqual([]);
  });

  it('rejects --loans abc with a one-line message and exit code 2', async () => {
    const result = await runSeedCli(['--loans', 'abc']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'seed: --loans must be an integer from 1 to 10000000 (got "abc"); usage: npm run db:seed -- [--loans N] [--database-url postgres://…]\n',
    );
  });
});

describe('seed arguments', () => {
  it.each([
    [[], { loans: 0, databaseUrl: undefined, help: false }],
    [['--loans', '100000'], { loans: 100_000, databaseUrl: undefined, help: false }],
    [
      ['--loans=7', '--database-url=postgres://h/db'],
      { loans: 7, databaseUrl: 'postgres://h/db', help: false },
    ],
  ])('parses %j', (argv, expected) => {
    expect(parseSeedArgs(argv)).toEqual(expected);
  });

  it.each([
    [['--loans', '0'], '--loans must be an integer from 1 to 10000000 (got "0")'],
    [['--loans', '-5'], '--loans must be an integer from 1 to 10000000 (got "-5")'],
    [['--loans', '1.5'], '--loans must be an integer from 1 to 10000000 (got "1.5")'],
    [['--loans', '1e3'], '--loans must be an integer from 1 to 10000000 (got "1e3")'],
    [['--loans'], '--loans needs a value'],
    [['--lons', '5'], 'unknown argument "--lons"'],
    [['extra'], 'unknown argument "extra"'],
  ])('rejects %j', (argv, message) => {
    expect(() => parseSeedArgs(argv)).toThrow(message);
  });
});
