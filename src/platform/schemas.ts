// Schema pieces shared by every feature. Every string, integer and array carries a bound (maxLength,
// minimum/maximum, maxItems): on requests it is what the service enforces, on responses what it can send.
import { type TSchema, Type } from '@sinclair/typebox';
import { DECIMAL_PATTERN } from '../money/money.ts';
import { BODY_LIMIT_BYTES } from './http-errors.ts';
import { ERROR_MESSAGE } from './validation.ts';

/** A string enum that validates with one clear error (a union of literals would report one per member). */
export function StringEnum<const T extends readonly string[]>(values: T, options: object = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/** The largest integer a JSON number carries exactly: counts are bounded by it. */
export const MAX_COUNT = Number.MAX_SAFE_INTEGER;
export const Count = (description?: string) =>
  Type.Integer({ minimum: 0, maximum: MAX_COUNT, ...(description ? { description } : {}) });

export const Uuid = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  maxLength: 36,
  [ERROR_MESSAGE]: 'must be a UUID',
  examples: ['00000000-0000-0000-0000-000000000002'],
});

export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

/**
 * Longest decimal accepted in input. An amount is stored as a 64-bit integer of minor units (at most 19
 * digits, 4 of them fractional), so 32 characters leave room for every valid amount and a few leading zeros.
 */
export const MAX_DECIMAL_INPUT_LENGTH = 32;

/** A decimal amount in input: a string or a JSON number, never with sign, exponent or spaces. */
export function DecimalInput(message: string, example: string) {
  return Type.Unsafe<string | number>({
    type: ['string', 'number'],
    pattern: DECIMAL_PATTERN,
    maxLength: MAX_DECIMAL_INPUT_LENGTH,
    [ERROR_MESSAGE]: message,
    examples: [example],
  });
}

/**
 * Money in responses. A loan's amounts fit 64-bit minor units (≤ 25 characters with sign and point);
 * portfolio totals and the schedules of very large quotes are sums that can be longer, hence 48.
 */
export const MoneyString = Type.String({
  pattern: '^-?[0-9]+(\\.[0-9]+)?$',
  maxLength: 48,
  description: "Decimal string in major units with the currency's minor-unit digits",
  examples: ['15000.00'],
});

/** Timestamps the service writes: RFC 3339 UTC with milliseconds, 24 characters. */
export const Timestamp = Type.String({
  format: 'date-time',
  maxLength: 30,
  examples: ['2026-11-21T11:29:57.123Z'],
});

/** A calendar date as YYYY-MM-DD. */
export const DateString = (description?: string) =>
  Type.String({ format: 'date', maxLength: 10, ...(description ? { description } : {}) });

export const CurrencyInput = Type.String({
  pattern: '^[A-Za-z]{3}$',
  maxLength: 3,
  [ERROR_MESSAGE]: 'must be an active ISO 4217 currency code such as "INR"',
  examples: ['INR'],
});

/** A currency code as the service writes it: upper case. */
export const CurrencyCode = Type.String({ pattern: '^[A-Z]{3}$', maxLength: 3, examples: ['INR'] });

/** Who acted: an API key id, "anonymous", or a seeding tool. */
export const Actor = Type.String({
  pattern: '^[A-Za-z0-9._:-]+$',
  maxLength: 64,
  description: 'API key id, or "anonymous"',
});

/** X-Request-ID as the service accepts it (1–128 of [A-Za-z0-9._:-]) or generates it (a UUID). */
export const RequestId = Type.String({ pattern: '^[A-Za-z0-9._:-]+$', maxLength: 128 });

// A problem echoes parts of the request (its path, a member's name), which the 64 KiB body limit and Node's
// 16 KiB header limit bound; twice the body limit leaves room for JSON pointer escapes.
const MAX_ECHOED_LENGTH = 2 * BODY_LIMIT_BYTES;
// One field error per offending member, and each member costs the body at least 6 bytes (`"a":0,`).
const MAX_FIELD_ERRORS = 16_384;
// A validation detail joins the field errors: at most about 5 characters per byte of the body.
const MAX_DETAIL_LENGTH = 8 * BODY_LIMIT_BYTES;

export const Problem = Type.Object(
  {
    type: Type.String({ format: 'uri', maxLength: 128 }),
    title: Type.String({ maxLength: 128 }),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    detail: Type.Optional(
      Type.String({
        maxLength: MAX_DETAIL_LENGTH,
        description: 'What went wrong; for validation errors, every field error joined by "; "',
      }),
    ),
    instance: Type.String({ maxLength: MAX_ECHOED_LENGTH, description: 'The request path' }),
    request_id: RequestId,
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          pointer: Type.Optional(
            Type.String({
              pattern: '^(/.*)?$',
              maxLength: MAX_ECHOED_LENGTH,
              description: 'JSON pointer into the body',
            }),
          ),
          parameter: Type.Optional(
            Type.String({ maxLength: MAX_ECHOED_LENGTH, description: 'Query, path or header parameter' }),
          ),
          message: Type.String({ maxLength: 256 }),
        }),
        { maxItems: MAX_FIELD_ERRORS },
      ),
    ),
  },
  {
    $id: 'Problem',
    title: 'Problem',
    additionalProperties: true,
    description:
      'RFC 9457 problem details (application/problem+json). Some kinds add members: a 409 ' +
      'invalid-state-transition has `current_status` and `allowed_actions`; a 422 overpayment has ' +
      '`outstanding_balance`. Lengths are bounded by what a problem can echo of the request (a 64 KiB body).',
  },
);

/** Every route can fail with these: an unexpected error, or the database being unavailable. */
const SERVER_ERROR_STATUSES = [500, 503];

/**
 * OpenAPI documentation of one error response, as `application/problem+json` referencing the shared
 * `Problem` schema that platform/openapi.ts registers. The error handler sends problems already
 * serialized, so these schemas document and never filter.
 */
export function documentedProblem(status: number, description = `Problem (${status})`): TSchema {
  return Type.Unsafe({
    description,
    content: { 'application/problem+json': { schema: Type.Ref('Problem') } },
  });
}

/** The error responses a route can give, plus 500 and 503. */
export function problemResponses(...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries(
    [...new Set([...statuses, ...SERVER_ERROR_STATUSES])].map((status) => [
      status,
      documentedProblem(status),
    ]),
  );
}
