import type { Static } from '@sinclair/typebox';
import { LOAN_STATUSES, type LoanStatus } from '../loans/loan-status.ts';
import { normalizeCurrency } from '../money/currencies.ts';
import { divideHalfEven, formatMoney } from '../money/money.ts';
import type { Pool } from '../platform/database.ts';
import { validationError } from '../platform/errors.ts';
import { loadStatsRows } from './stats.repository.ts';
import type { Stats } from './stats.schemas.ts';

interface CurrencyTotals {
  loans: bigint;
  amountMinor: bigint;
}

export function createStatsService(deps: { pool: Pool }) {
  return {
    async get(currencyFilter?: string): Promise<Static<typeof Stats>> {
      const currency = currencyFilter === undefined ? undefined : normalizeCurrency(currencyFilter);
      if (currencyFilter !== undefined && !currency) {
        throw validationError([
          {
            parameter: 'currency',
            message: `must be an active ISO 4217 currency code (got "${currencyFilter}")`,
          },
        ]);
      }
      const rows = await loadStatsRows(deps.pool, currency);

      const byStatus = Object.fromEntries(LOAN_STATUSES.map((status) => [status, 0])) as Record<
        LoanStatus,
        number
      >;
      const totals = new Map<string, CurrencyTotals>();
      // A filtered currency is reported even when it has no loans yet.
      if (currency) totals.set(currency, { loans: 0n, amountMinor: 0n });
      for (const row of rows) {
        byStatus[row.status] += Number(row.loans);
        const current = totals.get(row.currency) ?? { loans: 0n, amountMinor: 0n };
        totals.set(row.currency, {
          loans: current.loans + BigInt(row.loans),
          amountMinor: current.amountMinor + BigInt(row.amount_minor),
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
          outstanding_principal: formatMoney(0n, code),
          par30_ratio: '0.0000',
        };
      }

      return {
        total_loans: Object.values(byStatus).reduce((sum, count) => sum + count, 0),
        by_status: byStatus,
        by_currency: byCurrency,
        amounts,
        as_of: new Date().toISOString(),
      };
    },
  };
}

export type StatsService = ReturnType<typeof createStatsService>;
