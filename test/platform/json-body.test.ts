import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/platform/errors.ts';
import { parseJsonBody } from '../../src/platform/json-body.ts';

describe('parseJsonBody', () => {
  it.each([
    ['{"a":15000.5}', 15000.5],
    ['{"a":15000.50}', '15000.50'],
    ['{"a":100.100}', '100.100'],
    ['{"a":12.0}', '12.0'],
    ['{"a":12}', 12],
    ['{"a":0.1}', 0.1],
    ['{"a":1e3}', '1e3'],
    ['{"a":12345678901234567890}', '12345678901234567890'],
    ['{"a":1.000000000000000001}', '1.000000000000000001'],
    ['{"a":-0}', '-0'],
  ])('keeps numbers exact: %s → %j', (text, expected) => {
    expect(parseJsonBody(text)).toEqual({ a: expected });
  });

  it('stores __proto__ as a plain member instead of changing the prototype', () => {
    const parsed = parseJsonBody('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(Object.keys(parsed)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each(['{bad', '', '{"a":1}}', '{"a":1,"a":2}'])('rejects %j as invalid-json', (text) => {
    expect(() => parseJsonBody(text)).toThrow(AppError);
    try {
      parseJsonBody(text);
    } catch (error) {
      expect((error as AppError).type).toBe('invalid-json');
      expect((error as AppError).status).toBe(400);
    }
  });

  it('says a body nested past the stack is nested too deeply, not what the engine says', () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    expect(() => parseJsonBody(deep)).toThrow(
      expect.objectContaining({ detail: 'The request body is not valid JSON: nested too deeply' }),
    );
  });
});
