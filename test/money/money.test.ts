import { describe, expect, it } from 'vitest';
import { currencyExponent, normalizeCurrency } from '../../src/money/currencies.ts';
import { divideHalfEven, formatMoney, parseDecimal, parseMoney } from '../../src/money/money.ts';

describe('parseMoney', () => {
  it.each([
    ['15000.00', 'INR', 1_500_000n],
    ['15000', 'INR', 1_500_000n],
    ['15000.5', 'INR', 1_500_050n],
    [15000.5, 'INR', 1_500_050n],
    ['0.01', 'INR', 1n],
    ['8400', 'VND', 8_400n],
    [8400, 'VND', 8_400n],
    ['150.000', 'KWD', 150_000n],
    ['150.1', 'KWD', 150_100n],
    ['0.001', 'KWD', 1n],
    ['12.3456', 'CLF', 123_456n],
    ['0', 'INR', 0n],
    ['000123.40', 'INR', 12_340n],
    ['9007199254740993', 'VND', 9_007_199_254_740_993n],
  ])('parses %j in %s as %s minor units', (input, currency, expected) => {
    expect(parseMoney(input, currency)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['10.001', 'INR', 'must have at most 2 decimal places for INR'],
    ['10.5', 'VND', 'must be a whole number: VND has no minor unit'],
    ['1.0001', 'KWD', 'must have at most 3 decimal places for KWD'],
    ['-1', 'INR', 'must be a decimal number such as "1500.00" (no sign, exponent or spaces)'],
    ['+1', 'INR', 'must be a decimal number such as "1500.00" (no sign, exponent or spaces)'],
    ['1e3', 'INR', 'must be a decimal number such as "1500.00" (no sign, exponent or spaces)'],
    [' 1', 'INR', 'must be a decimal number such as "1500.00" (no sign, exponent or spaces)'],
    ['1.', 'INR', 'must be a decimal number such as "1500.00" (no sign, exponent or spaces)'],
    ['.5', 'INR', 'must be a decimal number such as "1500.00" (no sign, exponent or spaces)'],
    ['', 'INR', 'must be a decimal number such as "1500.00" (no sign, exponent or spaces)'],
    ['1,000.00', 'INR', 'must be a decimal number such as "1500.00" (no sign, exponent or spaces)'],
    [-5, 'INR', 'must be a decimal number such as "1500.00" (no sign, exponent or spaces)'],
  ])('rejects %j in %s: %s', (input, currency, reason) => {
    expect(parseMoney(input, currency)).toEqual({ ok: false, reason });
  });
});

describe('parseDecimal', () => {
  it('scales rates to basis points', () => {
    expect(parseDecimal('18.5', 2)).toEqual({ ok: true, value: 1850n });
    expect(parseDecimal(100, 2)).toEqual({ ok: true, value: 10_000n });
    expect(parseDecimal('18.505', 2)).toEqual({ ok: false, reason: 'must have at most 2 decimal places' });
  });
});

describe('formatMoney', () => {
  it.each([
    [1_500_000n, 'INR', '15000.00'],
    [1n, 'INR', '0.01'],
    [0n, 'INR', '0.00'],
    [8_400n, 'VND', '8400'],
    [0n, 'VND', '0'],
    [150_000n, 'KWD', '150.000'],
    [5n, 'KWD', '0.005'],
    [123_456n, 'CLF', '12.3456'],
    [-1_234n, 'INR', '-12.34'],
    [123_456_789_012_345_678_901n, 'INR', '1234567890123456789.01'],
  ])('formats %s %s as %s', (minor, currency, expected) => {
    expect(formatMoney(minor, currency)).toBe(expected);
  });

  it('round-trips with parseMoney for every exponent', () => {
    for (const [currency, text] of [
      ['JPY', '15000'],
      ['INR', '15000.07'],
      ['KWD', '15000.007'],
    ] as const) {
      const parsed = parseMoney(text, currency);
      expect(parsed.ok && formatMoney(parsed.value, currency)).toBe(text);
    }
  });
});

describe('divideHalfEven', () => {
  it.each([
    [5n, 2n, 2n], // 2.5 → 2
    [7n, 2n, 4n], // 3.5 → 4
    [10n, 4n, 2n], // 2.5 → 2
    [11n, 4n, 3n], // 2.75 → 3
    [9n, 4n, 2n], // 2.25 → 2
    [-5n, 2n, -2n], // -2.5 → -2
    [-7n, 2n, -4n], // -3.5 → -4
    [0n, 7n, 0n],
    [6n, 3n, 2n],
  ])('%s / %s = %s', (numerator, denominator, expected) => {
    expect(divideHalfEven(numerator, denominator)).toBe(expected);
  });

  it('refuses a non-positive denominator', () => {
    expect(() => divideHalfEven(1n, 0n)).toThrow(RangeError);
  });
});

describe('currencies', () => {
  it('knows the exponents of the ISO 4217 table', () => {
    expect([
      currencyExponent('INR'),
      currencyExponent('VND'),
      currencyExponent('KWD'),
      currencyExponent('CLF'),
    ]).toEqual([2, 0, 3, 4]);
  });

  it.each([
    ['inr', 'INR'],
    ['Kes', 'KES'],
    ['XAU', undefined],
    ['XXX', undefined],
    ['XDR', undefined],
    ['ABC', undefined],
    ['123', undefined],
    ['toString', undefined],
  ])('normalizes %j to %s', (input, expected) => {
    expect(normalizeCurrency(input)).toBe(expected);
  });
});
