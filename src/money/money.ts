// Amounts are integers of the currency's minor unit (bigint), never floats.
import { currencyExponent } from './currencies.ts';

/** A non-negative decimal as clients write it: digits, optionally a point and more digits. */
export const DECIMAL_PATTERN = '^([0-9]+)(?:\\.([0-9]+))?$';
const DECIMAL = new RegExp(DECIMAL_PATTERN);

export type ParseResult = { ok: true; value: bigint } | { ok: false; reason: string };

const NOT_DECIMAL = 'must be a decimal number such as "1500.00" (no sign, exponent or spaces)';

/**
 * Parses a non-negative decimal with at most `digits` fraction digits into an integer scaled by 10^digits.
 * A JSON number arrives here only when its literal survived parsing unchanged (see platform/json-body.ts),
 * so String(value) is the client's own literal.
 */
export function parseDecimal(value: string | number, digits: number, tooPrecise?: string): ParseResult {
  const text = typeof value === 'number' ? String(value) : value;
  const match = DECIMAL.exec(text);
  if (!match) return { ok: false, reason: NOT_DECIMAL };
  const fraction = match[2] ?? '';
  if (fraction.length > digits) {
    const reason = digits === 0 ? 'must be a whole number' : `must have at most ${digits} decimal places`;
    return { ok: false, reason: tooPrecise ?? reason };
  }
  return { ok: true, value: BigInt(match[1]! + fraction.padEnd(digits, '0')) };
}

/** Parses a major-unit amount into minor units of `currency`. */
export function parseMoney(value: string | number, currency: string): ParseResult {
  const exponent = currencyExponent(currency);
  const tooPrecise =
    exponent === 0
      ? `must be a whole number: ${currency} has no minor unit`
      : `must have at most ${exponent} decimal places for ${currency}`;
  return parseDecimal(value, exponent, tooPrecise);
}

/** Formats minor units as a major-unit decimal string with exactly the currency's digits. */
export function formatMoney(minor: bigint, currency: string): string {
  return formatScaled(minor, currencyExponent(currency));
}

/** Formats an integer scaled by 10^digits as a fixed-point decimal string. */
export function formatScaled(value: bigint, digits: number): string {
  const negative = value < 0n;
  const digitsText = (negative ? -value : value).toString().padStart(digits + 1, '0');
  const whole = digitsText.slice(0, digitsText.length - digits);
  const fraction = digits > 0 ? `.${digitsText.slice(-digits)}` : '';
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/** numerator / denominator rounded half to even (banker's rounding); denominator > 0. */
export function divideHalfEven(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  let quotient = numerator / denominator;
  let remainder = numerator % denominator;
  if (remainder < 0n) {
    quotient -= 1n;
    remainder += denominator;
  }
  const twice = remainder * 2n;
  if (twice > denominator || (twice === denominator && quotient % 2n !== 0n)) quotient += 1n;
  return quotient;
}
