// Schema pieces shared by every feature.
import { type TSchema, Type } from '@sinclair/typebox';
import { DECIMAL_PATTERN } from '../money/money.ts';

/** A string enum that validates with one clear error (a union of literals would report one per member). */
export function StringEnum<const T extends readonly string[]>(values: T, options: object = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

export const Uuid = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  errorMessage: 'must be a UUID',
  examples: ['00000000-0000-0000-0000-000000000002'],
});

export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

/** A decimal amount in input: a string or a JSON number, never with sign, exponent or spaces. */
export function DecimalInput(errorMessage: string, example: string) {
  return Type.Unsafe<string | number>({
    type: ['string', 'number'],
    pattern: DECIMAL_PATTERN,
    errorMessage,
    examples: [example],
  });
}

export const MoneyString = Type.String({
  pattern: '^-?[0-9]+(\\.[0-9]+)?$',
  description: "Decimal string in major units with the currency's minor-unit digits",
  examples: ['15000.00'],
});

export const Timestamp = Type.String({ format: 'date-time', examples: ['2026-11-21T11:29:57.123Z'] });

export const CurrencyInput = Type.String({
  pattern: '^[A-Za-z]{3}$',
  errorMessage: 'must be an active ISO 4217 currency code such as "INR"',
  examples: ['INR'],
});

export const Problem = Type.Object(
  {
    type: Type.String({ format: 'uri' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
    instance: Type.String(),
    request_id: Type.String(),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          pointer: Type.Optional(Type.String()),
          parameter: Type.Optional(Type.String()),
          message: Type.String(),
        }),
      ),
    ),
  },
  {
    $id: 'Problem',
    title: 'Problem',
    additionalProperties: true,
    description: 'RFC 9457 problem details (application/problem+json)',
  },
);

/** Every route can fail with these: an unexpected error, or the database being unavailable. */
const SERVER_ERROR_STATUSES = [500, 503];

/**
 * OpenAPI documentation of the error responses a route can give (plus 500 and 503), as
 * `application/problem+json` referencing the shared `Problem` schema that platform/openapi.ts registers.
 * The error handler sends problems already serialized, so these schemas document and never filter.
 */
export function problemResponses(...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries(
    [...new Set([...statuses, ...SERVER_ERROR_STATUSES])].map((status) => [
      status,
      Type.Unsafe({
        description: `Problem (${status})`,
        content: { 'application/problem+json': { schema: Type.Ref('Problem') } },
      }),
    ]),
  );
}
