import type { Pool } from '../platform/database.ts';

/** The original five loans of the Flask service, with their ids, amounts and states. */
export const ORIGINAL_LOANS = [
  ['00000000-0000-0000-0000-000000000001', 'usr_kenya_001', 'KES', 1_250_000n, 6, '28.00', 'pending'],
  ['00000000-0000-0000-0000-000000000002', 'usr_india_002', 'INR', 5_000_000n, 12, '24.00', 'approved'],
  ['00000000-0000-0000-0000-000000000003', 'usr_nigeria_003', 'NGN', 3_200_000n, 9, '30.00', 'rejected'],
  ['00000000-0000-0000-0000-000000000004', 'usr_vietnam_004', 'VND', 8_400n, 4, '26.00', 'disbursed'],
  ['00000000-0000-0000-0000-000000000005', 'usr_philippines_005', 'PHP', 2_100_000n, 6, '22.00', 'repaid'],
] as const;

/**
 * Inserts the original loans that are missing; returns how many it inserted (0 on a second run).
 * Loan 1 is the oldest and loan 5 the newest, one minute apart, so the list shows 5, 4, 3, 2, 1.
 */
export async function seedOriginalLoans(pool: Pool): Promise<number> {
  const result = await pool.query(
    `INSERT INTO loans (id, borrower_id, currency, amount_minor, term_months, interest_rate_apr, status, created_at, updated_at)
     SELECT s.id::uuid, s.borrower_id, s.currency, s.amount_minor::bigint, s.term_months::int, s.apr::numeric, s.status,
            date_trunc('milliseconds', now()) - (5 - s.n) * interval '1 minute',
            date_trunc('milliseconds', now()) - (5 - s.n) * interval '1 minute'
       FROM jsonb_to_recordset($1::jsonb)
            AS s(n int, id text, borrower_id text, currency text, amount_minor text, term_months int, apr text, status text)
     ON CONFLICT (id) DO NOTHING`,
    [
      JSON.stringify(
        ORIGINAL_LOANS.map(([id, borrower_id, currency, amount, term_months, apr, status], index) => ({
          n: index + 1,
          id,
          borrower_id,
          currency,
          amount_minor: amount.toString(),
          term_months,
          apr,
          status,
        })),
      ),
    ],
  );
  return result.rowCount ?? 0;
}
