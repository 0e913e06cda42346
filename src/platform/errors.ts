export const PROBLEM_BASE = 'https://branchloans.com/problems/';

/**
 * Every kind of problem the service reports: its title and HTTP status. `alsoStatus` lists the other
 * statuses a kind may be sent with, and nothing else type-checks.
 */
const PROBLEMS = {
  'validation-error': {
    title: 'Request validation failed',
    status: 400,
    // A well-formed request the state of the loan refuses (a repayment above the balance).
    alsoStatus: [422],
  },
  'invalid-json': { title: 'Request body is not valid JSON', status: 400 },
  'malformed-request': { title: 'Malformed HTTP request', status: 400 },
  'not-found': { title: 'Resource not found', status: 404 },
  'method-not-allowed': { title: 'Method not allowed', status: 405 },
  'invalid-state-transition': { title: 'Action not allowed in the current state', status: 409 },
  'idempotency-key-reused': { title: 'Idempotency key reused with a different request', status: 422 },
  'idempotency-request-in-progress': {
    title: 'A request with this idempotency key is in progress',
    status: 409,
  },
  'precondition-failed': { title: 'Precondition failed', status: 412 },
  unauthorized: { title: 'Authentication required', status: 401 },
  forbidden: { title: 'Forbidden', status: 403 },
  'rate-limited': { title: 'Too many requests', status: 429 },
  'payload-too-large': { title: 'Payload too large', status: 413 },
  'request-timeout': { title: 'Request timeout', status: 408 },
  'request-header-fields-too-large': { title: 'Request header fields too large', status: 431 },
  'unsupported-media-type': { title: 'Unsupported media type', status: 415 },
  'expectation-failed': { title: 'Expectation failed', status: 417 },
  'service-unavailable': { title: 'Service unavailable', status: 503 },
  'internal-error': { title: 'Internal server error', status: 500 },
} as const satisfies Record<string, { title: string; status: number; alsoStatus?: readonly number[] }>;

export type ProblemType = keyof typeof PROBLEMS;
type OtherStatus<T extends ProblemType> = (typeof PROBLEMS)[T] extends { alsoStatus: readonly (infer S)[] }
  ? S
  : never;

/** Where a validation error points: a JSON pointer into the body, or a query/path parameter name. */
export type FieldError = { pointer: string; message: string } | { parameter: string; message: string };

export interface AppErrorOptions<T extends ProblemType> {
  detail?: string;
  errors?: FieldError[];
  headers?: Record<string, string>;
  /** Extra members of the problem body, e.g. current_status. */
  extensions?: Record<string, unknown>;
  /** Only where the kind declares it (PROBLEMS[type].alsoStatus); its own status otherwise. */
  status?: OtherStatus<T>;
}

/** The one error type of the service: everything it says is safe to show a client. */
export class AppError<T extends ProblemType = ProblemType> extends Error {
  readonly type: T;
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;
  readonly extensions: Record<string, unknown>;

  constructor(type: T, options: AppErrorOptions<T> = {}) {
    const kind: { title: string; status: number } = PROBLEMS[type];
    super(options.detail ?? kind.title);
    this.name = 'AppError';
    this.type = type;
    this.status = (options.status as number | undefined) ?? kind.status;
    this.title = kind.title;
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
  return new AppError('validation-error', { detail: errors.map(describeField).join('; '), errors });
}

export function notFound(detail: string): AppError {
  return new AppError('not-found', { detail });
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
