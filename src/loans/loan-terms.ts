// The rules of a loan's terms that a schema cannot express: currency-dependent digits and bounds.
import type { Config } from '../config.ts';
import { checkCurrency } from '../money/currencies.ts';
import { formatMoney, formatScaled, parseDecimal, parseMoney } from '../money/money.ts';
import { type FieldError, validationError } from '../platform/errors.ts';
import { MAX_APR_BASIS_POINTS } from './schedule.ts';

export interface TermsInput {
  amount: string | number;
  currency: string;
  term_months: number;
  interest_rate_apr: string | number;
}

export interface LoanTerms {
  currency: string;
  amountMinor: bigint;
  termMonths: number;
  /** "18.50" */
  interestRateApr: string;
  aprBasisPoints: bigint;
}

/** Where an error about `field` points: a body member or a query parameter. */
export type Locate = (field: string, message: string) => FieldError;
export const inBody: Locate = (field, message) => ({ pointer: `/${field}`, message });
export const inQuery: Locate = (field, message) => ({ parameter: field, message });

/** The largest amount for `currency`, in its minor units. */
export function maxAmountMinor(config: Config, currency: string): bigint {
  const major = config.loanMaxAmount.byCurrency[currency] ?? config.loanMaxAmount.default;
  const parsed = parseMoney(major, currency);
  if (!parsed.ok) throw new Error(`LOAN_MAX_AMOUNT is not valid in ${currency}`);
  return parsed.value;
}

/** A positive amount of `currency` in minor units, or the reason it is not one. */
export function positiveAmount(
  value: string | number,
  currency: string,
): { minor: bigint } | { reason: string } {
  const parsed = parseMoney(value, currency);
  if (!parsed.ok) return { reason: parsed.reason };
  if (parsed.value <= 0n) return { reason: 'must be greater than 0' };
  return { minor: parsed.value };
}

export function validateTerms(config: Config, input: TermsInput, locate: Locate): LoanTerms {
  const errors: FieldError[] = [];
  const checked = checkCurrency(input.currency);
  if ('reason' in checked) errors.push(locate('currency', checked.reason));
  const currency = 'currency' in checked ? checked.currency : undefined;

  let amountMinor = 0n;
  if (currency) {
    const amount = positiveAmount(input.amount, currency);
    const max = maxAmountMinor(config, currency);
    if ('reason' in amount) errors.push(locate('amount', amount.reason));
    else if (amount.minor > max)
      errors.push(locate('amount', `must not exceed ${formatMoney(max, currency)} ${currency}`));
    else amountMinor = amount.minor;
  }

  const apr = parseDecimal(input.interest_rate_apr, 2);
  if (!apr.ok) errors.push(locate('interest_rate_apr', apr.reason));
  else if (apr.value > MAX_APR_BASIS_POINTS)
    errors.push(locate('interest_rate_apr', 'must be less than or equal to 100'));

  if (errors.length > 0 || !currency || !apr.ok) throw validationError(errors);
  return {
    currency,
    amountMinor,
    termMonths: input.term_months,
    interestRateApr: formatScaled(apr.value, 2),
    aprBasisPoints: apr.value,
  };
}
