import type { Static } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { normalizeCurrency } from '../money/currencies.ts';
import { formatMoney, formatScaled, parseDecimal, parseMoney } from '../money/money.ts';
import type { Pool } from '../platform/database.ts';
import { type FieldError, notFound, validationError } from '../platform/errors.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { findLoan, insertLoan, type LoanRow, listLoans, type NewLoan } from './loans.repository.ts';
import type { CreateLoanBody, ListLoansQuery, Loan } from './loans.schemas.ts';

const MAX_APR_BASIS_POINTS = 10_000n; // 100.00 %

export function toLoan(row: LoanRow): Static<typeof Loan> {
  return {
    id: row.id,
    borrower_id: row.borrower_id,
    amount: formatMoney(BigInt(row.amount_minor), row.currency),
    currency: row.currency,
    term_months: row.term_months,
    interest_rate_apr: row.interest_rate_apr,
    status: row.status,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** Strong validator that changes with every update of the loan row. */
export function etagOf(row: LoanRow): string {
  return `"${row.id.slice(0, 8)}-v${row.version}"`;
}

/** The largest amount for `currency`, in its minor units. */
function maxAmountMinor(config: Config, currency: string): bigint {
  const major = config.loanMaxAmount.byCurrency[currency] ?? config.loanMaxAmount.default;
  const parsed = parseMoney(major, currency);
  if (!parsed.ok) throw new Error(`LOAN_MAX_AMOUNT is not valid in ${currency}`);
  return parsed.value;
}

/** The rules a schema cannot express: currency-dependent digits and bounds. */
export function validateNewLoan(config: Config, body: Static<typeof CreateLoanBody>): NewLoan {
  const errors: FieldError[] = [];
  const currency = normalizeCurrency(body.currency);
  if (!currency) {
    errors.push({
      pointer: '/currency',
      message: `must be an active ISO 4217 currency code (got "${body.currency}")`,
    });
  }

  let amountMinor = 0n;
  if (currency) {
    const amount = parseMoney(body.amount, currency);
    if (!amount.ok) errors.push({ pointer: '/amount', message: amount.reason });
    else if (amount.value <= 0n) errors.push({ pointer: '/amount', message: 'must be greater than 0' });
    else {
      const max = maxAmountMinor(config, currency);
      if (amount.value > max) {
        errors.push({
          pointer: '/amount',
          message: `must not exceed ${formatMoney(max, currency)} ${currency}`,
        });
      }
      amountMinor = amount.value;
    }
  }

  const apr = parseDecimal(body.interest_rate_apr, 2);
  if (!apr.ok) errors.push({ pointer: '/interest_rate_apr', message: apr.reason });
  else if (apr.value > MAX_APR_BASIS_POINTS) {
    errors.push({ pointer: '/interest_rate_apr', message: 'must be less than or equal to 100' });
  }

  if (errors.length > 0 || !currency || !apr.ok) throw validationError(errors);
  return {
    borrowerId: body.borrower_id,
    currency,
    amountMinor,
    termMonths: body.term_months,
    interestRateApr: formatScaled(apr.value, 2),
  };
}

export interface LoanPage {
  rows: LoanRow[];
  nextCursor: string | undefined;
}

export function createLoansService(deps: { pool: Pool; config: Config }) {
  const { pool, config } = deps;

  return {
    async create(body: Static<typeof CreateLoanBody>): Promise<LoanRow> {
      return insertLoan(pool, validateNewLoan(config, body));
    },

    async get(id: string): Promise<LoanRow> {
      const row = await findLoan(pool, id.toLowerCase());
      if (!row) throw notFound(`Loan ${id} does not exist`);
      return row;
    },

    async list(query: Static<typeof ListLoansQuery>): Promise<LoanPage> {
      const errors: FieldError[] = [];
      const currency = query.currency === undefined ? undefined : normalizeCurrency(query.currency);
      if (query.currency !== undefined && !currency) {
        errors.push({
          parameter: 'currency',
          message: `must be an active ISO 4217 currency code (got "${query.currency}")`,
        });
      }
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      if (query.cursor !== undefined && !after) {
        errors.push({
          parameter: 'cursor',
          message: 'is not a cursor this API issued; follow the Link header',
        });
      }
      if (errors.length > 0) throw validationError(errors);

      const filters = {
        status: query.status,
        currency,
        borrowerId: query.borrower_id,
        createdAfter: query.created_after,
        createdBefore: query.created_before,
      };
      const rows = await listLoans(pool, filters, after, query.limit + 1);
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      const nextCursor =
        rows.length > query.limit && last
          ? encodeCursor({ createdAt: last.created_at.toISOString(), id: last.id })
          : undefined;
      return { rows: page, nextCursor };
    },
  };
}

export type LoansService = ReturnType<typeof createLoansService>;
