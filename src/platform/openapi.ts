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
- Lists are newest first and keyset-paginated: follow the absolute URL in \`Link: <…>; rel="next"\`.
  \`created_after\` and \`created_before\` are exclusive bounds.
- \`GET /api/stats?currency=XXX\` for a valid currency without loans returns that currency with zero counts.
`;

export async function registerOpenApi(app: FastifyInstance, config: Config): Promise<void> {
  app.addSchema(Problem);
  await app.register(swagger, {
    // Shared schemas become components named by their $id (the default is "def-N").
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Branch Loans API', version: config.version, description: DESCRIPTION.trim() },
      tags: [
        { name: 'loans', description: 'Loan applications and their lifecycle' },
        { name: 'stats', description: 'Portfolio statistics' },
        { name: 'operations', description: 'Health and readiness probes' },
      ],
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true, tryItOutEnabled: true },
    staticCSP: true,
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
