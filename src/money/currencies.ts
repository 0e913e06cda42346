import { CURRENCY_EXPONENTS } from './currency-table.ts';

/** Upper-cases `code` and returns it when it is an active ISO 4217 money currency. */
export function normalizeCurrency(code: string): string | undefined {
  const upper = code.toUpperCase();
  return Object.hasOwn(CURRENCY_EXPONENTS, upper) ? upper : undefined;
}

/** Number of fraction digits of a known currency (INR 2, VND 0, KWD 3). */
export function currencyExponent(currency: string): number {
  const exponent = CURRENCY_EXPONENTS[currency];
  if (exponent === undefined) throw new Error(`unknown currency ${currency}`);
  return exponent;
}

/** The currency `code` names, upper-cased, or why it names none (the one wording of that message). */
export function checkCurrency(code: string): { currency: string } | { reason: string } {
  const currency = normalizeCurrency(code);
  return currency ? { currency } : { reason: `must be an active ISO 4217 currency code (got "${code}")` };
}
