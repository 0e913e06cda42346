// The benchmarked requests, and the rows of the run's database they need (an API key, ids, a deep
// cursor, loans to approve and to repay).
import { encodeCursor } from '../src/loans/cursor.ts';
import { currencyExponent } from '../src/money/currencies.ts';
import { generateKey, insertKey } from '../src/platform/api-keys.ts';
import { withClient } from './databases.ts';
import { log } from './report.ts';

const SAMPLE_IDS = 1000;
const DEEP_PAGE_AT = 0.9;
const POST_BODY = JSON.stringify({
  borrower_id: 'bench_post_0001',
  amount: '1000.00',
  currency: 'INR',
  term_months: 12,
  interest_rate_apr: '12.00',
});
/** Repayments rotate over this many disbursed loans, so that no loan's row lock serializes the load. */
const REPAYMENT_LOANS = 1000;
const REPAYMENT_BODY = JSON.stringify({ amount: '1.00' });
/**
 * Rates no server here reaches on these writes (POST /api/loans did ~1,000 req/s on the baseline): they
 * size the pending loans to approve before a run (doubled, and raised to twice the fastest rate seen)
 * and the balance each repayment loan must have left for every run of the bench (doubled again).
 */
const APPROVE_RATE_GUESS = 2500;
const REPAYMENT_RATE_CEILING = 3000;

/** How long and how often each endpoint is loaded: what the repayment loans' balances must cover. */
export interface RunLength {
  warmup: number;
  duration: number;
  repeat: number;
}

export interface Fixtures {
  /** An admin key of the run's database, sent with every request to both servers. */
  apiKey: string;
  ids: string[];
  repaymentIds: string[];
  deepCursor: string;
  deepPlan: string[];
}

/**
 * The smallest outstanding principal a repayment loan may have: twice what the bench could take from it at
 * REPAYMENT_RATE_CEILING over every run of both servers, and at least 1,000.00.
 */
function repaymentFloorMinor(run: RunLength): bigint {
  const requests = REPAYMENT_RATE_CEILING * (run.warmup + run.duration) * run.repeat * 2;
  return BigInt(Math.max(100_000, Math.ceil(requests / REPAYMENT_LOANS) * 100 * 2));
}

export async function fixtures(url: string, run: RunLength): Promise<Fixtures> {
  return withClient(url, async (db) => {
    const apiKey = generateKey('bench');
    await insertKey(db, apiKey, { name: 'bench', role: 'admin' });
    const ids = await db.query<{ id: string }>(`SELECT id FROM loans ORDER BY random() LIMIT ${SAMPLE_IDS}`);
    // "1.00" is a valid amount only in currencies with two minor digits.
    const currencies = await db.query<{ currency: string }>('SELECT DISTINCT currency FROM loan_stats');
    const floor = repaymentFloorMinor(run);
    const repayable = await db.query<{ id: string }>(
      `SELECT id FROM loans
        WHERE status = 'disbursed' AND currency = ANY($1) AND outstanding_principal_minor >= $2
        ORDER BY random() LIMIT ${REPAYMENT_LOANS}`,
      [
        currencies.rows.map((row) => row.currency.trim()).filter((code) => currencyExponent(code) === 2),
        floor.toString(),
      ],
    );
    if (repayable.rows.length < REPAYMENT_LOANS) {
      throw new Error(
        `only ${repayable.rows.length} disbursed loans in two-digit currencies have ${floor / 100n}.00 or more ` +
          `outstanding; the repayment endpoint needs ${REPAYMENT_LOANS} (use a larger size or fewer runs)`,
      );
    }
    const count = await db.query<{ n: string }>('SELECT count(*) AS n FROM loans');
    const offset = Math.floor(Number(count.rows[0]!.n) * DEEP_PAGE_AT);
    const deep = await db.query<{ created_at: Date; id: string }>(
      'SELECT created_at, id FROM loans ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1',
      [offset],
    );
    const position = { createdAt: deep.rows[0]!.created_at.toISOString(), id: deep.rows[0]!.id };
    // The evidence that a deep page is an index range scan, not a scan of everything before it.
    const plan = await db.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
       SELECT * FROM loans WHERE (created_at, id) < ($1::timestamptz, $2::uuid)
        ORDER BY created_at DESC, id DESC LIMIT 51`,
      [position.createdAt, position.id],
    );
    return {
      apiKey,
      ids: ids.rows.map((row) => row.id),
      repaymentIds: repayable.rows.map((row) => row.id),
      deepCursor: encodeCursor(position),
      deepPlan: plan.rows.map((row) => row['QUERY PLAN']),
    };
  });
}

export interface Endpoint {
  name: string;
  method: 'GET' | 'POST';
  /** The paths of one run's requests, sent in turn (one path when every request is the same). */
  paths: () => string[];
  body?: string;
  /** Every request carries an Idempotency-Key of its own. */
  uniqueKeys?: boolean;
  /** Readies the run's database for one warm-up plus measured run of `seconds`. */
  prepare?: (seconds: number) => Promise<void>;
  /**
   * Told after each run how many of `paths` it may have used; says why the run is not valid although the
   * server answered it (a fixture ran out), if it is not.
   */
  used?: (requests: number) => string | undefined;
}

/**
 * Pending loans for the approve endpoint, each approved once: inserted (with their `created` events, as
 * the service writes them) into the run's copy before each run, and handed out in order.
 */
function pendingLoans(url: string): Pick<Endpoint, 'paths' | 'prepare' | 'used'> {
  const ids: string[] = [];
  let taken = 0;
  let fastest = APPROVE_RATE_GUESS;
  let last: { from: number; seconds: number } | undefined;
  return {
    async prepare(seconds) {
      if (last) fastest = Math.max(fastest, (taken - last.from) / last.seconds);
      const wanted = Math.ceil(fastest * seconds * 2);
      const missing = wanted - (ids.length - taken);
      if (missing > 0) {
        const inserted = await withClient(url, (db) =>
          db.query<{ id: string }>(
            `WITH loan AS (
               INSERT INTO loans (borrower_id, currency, amount_minor, term_months, interest_rate_apr, created_by)
               SELECT 'bench_approve_' || lpad(g::text, 7, '0'), 'INR', 100000, 12, 12.00, 'bench'
                 FROM generate_series($1::int, $2::int) g
               RETURNING id, borrower_id, currency, term_months, interest_rate_apr, created_at
             ), event AS (
               INSERT INTO loan_events (loan_id, type, from_status, to_status, actor, request_id, at, data)
               SELECT id, 'created', NULL, 'pending', 'bench', 'bench', created_at,
                      jsonb_build_object('borrower_id', borrower_id, 'amount', '1000.00', 'currency', currency,
                                         'term_months', term_months, 'interest_rate_apr', interest_rate_apr::text)
                 FROM loan
             )
             SELECT id FROM loan`,
            [ids.length + 1, ids.length + missing],
          ),
        );
        ids.push(...inserted.rows.map((row) => row.id));
        log(`  ${missing} pending loans to approve added (${ids.length - taken} unused)`);
      }
      last = { from: taken, seconds };
    },
    // Past the last one the list starts again with approved loans: 409s, so the run fails, and used() says why.
    paths: () => ids.slice(taken).map((id) => `/api/loans/${id}/approve`),
    used(requests) {
      const available = ids.length - taken;
      taken = Math.min(ids.length, taken + requests);
      return requests > available
        ? `ran out of pending loans after ${ids.length} (raise APPROVE_RATE_GUESS)`
        : undefined;
    },
  };
}

export function endpoints(fixture: Fixtures, url: string): Endpoint[] {
  const byId = fixture.ids.map((id) => `/api/loans/${id}`);
  const repayments = fixture.repaymentIds.map((id) => `/api/loans/${id}/repayments`);
  return [
    { name: 'GET /health', method: 'GET', paths: () => ['/health'] },
    { name: 'GET /api/loans/{id}', method: 'GET', paths: () => byId },
    { name: 'GET /api/loans (first page)', method: 'GET', paths: () => ['/api/loans'] },
    {
      name: `GET /api/loans (cursor at ${DEEP_PAGE_AT * 100}%)`,
      method: 'GET',
      paths: () => [`/api/loans?cursor=${fixture.deepCursor}`],
    },
    { name: 'GET /api/stats', method: 'GET', paths: () => ['/api/stats'] },
    // The writes come after the reads, which so see exactly the seeded loans; they change the run's copy only.
    { name: 'POST /api/loans/{id}/approve', method: 'POST', ...pendingLoans(url) },
    {
      name: 'POST /api/loans/{id}/repayments',
      method: 'POST',
      paths: () => repayments,
      body: REPAYMENT_BODY,
      uniqueKeys: true,
    },
    // Last: it grows the table.
    { name: 'POST /api/loans', method: 'POST', paths: () => ['/api/loans'], body: POST_BODY },
  ];
}
