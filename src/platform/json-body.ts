import { parse } from 'lossless-json';
import { AppError } from './errors.ts';

/**
 * A JSON number becomes a JS number only when that loses nothing: its shortest decimal form is the
 * literal the client sent (up to trailing fraction zeros). Otherwise (exponents, more digits than a
 * double holds) it stays the literal string, so money is never rounded by parsing; the schemas then
 * reject it as a non-decimal amount or a non-integer count.
 */
function parseNumberLiteral(literal: string): number | string {
  const value = Number(literal);
  const canonical = literal.includes('.') ? literal.replace(/\.?0+$/, '') : literal;
  return String(value) === canonical ? value : literal;
}

export function parseJsonBody(text: string): unknown {
  try {
    return parse(text, null, parseNumberLiteral);
  } catch (error) {
    throw new AppError('invalid-json', {
      detail: `The request body is not valid JSON: ${error instanceof Error ? error.message : 'parse error'}`,
    });
  }
}
