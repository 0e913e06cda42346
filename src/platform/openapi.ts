import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import { Problem } from './schemas.ts';

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
  PostgreSQL cannot store: 400. Integers in query strings are plain decimals (\`200\`, not \`2e2\`, \`0200\` or
  \`200.0\`); timestamps in filters run from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z; a cursor this API
  did not issue is a 400.
- Requests that break HTTP itself are answered with problem+json too, then the connection is closed: a
  malformed request 400 (\`malformed-request\`), a header section over the server's limit 431
  (\`request-header-fields-too-large\`), a request whose headers or body do not arrive in the configured time
  408 (\`request-timeout\`).
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
  2xx and 400/404/409/412/422; a 5xx stores nothing.
- An action's 409 lists \`current_status\` and \`allowed_actions\` (path segments); a stale \`If-Match\` is 412
  and carries the current \`ETag\`.
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

export async function registerOpenApi(app: FastifyInstance, config: Config): Promise<void> {
  // Before the feature routes: their error responses reference it (platform/schemas.ts problemResponses).
  app.addSchema(Problem);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Branch Loans API', version: config.version, description: DESCRIPTION.trim() },
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
    transformObject: (documentObject) =>
      'openapiObject' in documentObject
        ? clientView(documentObject.openapiObject)
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
