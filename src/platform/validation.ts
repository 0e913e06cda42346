import { Ajv, type ErrorObject, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import type { FieldError } from './errors.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const common: Options = {
  allErrors: true,
  removeAdditional: false, // unknown fields are errors, never silently dropped
  useDefaults: true,
  strict: false, // schemas carry OpenAPI-only keywords such as `errorMessage` and `example`
  verbose: true, // errors carry their schema, for `errorMessage`
};

// Bodies are JSON and must have the right types; query strings and paths are text and are coerced.
const bodyAjv = addFormats(new Ajv({ ...common, coerceTypes: false }));
const textAjv = addFormats(new Ajv({ ...common, coerceTypes: true }));

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object);

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
  const custom = (error.parentSchema as { errorMessage?: string } | undefined)?.errorMessage;
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
