import type { Static } from '@sinclair/typebox';
import { LOAN_STATUSES, type LoanStatus } from '../loans/loan-status.ts';
import { checkCurrency } from '../money/currencies.ts';
import { divideHalfEven, formatMoney, formatScaled } from '../money/money.ts';
import { addDays, calendarDateOf } from '../platform/calendar.ts';
import type { Pool } from '../platform/database.ts';
import { validationError } from '../platform/errors.ts';
import { loadStats } from './stats.repository.ts';
import type { Stats } from './stats.schemas.ts';

interface CurrencyTotals {
  loans: bigint;
  amountMinor: bigint;
  outstandingMinor: bigint;
}

/** A loan is at risk once an installment is more than this many days overdue (PAR30). */
const PAR_DAYS = 30;
const RATIO_DIGITS = 4;

/** part / whole with 4 decimals, half-even; "0.0000" when there is no whole. */
function ratio(part: bigint, whole: bigint): string {
  return formatScaled(
    whole > 0n ? divideHalfEven(part * 10n ** BigInt(RATIO_DIGITS), whole) : 0n,
    RATIO_DIGITS,
  );
}

export function createStatsService(deps: { pool: Pool; clock: () => Date }) {
  return {
    async get(currencyFilter?: string): Promise<Static<typeof Stats>> {
      const checked = currencyFilter === undefined ? undefined : checkCurrency(currencyFilter);
      if (checked && 'reason' in checked)
        throw validationError([{ parameter: 'currency', message: checked.reason }]);
      const currency = checked && 'currency' in checked ? checked.currency : undefined;
      const now = deps.clock();
      // More than 30 days past due: the oldest unpaid installment fell due before today − 30.
      const cutoff = addDays(calendarDateOf(now), -PAR_DAYS);
      const { rows, outstandingDueSince } = await loadStats(deps.pool, cutoff, currency);

      const byStatus = Object.fromEntries(LOAN_STATUSES.map((status) => [status, 0])) as Record<
        LoanStatus,
        number
      >;
      const totals = new Map<string, CurrencyTotals>();
      // A filtered currency is reported even when it has no loans yet.
      if (currency) totals.set(currency, { loans: 0n, amountMinor: 0n, outstandingMinor: 0n });
      for (const row of rows) {
        byStatus[row.status] += Number(row.loans);
        const current = totals.get(row.currency) ?? { loans: 0n, amountMinor: 0n, outstandingMinor: 0n };
        totals.set(row.currency, {
          loans: current.loans + BigInt(row.loans),
          amountMinor: current.amountMinor + BigInt(row.amount_minor),
          outstandingMinor: current.outstandingMinor + BigInt(row.outstanding_minor),
        });
      }

      const byCurrency: Record<string, number> = {};
      const amounts: Static<typeof Stats>['amounts'] = {};
      for (const [code, total] of totals) {
        byCurrency[code] = Number(total.loans);
        amounts[code] = {
          loans: Number(total.loans),
          total_amount: formatMoney(total.amountMinor, code),
          avg_amount: formatMoney(
            total.loans > 0n ? divideHalfEven(total.amountMinor, total.loans) : 0n,
            code,
          ),
          outstanding_principal: formatMoney(total.outstandingMinor, code),
          // Only active loans carry outstanding principal, so what is not current is at risk.
          par30_ratio: ratio(
            total.outstandingMinor - (outstandingDueSince.get(code) ?? 0n),
            total.outstandingMinor,
          ),
        };
      }

      return {
        total_loans: Object.values(byStatus).reduce((sum, count) => sum + count, 0),
        by_status: byStatus,
        by_currency: byCurrency,
        amounts,
        as_of: now.toISOString(),
      };
    },
  };
}

export type StatsService = ReturnType<typeof createStatsService>;
