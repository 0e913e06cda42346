import { Ajv, type ErrorObject, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import type { FastifyInstance, FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import type { FieldError } from './errors.ts';
import { isStorableInstant } from './timestamps.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/**
 * The schema keyword holding a value's message for clients, used instead of Ajv's. An `x-` extension, so
 * that the OpenAPI document generated from the schemas holds standard keywords only.
 */
export const ERROR_MESSAGE = 'x-error-message';

const common: Options = {
  allErrors: true,
  removeAdditional: false, // unknown fields are errors, never silently dropped
  useDefaults: true,
  strict: false, // schemas carry OpenAPI-only keywords such as `x-error-message` and `example`
  verbose: true, // errors carry their schema, for `x-error-message`
};

const validDateTime = (fullFormats['date-time'] as { validate: (value: string) => boolean }).validate;
// ajv-formats also takes a space for the T and an offset without its colon; RFC 3339's grammar does not.
const RFC3339_SHAPE = /^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)$/;

/**
 * ajv-formats with one change: a date-time must be written as RFC 3339 writes it, and be an instant
 * PostgreSQL can store (no year 0000).
 */
function withFormats(ajv: Ajv): Ajv {
  addFormats(ajv);
  return ajv.addFormat(
    'date-time',
    (value: string) => RFC3339_SHAPE.test(value) && validDateTime(value) && isStorableInstant(value),
  );
}

// Bodies are JSON and must have the right types. Query strings and paths are text: an integer there
// is a plain decimal literal ("200", not "2e2", "0200", " 200" or "200.0"), converted before validation.
const ajv = withFormats(new Ajv({ ...common, coerceTypes: false }));
const PLAIN_INTEGER = /^-?(0|[1-9][0-9]*)$/;

function integerProperties(schema: { properties?: Record<string, { type?: unknown }> }): string[] {
  return Object.entries(schema.properties ?? {})
    .filter(([, property]) => property.type === 'integer')
    .map(([name]) => name);
}

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const validate = ajv.compile(schema as object);
  const integers = httpPart === 'body' ? [] : integerProperties(schema as object);
  if (integers.length === 0) return validate;
  const validateText = (data: Record<string, unknown>) => {
    for (const name of integers) {
      const value = data[name];
      if (typeof value === 'string' && PLAIN_INTEGER.test(value)) data[name] = Number(value);
    }
    const valid = validate(data);
    validateText.errors = validate.errors;
    return valid;
  };
  validateText.errors = validate.errors;
  return validateText;
};

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  object: 'a JSON object',
  array: 'an array',
  boolean: 'true or false',
  null: 'null',
};

function describeType(type: unknown): string {
  const types = Array.isArray(type) ? type : [type];
  return `must be ${types.map((t) => TYPE_NAMES[String(t)] ?? String(t)).join(' or ')}`;
}

function messageFor(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  const custom = (error.parentSchema as { [ERROR_MESSAGE]?: string } | undefined)?.[ERROR_MESSAGE];
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a recognised field';
    case 'type':
      return custom ?? describeType(params.type);
    case 'minimum':
      return `must be greater than or equal to ${params.limit}`;
    case 'maximum':
      return `must be less than or equal to ${params.limit}`;
    case 'exclusiveMinimum':
      return `must be greater than ${params.limit}`;
    case 'enum':
      return `must be one of: ${(params.allowedValues as unknown[]).join(', ')}`;
    case 'format':
      return custom ?? `must be a valid ${params.format}`;
    default:
      return custom ?? error.message ?? 'is invalid';
  }
}

/** Where the error is: the offending member's path, including members that are missing or unknown. */
function pathOf(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'required') return `${error.instancePath}/${params.missingProperty}`;
  if (error.keyword === 'additionalProperties') return `${error.instancePath}/${params.additionalProperty}`;
  return error.instancePath;
}

/** Maps Ajv errors to API field errors: JSON pointers for bodies, parameter names for query and path. */
export function toFieldErrors(errors: FastifySchemaValidationError[], part: string): FieldError[] {
  const seen = new Set<string>();
  const result: FieldError[] = [];
  for (const error of errors as ErrorObject[]) {
    const path = pathOf(error);
    const isUnknownParameter = part !== 'body' && error.keyword === 'additionalProperties';
    const message = isUnknownParameter ? 'is not a supported query parameter' : messageFor(error);
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (part === 'body') {
      result.push({ pointer: path, message: path === '' ? `the request body ${message}` : message });
    } else {
      result.push({ parameter: path.slice(1).replaceAll('/', '.'), message });
    }
  }
  return result;
}

/** A query string with no parameters: what an /api route that declares none accepts. */
const NO_PARAMETERS = { type: 'object', properties: {}, additionalProperties: false } as const;

/**
 * Unknown query parameters are a 400 on every /api route (API.md), not only on those that take some:
 * a route that declares no query string accepts none. Register before the routes.
 */
export function refuseUndeclaredQueryParameters(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/api') || route.schema?.querystring) return;
    route.schema = { ...route.schema, querystring: NO_PARAMETERS };
  });
}
