export const PROBLEM_BASE = 'https://branchloans.com/problems/';

export type ProblemType =
  | 'validation-error'
  | 'invalid-json'
  | 'malformed-request'
  | 'not-found'
  | 'method-not-allowed'
  | 'invalid-state-transition'
  | 'idempotency-key-reused'
  | 'idempotency-request-in-progress'
  | 'precondition-failed'
  | 'unauthorized'
  | 'forbidden'
  | 'rate-limited'
  | 'payload-too-large'
  | 'request-timeout'
  | 'request-header-fields-too-large'
  | 'unsupported-media-type'
  | 'service-unavailable'
  | 'internal-error';

const TITLES: Record<ProblemType, string> = {
  'validation-error': 'Request validation failed',
  'invalid-json': 'Request body is not valid JSON',
  'malformed-request': 'Malformed HTTP request',
  'not-found': 'Resource not found',
  'method-not-allowed': 'Method not allowed',
  'invalid-state-transition': 'Action not allowed in the current state',
  'idempotency-key-reused': 'Idempotency key reused with a different request',
  'idempotency-request-in-progress': 'A request with this idempotency key is in progress',
  'precondition-failed': 'Precondition failed',
  unauthorized: 'Authentication required',
  forbidden: 'Forbidden',
  'rate-limited': 'Too many requests',
  'payload-too-large': 'Payload too large',
  'request-timeout': 'Request timeout',
  'request-header-fields-too-large': 'Request header fields too large',
  'unsupported-media-type': 'Unsupported media type',
  'service-unavailable': 'Service unavailable',
  'internal-error': 'Internal server error',
};

/** Where a validation error points: a JSON pointer into the body, or a query/path parameter name. */
export type FieldError = { pointer: string; message: string } | { parameter: string; message: string };

export interface AppErrorOptions {
  detail?: string;
  errors?: FieldError[];
  headers?: Record<string, string>;
  /** Extra members of the problem body, e.g. current_status. */
  extensions?: Record<string, unknown>;
}

/** The one error type of the service: everything it says is safe to show a client. */
export class AppError extends Error {
  readonly type: ProblemType;
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;
  readonly extensions: Record<string, unknown>;

  constructor(type: ProblemType, status: number, options: AppErrorOptions = {}) {
    super(options.detail ?? TITLES[type]);
    this.name = 'AppError';
    this.type = type;
    this.status = status;
    this.title = TITLES[type];
    this.detail = options.detail;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }
}

function describeField(error: FieldError): string {
  const name = 'pointer' in error ? error.pointer.slice(1).replaceAll('/', '.') : error.parameter;
  return name ? `${name} ${error.message}` : error.message;
}

export function validationError(errors: FieldError[]): AppError {
  return new AppError('validation-error', 400, { detail: errors.map(describeField).join('; '), errors });
}

export function notFound(detail: string): AppError {
  return new AppError('not-found', 404, { detail });
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance: string;
  request_id: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export function toProblem(error: AppError, instance: string, requestId: string): Problem {
  return {
    type: PROBLEM_BASE + error.type,
    title: error.title,
    status: error.status,
    ...(error.detail === undefined ? {} : { detail: error.detail }),
    instance,
    request_id: requestId,
    ...(error.errors ? { errors: error.errors } : {}),
    ...error.extensions,
  };
}
