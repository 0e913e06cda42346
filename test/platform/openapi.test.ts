import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildTestApp, JSON_HEADERS, type TestApp } from '../helpers/app.ts';
import { TERMS } from '../helpers/loans.ts';

// Every route the app registers, recorded as Fastify adds it, so a route missing from the document fails here.
const registered = vi.hoisted(() => [] as { method: string; url: string; hidden: boolean }[]);
vi.mock('fastify', async (importOriginal) => {
  const actual = await importOriginal<typeof import('fastify')>();
  const recording = ((options: Parameters<typeof actual.default>[0]) => {
    const app = actual.default(options);
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) {
        registered.push({ method, url: route.url, hidden: route.schema?.hide === true });
      }
    });
    return app;
  }) as typeof actual.default;
  return { ...actual, default: recording, fastify: recording };
});

// ajv-formats is CommonJS with a default export; under NodeNext it arrives as the module namespace.
const addFormats = addFormatsPlugin as unknown as typeof addFormatsPlugin.default;

interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  parameters?: { in: string; name: string; required?: boolean; schema?: Record<string, unknown> }[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Record<string, unknown> }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
}
interface Document {
  openapi: string;
  info: { title: string; version: string; description?: string };
  tags: { name: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, Record<string, unknown>>;
    headers: Record<string, Record<string, unknown>>;
  };
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
// The routes the contract (API.md) names; a route added later is expected from the recording above.
const CONTRACT_OPERATIONS = [
  'GET /api/loans',
  'GET /api/loans/{id}',
  'GET /api/stats',
  'GET /health',
  'GET /liveness',
  'GET /readiness',
  'POST /api/loans',
];
const PROBLEM_CONTENT = {
  'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } },
};
const CREATE_FIELDS = ['amount', 'borrower_id', 'currency', 'interest_rate_apr', 'term_months'];

let t: TestApp;
let doc: Document;
beforeAll(async () => {
  t = await buildTestApp();
  const response = await t.app.inject({ url: '/openapi.json' });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
  doc = response.json();
});
afterAll(() => t.close());

function operations(): [string, Operation][] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.has(method))
      .map(([method, operation]): [string, Operation] => [`${method.toUpperCase()} ${path}`, operation]),
  );
}

function operation(key: string): Operation {
  const found = operations().find(([name]) => name === key);
  if (!found) throw new Error(`${key} is not documented`);
  return found[1];
}

/** Fastify's `/api/loans/:id` as OpenAPI's `/api/loans/{id}`. */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1.0 document titled and versioned like the app', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBe('Branch Loans API');
    expect(doc.info.version).toBe(t.config.version);
    expect(doc.info.description).toContain('application/problem+json');
  });

  it('documents every registered route with its methods, and nothing else', () => {
    // Fastify adds a HEAD route beside every GET; the document lists the GET only.
    const expected = registered
      .filter((route) => !route.hidden && route.method !== 'HEAD')
      .map((route) => `${route.method} ${openApiPath(route.url)}`);
    expect(expected).toEqual(expect.arrayContaining(CONTRACT_OPERATIONS));
    expect(
      operations()
        .map(([key]) => key)
        .sort(),
    ).toEqual([...new Set(expected)].sort());
  });

  it('hides only /metrics, /openapi.json and the /docs UI', () => {
    const hidden = new Set(registered.filter((route) => route.hidden).map((route) => route.url));
    expect([...hidden].filter((url) => url !== '/docs' && !url.startsWith('/docs/')).sort()).toEqual([
      '/metrics',
      '/openapi.json',
    ]);
    expect(hidden).toContain('/docs');
  });

  it('gives every operation a summary, one declared tag and one success response', () => {
    const declaredTags = doc.tags.map((tag) => tag.name);
    const usedTags = new Set<string>();
    for (const [key, op] of operations()) {
      expect(op.summary, key).toMatch(/\S/);
      expect(op.tags, key).toHaveLength(1);
      expect(declaredTags, key).toContain(op.tags![0]);
      usedTags.add(op.tags![0]!);
      expect(
        Object.keys(op.responses).filter((status) => /^2\d\d$/.test(status)),
        key,
      ).toHaveLength(1);
    }
    expect(new Set(declaredTags), 'every declared tag is used').toEqual(usedTags);
  });

  it('documents the create body as a closed object of the five required fields', () => {
    const create = operation('POST /api/loans');
    expect(create.requestBody?.required).toBe(true);
    expect(Object.keys(create.requestBody!.content)).toEqual(['application/json']);
    const body = create.requestBody!.content['application/json']!.schema;
    expect(body.type).toBe('object');
    expect(body.additionalProperties).toBe(false);
    expect([...(body.required as string[])].sort()).toEqual(CREATE_FIELDS);
    expect(Object.keys(body.properties as object).sort()).toEqual(CREATE_FIELDS);
    expect(Object.keys(create.responses)).toEqual(
      expect.arrayContaining(['201', '400', '413', '415', '500', '503']),
    );
  });

  it('documents the list parameters, limit optional from 1 to 200 with default 50', () => {
    const parameters = operation('GET /api/loans').parameters!;
    expect(parameters.map((p) => `${p.in}:${p.name}`).sort()).toEqual([
      'query:borrower_id',
      'query:created_after',
      'query:created_before',
      'query:currency',
      'query:cursor',
      'query:limit',
      'query:status',
    ]);
    expect(parameters.filter((p) => p.required)).toEqual([]);
    const limit = parameters.find((p) => p.name === 'limit')!;
    expect(limit.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 200, default: 50 });
  });

  it('keeps filter examples out of the values Swagger UI pre-fills', () => {
    const currency = operation('GET /api/loans').parameters!.find((p) => p.name === 'currency')!;
    expect(currency).not.toHaveProperty('example');
    expect(currency.schema!.examples).toEqual(['INR']);
  });

  it('documents the id of GET /api/loans/{id} as a required UUID path parameter', () => {
    const [id, ...others] = operation('GET /api/loans/{id}').parameters!;
    expect(others).toEqual([]);
    expect(id).toMatchObject({ in: 'path', name: 'id', required: true, schema: { type: 'string' } });
    expect(new RegExp(id!.schema!.pattern as string).test('00000000-0000-0000-0000-000000000002')).toBe(true);
  });

  it('documents every API error as application/problem+json referencing the Problem schema', () => {
    // The errors API.md names per route; every /api route may also fail with 500, or 503 while the DB is down.
    const action = ['400', '404', '409', '412'];
    const contractErrors: Record<string, string[]> = {
      'POST /api/loans': ['400', '413', '415'],
      'GET /api/loans': ['400'],
      'GET /api/loans/{id}': ['400', '404'],
      'GET /api/stats': ['400'],
      'POST /api/loans/{id}/approve': action,
      'POST /api/loans/{id}/reject': action,
      'POST /api/loans/{id}/disburse': action,
      'POST /api/loans/{id}/repayments': action,
      'POST /api/loans/{id}/default': action,
    };
    const apiOperations = operations().filter(([key]) => key.includes(' /api/'));
    expect(apiOperations.map(([key]) => key)).toEqual(
      expect.arrayContaining(CONTRACT_OPERATIONS.filter((key) => key.includes(' /api/'))),
    );
    for (const [key, op] of apiOperations) {
      const errors = Object.keys(op.responses).filter((status) => /^[45]\d\d$/.test(status));
      expect(errors, key).toEqual(expect.arrayContaining([...(contractErrors[key] ?? []), '500', '503']));
      for (const status of errors) {
        expect(op.responses[status]!.content, `${key} ${status}`).toEqual(PROBLEM_CONTENT);
        expect(op.responses[status]!.description, `${key} ${status}`).toMatch(/\S/);
      }
    }
    expect(doc.components.schemas.Problem).toMatchObject({
      type: 'object',
      required: ['type', 'title', 'status', 'instance', 'request_id'],
    });
  });

  it('is structurally valid: resolvable references, declared path parameters, described responses', () => {
    const json = JSON.stringify(doc);
    for (const [, ref] of json.matchAll(/"\$ref":"([^"]+)"/g)) {
      const [, kind, name] = /^#\/components\/(schemas|headers)\/([A-Za-z0-9._-]+)$/.exec(ref!) ?? [];
      expect(kind, ref).toBeDefined();
      expect(doc.components[kind as 'schemas' | 'headers'], ref).toHaveProperty([name!]);
    }
    for (const [path, item] of Object.entries(doc.paths)) {
      expect(path).toMatch(/^\/[^?#]*$/);
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map(([, name]) => name);
      for (const [method, op] of Object.entries(item)) {
        expect(HTTP_METHODS.has(method), `${method} ${path}`).toBe(true);
        const inPath = (op.parameters ?? []).filter((p) => p.in === 'path');
        expect(inPath.map((p) => p.name).sort(), `${method} ${path}`).toEqual(templated.sort());
        for (const p of inPath) expect(p.required, `${method} ${path} ${p.name}`).toBe(true);
        const names = (op.parameters ?? []).map((p) => `${p.in}:${p.name}`);
        expect(new Set(names).size, `${method} ${path}`).toBe(names.length);
        expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(0);
        for (const [status, response] of Object.entries(op.responses)) {
          expect(status).toMatch(/^([1-5]\d\d|default)$/);
          expect(typeof response.description, `${method} ${path} ${status}`).toBe('string');
        }
      }
    }
  });

  it('holds JSON Schema 2020-12 schemas that describe what the API really returns', async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema(doc, 'openapi.json');
    const pointer = (...parts: string[]) =>
      `openapi.json#/${parts.map((part) => part.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;
    const validate = (schemaPointer: string, value: unknown) => {
      const check = ajv.getSchema(schemaPointer);
      if (!check) throw new Error(`no schema at ${schemaPointer}`);
      return check(value) ? [] : check.errors;
    };

    const body = pointer(
      'paths',
      '/api/loans',
      'post',
      'requestBody',
      'content',
      'application/json',
      'schema',
    );
    const valid = {
      borrower_id: 'usr_test_1',
      amount: '15000.00',
      currency: 'INR',
      term_months: 12,
      interest_rate_apr: '18.50',
    };
    expect(validate(body, valid)).toEqual([]);
    expect(validate(body, { ...valid, amout: '1' })).not.toEqual([]);

    const created = await t.app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: JSON_HEADERS,
      payload: JSON.stringify(valid),
    });
    expect(created.statusCode).toBe(201);
    const createdSchema = pointer(
      'paths',
      '/api/loans',
      'post',
      'responses',
      '201',
      'content',
      'application/json',
    );
    expect(validate(`${createdSchema}/schema`, created.json())).toEqual([]);

    const list = await t.app.inject({ url: '/api/loans' });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual([created.json()]);
    const listSchema = pointer(
      'paths',
      '/api/loans',
      'get',
      'responses',
      '200',
      'content',
      'application/json',
    );
    expect(validate(`${listSchema}/schema`, list.json())).toEqual([]);
    expect(validate(`${listSchema}/schema`, [{ id: 'x' }])).not.toEqual([]);

    const problem = await t.app.inject({ url: '/api/loans/00000000-0000-0000-0000-0000000000ff' });
    expect(problem.statusCode).toBe(404);
    expect(problem.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(validate(pointer('components', 'schemas', 'Problem'), problem.json())).toEqual([]);
    expect(validate(pointer('components', 'schemas', 'Problem'), { title: 'no type' })).not.toEqual([]);

    // Every schema in the document compiles, its references resolved within the document.
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const at = (...parts: string[]) => pointer('paths', path, method, ...parts);
        const schemas = [
          ...(op.parameters ?? []).map((_, i) => at('parameters', String(i), 'schema')),
          ...Object.keys(op.requestBody?.content ?? {}).map((media) =>
            at('requestBody', 'content', media, 'schema'),
          ),
          ...Object.entries(op.responses).flatMap(([status, response]) =>
            Object.keys(response.content ?? {}).map((media) =>
              at('responses', status, 'content', media, 'schema'),
            ),
          ),
        ];
        for (const schema of schemas) expect(ajv.getSchema(schema), schema).toBeTypeOf('function');
      }
    }
  });

  it('documents the headers the loan routes add, and they are on the answers', async () => {
    const headersOf = (key: string, status: string) =>
      Object.keys((operation(key).responses[status] as { headers?: object }).headers ?? {});
    expect(headersOf('POST /api/loans', '201')).toEqual(
      expect.arrayContaining(['Location', 'ETag', 'Idempotent-Replayed']),
    );
    expect(headersOf('POST /api/loans', '409')).toContain('Idempotent-Replayed');
    expect(headersOf('POST /api/loans/{id}/repayments', '201')).toEqual(
      expect.arrayContaining(['Location', 'ETag', 'Idempotent-Replayed']),
    );
    expect(headersOf('GET /api/loans/{id}', '200')).toContain('ETag');
    expect(headersOf('GET /api/loans', '200')).toContain('Link');
    expect(headersOf('POST /api/loans/{id}/approve', '200')).toContain('ETag');
    expect(headersOf('POST /api/loans/{id}/approve', '412')).toContain('ETag');
    expect(headersOf('GET /api/loans/{id}', '200')).not.toContain('Idempotent-Replayed');
    for (const name of ['ETag', 'Location', 'Link', 'Idempotent-Replayed']) {
      expect(doc.components.headers, name).toHaveProperty([name]);
    }

    const created = await t.app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: { ...JSON_HEADERS, 'idempotency-key': 'openapi-headers' },
      payload: JSON.stringify({ ...TERMS, borrower_id: 'openapi_headers' }),
    });
    expect(created.headers.location).toBe(`/api/loans/${created.json().id}`);
    expect(created.headers.etag).toMatch(/^"[^"]+"$/);
    const replayed = await t.app.inject({
      method: 'POST',
      url: '/api/loans',
      headers: { ...JSON_HEADERS, 'idempotency-key': 'openapi-headers' },
      payload: JSON.stringify({ ...TERMS, borrower_id: 'openapi_headers' }),
    });
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    const fetched = await t.app.inject({ url: created.headers.location! });
    expect(fetched.headers.etag).toBe(created.headers.etag);
  });
});

describe('GET /docs', () => {
  async function getFollowingRedirects(url: string) {
    let response = await t.app.inject({ url });
    for (let hops = 0; response.statusCode >= 300 && response.statusCode < 400 && hops < 5; hops++) {
      url = new URL(response.headers.location!, `http://localhost${url}`).pathname;
      response = await t.app.inject({ url });
    }
    return { response, url };
  }

  it('serves the Swagger UI page, whose assets all come from the app', async () => {
    const { response, url } = await getFollowingRedirects('/docs');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.body).toContain('<div id="swagger-ui"></div>');
    const assets = [...response.body.matchAll(/(?:src|href)="([^"]+)"/g)].map(([, asset]) => asset!);
    expect(assets).toEqual(expect.arrayContaining([expect.stringMatching(/swagger-ui-bundle\.js$/)]));
    for (const asset of assets) {
      expect(asset, 'no CDN').not.toMatch(/^(https?:)?\/\//);
      const served = await t.app.inject({ url: new URL(asset, `http://localhost${url}`).pathname });
      expect(served.statusCode, asset).toBe(200);
    }
  });

  it('does not upgrade its requests to https, so it works over plain http on any host', async () => {
    const { response } = await getFollowingRedirects('/docs');
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toContain('upgrade-insecure-requests');
  });

  it('loads the same document as /openapi.json', async () => {
    const ui = await t.app.inject({ url: '/docs/json' });
    expect(ui.statusCode).toBe(200);
    expect(ui.json()).toEqual(doc);
  });
});
