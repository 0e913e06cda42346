import { Type } from '@sinclair/typebox';
import type { FastifySchemaValidationError } from 'fastify';
import { describe, expect, it } from 'vitest';
import { toFieldErrors, validatorCompiler } from '../../src/platform/validation.ts';

type Validate = ((data: unknown) => boolean) & { errors?: FastifySchemaValidationError[] | null };
const compile = (schema: object, httpPart: string) =>
  validatorCompiler({ schema, httpPart, method: 'GET', url: '/' } as never) as Validate;

const Query = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    after: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

describe('query string validation', () => {
  const validate = compile(Query, 'querystring');

  it('converts plain decimal integers and fills defaults', () => {
    const query: Record<string, unknown> = { limit: '200' };
    expect(validate(query)).toBe(true);
    expect(query).toEqual({ limit: 200 });
    const empty: Record<string, unknown> = {};
    expect(validate(empty)).toBe(true);
    expect(empty).toEqual({ limit: 50 });
  });

  it.each(['2e2', '0200', ' 200', '200.0', '+200', '0x10', ''])('refuses limit=%j', (limit) => {
    expect(validate({ limit })).toBe(false);
    expect(toFieldErrors(validate.errors!, 'querystring')).toEqual([
      { parameter: 'limit', message: 'must be an integer' },
    ]);
  });

  it('names unknown parameters', () => {
    expect(validate({ limit: '1', page: '2' })).toBe(false);
    expect(toFieldErrors(validate.errors!, 'querystring')).toEqual([
      { parameter: 'page', message: 'is not a supported query parameter' },
    ]);
  });

  it.each([
    ['2026-11-21T11:29:57Z', true],
    ['2026-11-21T11:29:57.123+05:30', true],
    ['0001-01-01T00:00:00Z', true],
    ['0000-01-01T00:00:00Z', false],
    ['2026-02-30T00:00:00Z', false],
    ['2026-12-31T23:59:60Z', false],
    ['yesterday', false],
  ])('date-time %s valid: %s', (after, valid) => {
    expect(validate({ limit: '1', after })).toBe(valid);
  });
});

describe('body validation', () => {
  const validate = compile(
    Type.Object(
      { count: Type.Integer(), note: Type.Optional(Type.String()) },
      { additionalProperties: false },
    ),
    'body',
  );

  it('never coerces JSON types', () => {
    expect(validate({ count: '1' })).toBe(false);
    expect(toFieldErrors(validate.errors!, 'body')).toEqual([
      { pointer: '/count', message: 'must be an integer' },
    ]);
  });

  it('points at missing and unknown members', () => {
    expect(validate({ amout: 1 })).toBe(false);
    expect(toFieldErrors(validate.errors!, 'body')).toEqual([
      { pointer: '/count', message: 'is required' },
      { pointer: '/amout', message: 'is not a recognised field' },
    ]);
  });
});
