import { describe, expect, it } from 'vitest';
import { inBody, inQuery, positiveAmount, validateTerms } from '../../src/loans/loan-terms.ts';
import { AppError } from '../../src/platform/errors.ts';
import { testConfig } from '../helpers/app.ts';

const config = testConfig({ LOAN_MAX_AMOUNT_BY_CURRENCY: 'VND=1000000000' });
const terms = { amount: '15000.00', currency: 'inr', term_months: 12, interest_rate_apr: 18.5 };

function refusal(input: typeof terms | Record<string, unknown>, locate = inBody): AppError {
  try {
    validateTerms(config, input as typeof terms, locate);
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('validateTerms', () => {
  it('normalizes the currency and APR and converts the amount to minor units', () => {
    expect(validateTerms(config, terms, inBody)).toEqual({
      currency: 'INR',
      amountMinor: 1_500_000n,
      termMonths: 12,
      interestRateApr: '18.50',
      aprBasisPoints: 1850n,
    });
  });

  it.each([
    [{ amount: '0.00' }, '/amount', 'must be greater than 0'],
    [{ amount: '50000.01' }, '/amount', 'must not exceed 50000.00 INR'],
    [{ amount: '1.001' }, '/amount', 'must have at most 2 decimal places for INR'],
    [{ amount: '10.5', currency: 'JPY' }, '/amount', 'must be a whole number: JPY has no minor unit'],
    [{ currency: 'XAU' }, '/currency', 'must be an active ISO 4217 currency code (got "XAU")'],
    [{ interest_rate_apr: '100.01' }, '/interest_rate_apr', 'must be less than or equal to 100'],
    [{ interest_rate_apr: '1.234' }, '/interest_rate_apr', 'must have at most 2 decimal places'],
  ])('refuses %j at %s: %s', (change, pointer, message) => {
    const error = refusal({ ...terms, ...change });
    expect(error.status).toBe(400);
    expect(error.errors).toEqual([{ pointer, message }]);
  });

  it('applies the per-currency maximum from config', () => {
    expect(
      validateTerms(config, { ...terms, currency: 'VND', amount: '1000000000' }, inBody).amountMinor,
    ).toBe(1_000_000_000n);
    expect(refusal({ ...terms, currency: 'VND', amount: '1000000001' }).errors).toEqual([
      { pointer: '/amount', message: 'must not exceed 1000000000 VND' },
    ]);
  });

  it('reports every refused field at once, as query parameters when asked', () => {
    expect(refusal({ ...terms, currency: 'ABC', interest_rate_apr: '101' }, inQuery).errors).toEqual([
      { parameter: 'currency', message: 'must be an active ISO 4217 currency code (got "ABC")' },
      { parameter: 'interest_rate_apr', message: 'must be less than or equal to 100' },
    ]);
  });
});

describe('positiveAmount', () => {
  it.each([
    ['1', 'KWD', { minor: 1000n }],
    ['0.001', 'KWD', { minor: 1n }],
    ['0', 'KWD', { reason: 'must be greater than 0' }],
    ['-1', 'INR', { reason: 'must be a decimal number such as "1500.00" (no sign, exponent or spaces)' }],
  ])('%s %s', (value, currency, expected) => {
    expect(positiveAmount(value, currency)).toEqual(expected);
  });
});
