// Random loans for benchmarks (npm run db:seed -- --loans N): drawn in bulk SQL, each with a plausible
// lifecycle and, once disbursed, the repayments of its own schedule.
import type { PoolClient } from 'pg';
import type { Config } from '../config.ts';
import { currencyExponent } from '../money/currencies.ts';
import { type Pool, withTransaction } from '../platform/database.ts';
import { LOAN_STATUSES, type LoanStatus } from './loan-status.ts';
import { maxAmountMinor } from './loan-terms.ts';
import { aprToBasisPoints, buildSchedule } from './schedule.ts';

/** Rows drawn per statement; inserts go in batches of BATCH_SIZE loans, one statement each. */
const DRAW_CHUNK = 100_000;
const BATCH_SIZE = 10_000;

/** Where the random loans are: mostly Branch's markets; 0, 2 and 3 minor digits. [code, weight, country]. */
const RANDOM_CURRENCIES: readonly (readonly [string, number, string])[] = [
  ['INR', 24, 'india'],
  ['KES', 14, 'kenya'],
  ['NGN', 14, 'nigeria'],
  ['PHP', 10, 'philippines'],
  ['VND', 8, 'vietnam'],
  ['UGX', 6, 'uganda'],
  ['GHS', 5, 'ghana'],
  ['TZS', 5, 'tanzania'],
  ['MXN', 4, 'mexico'],
  ['IDR', 3, 'indonesia'],
  ['JPY', 3, 'japan'],
  ['KWD', 2, 'kuwait'],
  ['BHD', 1, 'bahrain'],
  ['XOF', 1, 'senegal'],
];

const STATUS_WEIGHTS: Record<LoanStatus, number> = {
  pending: 12,
  approved: 8,
  rejected: 15,
  disbursed: 40,
  repaid: 20,
  defaulted: 5,
};

/** Lower bucket bounds for width_bucket(random(), bounds): 0 first, then the cumulative shares. */
function bucketBounds(weights: readonly number[]): number[] {
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  let running = 0;
  return weights.map((weight) => {
    const bound = running / total;
    running += weight;
    return bound;
  });
}

const REJECTION_REASONS = [
  'insufficient repayment capacity',
  'incomplete KYC documents',
  'existing overdue loan',
];
const DEFAULT_REASONS = [
  'no payment for 90 days',
  'borrower unreachable',
  'written off after collection attempts',
];

// Rows are drawn in SQL into a temporary table, so no amount passes through a JS number: random()
// only picks buckets and dates, amounts are bigint minor units from the first cast on. Amounts are
// log-uniform from max/500 to the configured max, 80% of them rounded to 10 or 100 major units.
// Each status gets a plausible timeline: pending and approved applications are recent, disbursed
// loans are within their term, repaid and defaulted loans are older. Random loans get no audit
// events: about three per loan would triple the seeding time (a foreign-key check per row and three
// indexes on loan_events), and the benchmarks never read them.
const CREATE_DRAW_TABLE = `
CREATE TEMP TABLE seed_draw (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  borrower_id text, currency text, amount_minor bigint, term_months int, interest_rate_apr numeric(5,2),
  status text, created_at timestamptz(3), approved_at timestamptz(3), rejected_at timestamptz(3),
  rejection_reason text, disbursed_at timestamptz(3), disbursed_on date, default_reason text,
  r_paid float8, r_hour float8
) ON COMMIT DROP`;

const DRAW = `
INSERT INTO seed_draw (borrower_id, currency, amount_minor, term_months, interest_rate_apr, status,
  created_at, approved_at, rejected_at, rejection_reason, disbursed_at, disbursed_on, default_reason, r_paid, r_hour)
WITH draw AS (
  SELECT width_bucket(random(), $3::float8[]) AS c, width_bucket(random(), $8::float8[]) AS s,
         random() AS r_amount, random() AS r_round, random() AS r_term, random() AS r_term_value,
         random() AS r_apr, random() AS r_apr_value, random() AS r_age, random() AS r_lag1,
         random() AS r_lag2, random() AS r_borrower, random() AS r_reason, random() AS r_paid, random() AS r_hour
    FROM generate_series(1, $1::int) g
), pick AS (
  SELECT ($2::text[])[c] AS currency, ($6::text[])[c] AS country, ($7::text[])[s] AS status,
         (10::bigint ^ ($4::int[])[c])::bigint AS unit, ($5::bigint[])[c] AS max_minor,
         greatest(1, ($5::bigint[])[c] / 500) AS min_minor, d.*
    FROM draw d
), amount AS (
  SELECT least(max_minor, floor(min_minor * exp(r_amount * ln(max_minor::float8 / min_minor)))::bigint) AS raw,
         CASE WHEN r_round >= 0.8 THEN 1::bigint
              WHEN max_minor >= 1000 * unit THEN 100 * unit ELSE 10 * unit END AS step,
         p.*
    FROM pick p
), loan AS (
  SELECT currency, status, r_lag1, r_lag2, r_reason, r_paid, r_hour,
         'usr_' || country || '_' || lpad((1 + floor(r_borrower * $9::int))::text, 7, '0') AS borrower_id,
         CASE WHEN raw >= step THEN raw / step * step ELSE raw END AS amount_minor,
         CASE WHEN r_term < 0.88 THEN (ARRAY[3, 6, 9, 12, 18, 24])[least(6, 1 + floor(r_term_value * 6)::int)]
              WHEN r_term < 0.98 THEN (ARRAY[1, 2, 30, 36, 48, 60])[least(6, 1 + floor(r_term_value * 6)::int)]
              ELSE least(360, 1 + floor(r_term_value * 360)::int) END AS term_months,
         (CASE WHEN r_apr < 0.03 THEN 0
               WHEN r_apr < 0.9 THEN 1200 + least(3300, floor(r_apr_value * 3301)::int)
               ELSE least(10000, floor(r_apr_value * 10001)::int) END)::numeric / 100 AS interest_rate_apr,
         r_age
    FROM amount
), aged AS (
  SELECT l.*, date_trunc('milliseconds', now() - CASE status
           WHEN 'pending' THEN power(r_age, 1.5) * interval '14 days'
           WHEN 'approved' THEN power(r_age, 1.5) * interval '21 days'
           WHEN 'rejected' THEN power(r_age, 1.5) * interval '730 days'
           WHEN 'disbursed' THEN r_age * least(interval '730 days', term_months * interval '30 days')
           WHEN 'defaulted' THEN interval '150 days' + r_age * interval '580 days'
           -- repaid: old enough for the whole term to have passed, unless the term is longer than the window
           ELSE CASE WHEN term_months * interval '30 days' < interval '700 days'
                     THEN term_months * interval '30 days' + interval '7 days'
                          + r_age * (interval '723 days' - term_months * interval '30 days')
                     ELSE r_age * interval '730 days' END
         END) AS created_at
    FROM loan l
), decided AS (
  SELECT a.*,
         CASE WHEN status <> 'rejected' AND status <> 'pending'
              THEN date_trunc('milliseconds', created_at + r_lag1 * least(interval '2 days', now() - created_at)) END
           AS approved_at,
         CASE WHEN status = 'rejected'
              THEN date_trunc('milliseconds', created_at + r_lag1 * least(interval '3 days', now() - created_at)) END
           AS rejected_at
    FROM aged a
), disbursed AS (
  SELECT d.*,
         CASE WHEN status IN ('disbursed', 'repaid', 'defaulted')
              THEN date_trunc('milliseconds', approved_at + r_lag2 * least(interval '2 days', now() - approved_at)) END
           AS disbursed_at
    FROM decided d
)
SELECT borrower_id, currency, amount_minor, term_months, interest_rate_apr, status,
       created_at, approved_at, rejected_at,
       CASE WHEN status = 'rejected' THEN ($10::text[])[1 + floor(r_reason * 3)::int] END,
       disbursed_at, (disbursed_at AT TIME ZONE 'UTC')::date,
       CASE WHEN status = 'defaulted' THEN ($11::text[])[1 + floor(r_reason * 3)::int] END,
       r_paid, r_hour
  FROM disbursed`;

// Loans are inserted oldest first, numbered by n in that order: the indexes that lead with created_at
// (the list's keyset indexes) then grow at their right edge instead of taking random inserts.
const NUMBER_BY_AGE = `
CREATE TEMP TABLE seed_batch ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY created_at, id)::int AS n, d.* FROM seed_draw d`;

// One statement per batch writes the loans n = $1..$2 and their repayments. Repayment progress
// ($3…$9, per disbursed loan) comes from the service's own schedule, computed in JS with exact bigint
// arithmetic, and is recorded as one repayment carrying everything paid so far: allocation depends
// only on the total paid.
const INSERT_BATCH = `
WITH progress AS (
  SELECT * FROM unnest($3::int[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::date[], $9::date[])
    AS p(n, repaid_minor, interest_paid_minor, principal_paid_minor, outstanding_minor, oldest_due, paid_on)
), paid AS (
  SELECT b.*, coalesce(p.repaid_minor, 0) AS repaid_minor, p.interest_paid_minor, p.principal_paid_minor,
         coalesce(p.outstanding_minor, 0) AS outstanding_principal_minor, p.oldest_due, p.paid_on,
         CASE WHEN p.paid_on IS NOT NULL THEN greatest(b.disbursed_at, least(date_trunc('milliseconds', now()),
           date_trunc('milliseconds', (p.paid_on + b.r_hour * interval '1 day') AT TIME ZONE 'UTC'))) END AS paid_at
    FROM seed_batch b LEFT JOIN progress p USING (n)
   WHERE b.n BETWEEN $1 AND $2
), closed AS (
  SELECT paid.*, CASE WHEN status = 'repaid' THEN paid_at END AS repaid_at,
         CASE WHEN status = 'defaulted' THEN greatest(disbursed_at, paid_at, least(date_trunc('milliseconds', now()),
           date_trunc('milliseconds', (oldest_due + 60 + r_hour * interval '30 days') AT TIME ZONE 'UTC'))) END
           AS defaulted_at
    FROM paid
), loans_written AS (
  INSERT INTO loans (id, created_by, borrower_id, currency, amount_minor, term_months, interest_rate_apr, status,
    created_at, updated_at, version, approved_at, rejected_at, rejection_reason, disbursed_at, disbursed_on,
    defaulted_at, default_reason, repaid_at, outstanding_principal_minor, repaid_minor, oldest_unpaid_due_date)
  SELECT id, 'seed', borrower_id, currency, amount_minor, term_months, interest_rate_apr, status, created_at,
         greatest(created_at, approved_at, rejected_at, disbursed_at, paid_at, defaulted_at),
         1 + (approved_at IS NOT NULL)::int + (rejected_at IS NOT NULL)::int + (disbursed_at IS NOT NULL)::int
           + (paid_at IS NOT NULL)::int + (defaulted_at IS NOT NULL)::int,
         approved_at, rejected_at, rejection_reason, disbursed_at, disbursed_on, defaulted_at,
         default_reason, repaid_at, outstanding_principal_minor, repaid_minor, oldest_due
    FROM closed
   ORDER BY n
  RETURNING 1
), repayments_written AS (
  INSERT INTO repayments (loan_id, amount_minor, interest_minor, principal_minor, paid_on, reference, actor,
    request_id, created_at)
  SELECT id, repaid_minor, interest_paid_minor, principal_paid_minor, paid_on, 'seed', 'seed', 'seed', paid_at
    FROM closed
   WHERE repaid_minor > 0
   ORDER BY paid_at
)
SELECT count(*)::int AS inserted FROM loans_written`;

interface DisbursedDraw {
  n: number;
  status: LoanStatus;
  amount_minor: string;
  interest_rate_apr: string;
  term_months: number;
  disbursed_on: string;
  r_paid: number;
}

/**
 * Installments paid so far: all of them for repaid loans; for disbursed loans most borrowers are
 * current and some are one or more installments behind; defaulted loans stopped paying months ago.
 * An active loan keeps something owed: at most `payable - 1` of its non-zero installments are paid.
 */
function installmentsPaid(draw: DisbursedDraw, due: number, payable: number): number {
  if (draw.status === 'repaid') return draw.term_months;
  const behind =
    draw.status === 'defaulted'
      ? 3 + Math.floor(draw.r_paid * 4)
      : draw.r_paid < 0.8
        ? 0
        : draw.r_paid < 0.92
          ? 1
          : 2 + Math.floor(((draw.r_paid - 0.92) / 0.08) * 4);
  return Math.max(0, Math.min(payable - 1, due - behind));
}

/**
 * The loan after paying its first `paid` installments in full, which is what allocation (oldest
 * installment first, interest before principal) makes of that total. Summed here rather than through
 * allocateRepayments, which copies every installment: that made this step of `--loans 1000000` about
 * 20 times slower on Node 20. test/cli/seed.test.ts checks every seeded loan against allocateRepayments
 * and nextDueDate.
 */
function repaymentProgress(draw: DisbursedDraw, today: string) {
  const principalMinor = BigInt(draw.amount_minor);
  const rows = buildSchedule({
    principalMinor,
    aprBasisPoints: aprToBasisPoints(draw.interest_rate_apr),
    termMonths: draw.term_months,
    disbursedOn: draw.disbursed_on,
  }).installments;
  const due = rows.filter((row) => row.dueDate <= today).length;
  // A rounded-up installment can clear the balance early, leaving zero installments at the end.
  const payable = rows.findLastIndex((row) => row.totalMinor > 0n) + 1;
  const paid = installmentsPaid(draw, due, payable);
  let interest = 0n;
  let principal = 0n;
  for (const row of rows.slice(0, paid)) {
    interest += row.interestMinor;
    principal += row.principalMinor;
  }
  const lastPaidDue = paid > 0 ? rows[paid - 1]!.dueDate : null;
  return {
    repaid: interest + principal,
    interest,
    principal,
    outstanding: principalMinor - principal,
    oldestDue: rows.slice(paid).find((row) => row.totalMinor > 0n)?.dueDate ?? null,
    // Paid on the due date, or today when a repaid loan was settled early.
    paidOn: lastPaidDue === null ? null : lastPaidDue < today ? lastPaidDue : today,
  };
}

type Column = (string | number | null)[];
type ProgressColumns = [Column, Column, Column, Column, Column, Column, Column];

async function drawsOf(client: PoolClient, range: [number, number]): Promise<DisbursedDraw[]> {
  const result = await client.query<DisbursedDraw>(
    `SELECT n, status, amount_minor, interest_rate_apr::text, term_months, disbursed_on, r_paid
       FROM seed_batch WHERE disbursed_on IS NOT NULL AND n BETWEEN $1 AND $2`,
    range,
  );
  return result.rows;
}

function progressColumns(draws: DisbursedDraw[], today: string): ProgressColumns {
  const columns: ProgressColumns = [[], [], [], [], [], [], []];
  for (const draw of draws) {
    const progress = repaymentProgress(draw, today);
    columns[0].push(draw.n);
    columns[1].push(progress.repaid.toString());
    columns[2].push(progress.interest.toString());
    columns[3].push(progress.principal.toString());
    columns[4].push(progress.outstanding.toString());
    columns[5].push(progress.oldestDue);
    columns[6].push(progress.paidOn);
  }
  return columns;
}

/**
 * Inserts `count` random loans in one transaction (all or none), with a repayment for each disbursed
 * loan that has paid something; returns how many loans it inserted.
 */
export async function seedRandomLoans(
  pool: Pool,
  config: Config,
  count: number,
  options: { onProgress?: (done: number, total: number) => void } = {},
): Promise<number> {
  const currencies = RANDOM_CURRENCIES.map(([code]) => code);
  const drawParameters = [
    currencies,
    bucketBounds(RANDOM_CURRENCIES.map(([, weight]) => weight)),
    currencies.map(currencyExponent),
    currencies.map((code) => maxAmountMinor(config, code).toString()),
    RANDOM_CURRENCIES.map(([, , country]) => country),
    LOAN_STATUSES,
    bucketBounds(LOAN_STATUSES.map((status) => STATUS_WEIGHTS[status])),
    // About three loans per borrower.
    Math.max(100, Math.ceil(count / 3)),
    REJECTION_REASONS,
    DEFAULT_REASONS,
  ];
  const seeded = await withTransaction(pool, async (client) => {
    // A bulk load, not a request: the pool's per-statement timeout does not apply.
    await client.query('SET LOCAL statement_timeout = 0');
    options.onProgress?.(0, count);
    await client.query(CREATE_DRAW_TABLE);
    for (let drawn = 0; drawn < count; drawn += DRAW_CHUNK) {
      await client.query(DRAW, [Math.min(DRAW_CHUNK, count - drawn), ...drawParameters]);
    }
    await client.query(NUMBER_BY_AGE);
    await client.query('DROP TABLE seed_draw');
    await client.query('ALTER TABLE seed_batch ADD PRIMARY KEY (n)');
    // Temporary tables are never auto-analyzed; without statistics the per-batch range scans become seq scans.
    await client.query('ANALYZE seed_batch');
    const todayResult = await client.query<{ today: string }>(
      `SELECT (now() AT TIME ZONE 'UTC')::date AS today`,
    );
    const today = todayResult.rows[0]!.today;

    const ranges: [number, number][] = [];
    for (let first = 1; first <= count; first += BATCH_SIZE) {
      ranges.push([first, Math.min(first + BATCH_SIZE - 1, count)]);
    }
    let done = 0;
    let columns = progressColumns(await drawsOf(client, ranges[0]!), today);
    for (const [index, range] of ranges.entries()) {
      const next = ranges[index + 1];
      const nextDraws = next ? await drawsOf(client, next) : [];
      // The insert runs in PostgreSQL while the next batch's schedules are computed here.
      const inserted = client.query<{ inserted: number }>(INSERT_BATCH, [...range, ...columns]);
      inserted.catch(() => {}); // awaited below; this only keeps a failure from being "unhandled" meanwhile
      columns = progressColumns(nextDraws, today);
      done += (await inserted).rows[0]!.inserted;
      options.onProgress?.(done, count);
    }
    return done;
  });
  // The triggers updated the aggregates' few rows once per loan, all in that one transaction, so no old
  // version could be pruned: at 1M loans loan_arrears held 445 pages (its indexes 310 and 308) for 8,667
  // rows, and the stats read crossed them all. In service each change commits on its own, and its old
  // versions are pruned as it goes.
  await pool.query('VACUUM (FULL, ANALYZE) loan_stats, loan_arrears');
  return seeded;
}
