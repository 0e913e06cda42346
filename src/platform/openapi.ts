import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';
import type { Config } from '../config.ts';
import { ROLES, type Role } from './api-keys.ts';
import { documentedProblem, MAX_DECIMAL_INPUT_LENGTH, Problem } from './schemas.ts';

const DESCRIPTION = `
Microloans API of Branch Loans. Generated from the same schemas that validate requests.

**Conventions and decisions**
- Money is a decimal string in major units with exactly the currency's ISO 4217 minor-unit digits
  (INR \`"15000.00"\`, VND \`"8400"\`, KWD \`"150.000"\`). Inputs may be strings or JSON numbers; a JSON number
  is accepted only when its literal is exactly representable (no exponent), so send strings for exactness.
- Errors are RFC 9457 \`application/problem+json\`. Body problems point at the member with a JSON pointer
  (\`errors[].pointer\`, e.g. \`/amount\`); query and path problems name the parameter (\`errors[].parameter\`).
- \`X-Request-ID\` (1–128 chars of \`[A-Za-z0-9._:-]\`) is echoed; otherwise one is generated.
- Free text (reasons, notes, references) must not contain NUL characters or unpaired UTF-16 surrogates, which
  PostgreSQL cannot store: 400. A query parameter an operation does not declare is a 400, on every \`/api\`
  operation. Integers in query strings are plain decimals (\`200\`, not \`2e2\`, \`0200\` or
  \`200.0\`); timestamps in filters run from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z; a cursor this API
  did not issue is a 400.
- Requests that break HTTP itself are answered with problem+json too, then the connection is closed: a
  malformed request 400 (\`malformed-request\`), a header section over the server's limit 431
  (\`request-header-fields-too-large\`), a request whose headers or body do not arrive in the configured time
  408 (\`request-timeout\`). An HTTP/1.1 request without \`Host\`, a repeated or invalid \`Host\`, a
  repeated \`Content-Type\`, \`Authorization\` or \`X-API-Key\`, or a key in both \`Authorization\` and \`X-API-Key\`
  is a 400 (\`malformed-request\`); an \`Expect\` other than \`100-continue\` a 417 (\`expectation-failed\`).
- A body is JSON in UTF-8: another \`charset\` or any \`Content-Encoding\` but \`identity\` is a 415, bytes that
  are not UTF-8 a 400 (\`invalid-json\`). An empty body is no body. A JSON number is judged by the digits sent:
  \`100.100\` has three fraction digits, as \`"100.100"\` does.
- Lists are newest first and keyset-paginated: follow the URL in \`Link: <…>; rel="next"\` (relative, or absolute under the configured public base URL).
  \`created_after\` and \`created_before\` are exclusive bounds.
- \`GET /api/stats?currency=XXX\` for a valid currency without loans returns that currency with zero counts;
  \`total_amount\` and \`avg_amount\` cover every loan of the currency whatever its status.

**Lifecycle decisions**
- Loans carry lifecycle fields besides the contract's: \`approved_at\`, \`disbursed_on\`, \`outstanding_principal\`
  (\`"0.00"\` before disbursement), \`total_repaid\`, \`next_due_date\` (oldest installment not fully paid, may be
  past) and \`days_past_due\` (0 until the day after a due date).
- The schedule is a pure function of amount, rate, term and disbursement date, all frozen at disbursement.
  Rounding is half-even per installment; when rounding pays principal off early, later rows are 0 and \`paid\`;
  at very high rates over long terms the installment can round to the interest, leaving the principal to the last row.
- An overpayment is a 422 with \`type\` validation-error and \`outstanding_balance\`; a repayment dated before the
  disbursement, or any date in the future, is a 400.
- Idempotency keys are scoped to the caller. A request whose key is held by a running request waits up to two
  seconds for it (then replays its outcome), and only then answers 409 with \`Retry-After\`. Stored outcomes are
  2xx and 400/404/409/412/422 of a request the service processed; a 5xx stores nothing, and neither does a
  request refused before processing (a body or parameter that fails validation, an unreadable body, a key or
  role refused, a rate limit), so the key can be sent again with the request corrected.
- An action's 409 lists \`current_status\` and \`allowed_actions\` (path segments); a stale \`If-Match\` is 412
  and carries the current \`ETag\`.

**Authentication and roles**
- Every \`/api\` operation needs an API key, sent as \`Authorization: Bearer <key>\` or \`X-API-Key: <key>\`. Keys are
  shown once at creation and stored only as hashes; \`npm run keys\` creates, lists and revokes them, and a revoked key
  stops working within 5 seconds. The probes (\`/health\`, \`/liveness\`, \`/readiness\`) and these docs are open.
- A missing, malformed, unknown, revoked or expired key → 401 \`unauthorized\` with \`WWW-Authenticate: Bearer\`; a
  valid key without the operation's role → 403 \`forbidden\`. Each operation names the least role it needs:

  | role | may |
  |---|---|
  | viewer | every GET under \`/api\` |
  | clerk | viewer + create loans, record repayments |
  | officer | clerk + approve, reject, disburse, default |
  | admin | everything |

- Maker–checker: the key that created a loan cannot approve, reject or disburse it (403 \`forbidden\`); another key must.
- In \`development\` (and tests) authentication may be switched off: requests without a key then act as
  \`anonymous\` with full access. In \`staging\` and \`production\` it is always on.

**Rate limits**
- Requests to \`/api\` are counted per API key, or per client address for requests without a valid key, in windows of
  one minute (600 and 120 requests by default; \`RATE_LIMIT_PER_MINUTE\`, \`RATE_LIMIT_ANONYMOUS_PER_MINUTE\`). While
  limiting is on (the default in staging and production) every response of an \`/api\` route carries \`RateLimit-Limit\`,
  \`RateLimit-Remaining\`, \`RateLimit-Reset\` (seconds) and \`RateLimit-Policy\` (\`600;w=60\`), after
  draft-ietf-httpapi-ratelimit-headers. Over the limit → 429 \`rate-limited\` with \`Retry-After\` (seconds).

**Bounds**
- Every string, integer and list in this document is bounded; on requests the bound is enforced (400 otherwise). Beyond
  the contract's own bounds, these are refused with 400: a decimal (\`amount\`, \`interest_rate_apr\`) longer than
  ${MAX_DECIMAL_INPUT_LENGTH} characters, a \`created_after\`/\`created_before\` longer than 64 characters, an \`If-Match\`
  longer than 512. On responses the bound is what the service can send: problem details, which echo parts of the
  request, are bounded by the request's own limits.
`;

interface QueryParameter {
  in: string;
  required?: boolean;
  example?: unknown;
  schema?: { default?: unknown; examples?: unknown[] };
}

/**
 * Query parameters as a reader of /docs needs them:
 * - one with a default is optional: TypeBox lists it as required because the handler always sees it once
 *   the default is applied, and the generator copies that;
 * - an optional one keeps its example in its schema (`examples`) rather than as the parameter's `example`,
 *   which Swagger UI pre-fills: "Try it out" on the list would otherwise filter by every example value.
 */
function clientView<T extends { paths?: object }>(document: T): T {
  for (const pathItem of Object.values(document.paths ?? {}) as Record<string, { parameters?: unknown }>[]) {
    for (const operation of Object.values(pathItem)) {
      for (const parameter of (operation.parameters ?? []) as QueryParameter[]) {
        if (parameter.in !== 'query') continue;
        if (parameter.schema && 'default' in parameter.schema) parameter.required = false;
        if (!parameter.required && parameter.example !== undefined) {
          parameter.schema = { ...parameter.schema, examples: [parameter.example] };
          delete parameter.example;
        }
      }
    }
  }
  return document;
}

const BEARER = 'bearerApiKey';
const API_KEY_HEADER = 'headerApiKey';

const API_KEY_SECURITY: Record<string, string[]>[] = [{ [BEARER]: [] }, { [API_KEY_HEADER]: [] }];

const SECURITY_SCHEMES = {
  [BEARER]: {
    type: 'http' as const,
    scheme: 'bearer',
    bearerFormat: 'API key',
    description: 'An API key (`bl_<env>_<random>`) as a bearer token: `Authorization: Bearer <key>`',
  },
  [API_KEY_HEADER]: {
    type: 'apiKey' as const,
    in: 'header',
    name: 'X-API-Key',
    description: 'The same API key in its own header: `X-API-Key: <key>`',
  },
};

/** Rate limits are per minute (platform/rate-limit.ts), each between 1 and 1,000,000 requests (config.ts). */
const RATE_LIMIT_MAX = 1_000_000;
const RATE_LIMIT_WINDOW_S = 60;
const WHILE_LIMITED =
  'Sent while rate limiting is on (the default in staging and production) and its counter store answers.';

/** Response headers, shared as components and referenced by name. */
const HEADERS = {
  'RateLimit-Limit': {
    description: `Requests allowed per one-minute window for this API key (or this address without one). ${WHILE_LIMITED}`,
    schema: { type: 'integer', minimum: 1, maximum: RATE_LIMIT_MAX },
  },
  'RateLimit-Remaining': {
    description: `Requests left in the current window. ${WHILE_LIMITED}`,
    schema: { type: 'integer', minimum: 0, maximum: RATE_LIMIT_MAX },
  },
  'RateLimit-Reset': {
    description: `Seconds until the window starts again. ${WHILE_LIMITED}`,
    schema: { type: 'integer', minimum: 0, maximum: RATE_LIMIT_WINDOW_S },
  },
  'RateLimit-Policy': {
    description: `The quota and its window in seconds, e.g. \`600;w=60\`. ${WHILE_LIMITED}`,
    schema: { type: 'string', pattern: '^[0-9]+;w=[0-9]+$', maxLength: 32, examples: ['600;w=60'] },
  },
  'Retry-After': {
    description:
      'Seconds to wait before retrying: on a 429 until the rate-limit window starts again, on a 503 while the ' +
      'database is unavailable',
    schema: { type: 'integer', minimum: 1, maximum: RATE_LIMIT_WINDOW_S },
  },
  'WWW-Authenticate': {
    description: 'The authentication scheme to use: an API key as a bearer token',
    schema: { type: 'string', enum: ['Bearer'] },
  },
  'X-Request-ID': {
    description: "The request's id: the client's `X-Request-ID` when well-formed, else a generated UUID",
    schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]+$', maxLength: 128 },
  },
  ETag: {
    description: "The loan's version: send it as `If-Match` to act only on this version",
    schema: { type: 'string', pattern: '^"[^"]+"$', maxLength: 128 },
  },
  Location: {
    description: 'Where the created resource is read',
    schema: { type: 'string', format: 'uri-reference', maxLength: 2048 },
  },
  Link: {
    description: 'The next page, `<…>; rel="next"`: only when more loans match',
    schema: { type: 'string', maxLength: 8192 },
  },
  'Idempotent-Replayed': {
    description: 'On an answer replayed for an `Idempotency-Key` seen before: `true`',
    schema: { type: 'string', enum: ['true'] },
  },
  'Access-Control-Allow-Origin': {
    description:
      "Only on a browser's request from an origin listed in CORS_ORIGINS (none by default): that origin",
    schema: { type: 'string', format: 'uri', maxLength: 2048 },
  },
};
type HeaderName = keyof typeof HEADERS;

const headerRefs = (...names: HeaderName[]) =>
  Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${name}` }]));

/**
 * The problems of authentication and rate limiting that a route requiring `role` can answer with. A route
 * that refuses for reasons of its own as well (maker–checker) declares its 403 itself.
 */
function accessProblems(role: Role): Record<number, object> {
  const problems: Record<number, object> = {
    401: documentedProblem(
      401,
      'Problem (401): no API key, or one that is malformed, unknown, revoked or expired',
    ),
    429: documentedProblem(
      429,
      'Problem (429): the rate limit of the API key (or of the address without one) is spent',
    ),
  };
  // Every key has at least the lowest role, so only routes needing more can refuse a valid key.
  if (role !== ROLES[0])
    problems[403] = documentedProblem(403, `Problem (403): the API key lacks the ${role} role`);
  return problems;
}

interface RouteSchema {
  description?: string;
  response?: Record<string, unknown>;
  hide?: boolean;
}

/**
 * Each operation's security, from the role its route declares (platform/auth.ts enforces the same
 * `config.role`): an API key and the responses of authentication and rate limiting, or open.
 */
function withAccess({ schema, url, route }: { schema: FastifySchema; url: string; route: RouteOptions }) {
  const routeSchema = schema as RouteSchema | undefined;
  if (!routeSchema || routeSchema.hide) return { schema, url };
  const role = route.config?.role;
  if (!role) return { schema: { ...routeSchema, security: [] } as FastifySchema, url };
  const needs = `Needs an API key with the **${role}** role or above.`;
  const documented: FastifySchema = {
    ...routeSchema,
    security: API_KEY_SECURITY,
    description: routeSchema.description ? `${routeSchema.description}\n\n${needs}` : needs,
    response: { ...accessProblems(role), ...routeSchema.response },
  };
  return { schema: documented, url };
}

interface ResponseObject {
  headers?: Record<string, unknown>;
}
interface OperationObject {
  operationId?: string;
  security?: unknown[];
  parameters?: { in?: string; name?: string }[];
  responses?: Record<string, ResponseObject>;
}

/** The headers loans.routes.ts adds to these operations' successful answers. */
const SUCCESS_HEADERS: Readonly<Record<string, HeaderName[]>> = {
  createLoan: ['Location', 'ETag'],
  getLoan: ['ETag'],
  listLoans: ['Link'],
  approveLoan: ['ETag'],
  rejectLoan: ['ETag'],
  disburseLoan: ['ETag'],
  defaultLoan: ['ETag'],
  recordRepayment: ['Location', 'ETag'],
};
const STORED_OUTCOME = /^(2..|400|404|409|412|422)$/;

/** The headers of one response of `operation` beyond those every operation with a key has. */
function operationHeaders(operation: OperationObject, status: string): HeaderName[] {
  const names: HeaderName[] = [];
  if (/^2/.test(status)) names.push(...(SUCCESS_HEADERS[operation.operationId ?? ''] ?? []));
  // A stale If-Match is answered with the current version.
  if (status === '412') names.push('ETag');
  const idempotent = operation.parameters?.some(
    (parameter) => parameter.in === 'header' && parameter.name?.toLowerCase() === 'idempotency-key',
  );
  if (idempotent && STORED_OUTCOME.test(status)) names.push('Idempotent-Replayed');
  return names;
}

/** The headers of every response of an operation that needs a key (so is rate limited). */
function responseHeaders(status: string): HeaderName[] {
  const names: HeaderName[] = ['X-Request-ID', 'Access-Control-Allow-Origin'];
  // The request is counted as it arrives, before anything can refuse it (platform/rate-limit.ts), so every
  // 2xx and 4xx carries the budget.
  if (/^[24]/.test(status)) {
    names.push('RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'RateLimit-Policy');
  }
  if (status === '401') names.push('WWW-Authenticate');
  if (status === '429' || status === '503') names.push('Retry-After');
  return names;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * Integers get the OpenAPI format their bounds imply (int32 or int64). It is derived here, not written in
 * the schemas: Ajv would check it as a format too and add a second message to every out-of-range integer.
 */
function addIntegerFormats(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) addIntegerFormats(item);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const schema = node as Record<string, unknown>;
  const types = [schema.type].flat();
  if (types.includes('integer') && schema.format === undefined) {
    const fits32 =
      typeof schema.minimum === 'number' &&
      typeof schema.maximum === 'number' &&
      schema.minimum >= INT32_MIN &&
      schema.maximum <= INT32_MAX;
    schema.format = fits32 ? 'int32' : 'int64';
  }
  for (const value of Object.values(schema)) addIntegerFormats(value);
}

// The first is where "Try it out" goes: the server that serves these docs, whatever its host. TLS ends at the
// edge (deploy/nginx), which serves production as branchloans.com.
const SERVERS = [
  {
    url: '/',
    description: 'This server: the deployment (local, staging or production) that serves this document',
    'x-internal': false,
  },
  { url: 'https://branchloans.com', description: 'Production', 'x-internal': false },
];

/**
 * What the generator has no option for: servers with their audience (`x-internal`), the response headers of
 * the operations that need a key, and integer formats everywhere.
 */
function published<T extends { paths?: object; components?: object }>(document: T): T {
  Object.assign(document, { servers: SERVERS });
  document.components = { ...document.components, headers: HEADERS };
  for (const pathItem of Object.values(document.paths ?? {}) as Record<string, OperationObject>[]) {
    for (const operation of Object.values(pathItem)) {
      if (!operation.security?.length) continue;
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        response.headers = {
          ...response.headers,
          ...headerRefs(...responseHeaders(status), ...operationHeaders(operation, status)),
        };
      }
    }
  }
  addIntegerFormats(document);
  return document;
}

export async function registerOpenApi(app: FastifyInstance, config: Config): Promise<void> {
  // Before the feature routes: their error responses reference it (platform/schemas.ts problemResponses).
  app.addSchema(Problem);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Branch Loans API', version: config.version, description: DESCRIPTION.trim() },
      components: { securitySchemes: SECURITY_SCHEMES },
      tags: [
        { name: 'loans', description: 'Loan applications' },
        {
          name: 'lifecycle',
          description: 'Approval, disbursement, repayments and default, with schedule and events',
        },
        { name: 'stats', description: 'Portfolio statistics' },
        { name: 'operations', description: 'Health and readiness probes' },
      ],
    },
    // Shared schemas become components named by their $id (the default names them "def-N").
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    transform: withAccess,
    transformObject: (documentObject) =>
      'openapiObject' in documentObject
        ? published(clientView(documentObject.openapiObject))
        : documentObject.swaggerObject,
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true, tryItOutEnabled: true },
    staticCSP: true,
    // The default policy upgrades the page's requests to https, so /docs served over plain http on any host
    // but localhost (http://<lan-ip>:8000, a container name) loaded nothing. TLS belongs to the proxy.
    transformStaticCSP: (header) => header.replace(/\s*upgrade-insecure-requests;/, ''),
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
