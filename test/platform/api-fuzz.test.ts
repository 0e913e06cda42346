// Requests generated from the served OpenAPI document, valid and invalid, with and without keys of each
// role, against a real database: never a 5xx, every error is problem+json, and a refused request changes
// no row of the business tables.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, insertKey, ROLES } from '../../src/platform/api-keys.ts';
import { buildTestApp, JSON_HEADERS, type TestApp } from '../helpers/app.ts';
import { TERMS } from '../helpers/loans.ts';

const RUNS = 10_000;

interface Schema {
  type?: string | string[];
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  examples?: unknown[];
}
interface Parameter {
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  schema: Schema;
}
interface Operation {
  method: string;
  path: string;
  parameters: Parameter[];
  body: Schema | undefined;
}

let t: TestApp;
let operations: Operation[];
const secrets: Record<string, string> = {};
const loanIds: string[] = [];

/** Every change to a business table, counted by row triggers; a rolled-back change is not counted. */
const CHANGE_COUNTER = `
  CREATE TABLE fuzz_changes (n bigint NOT NULL);
  INSERT INTO fuzz_changes VALUES (0);
  CREATE FUNCTION fuzz_count() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN UPDATE fuzz_changes SET n = n + 1; RETURN NULL; END $$;
  CREATE TRIGGER fuzz_loans AFTER INSERT OR UPDATE OR DELETE ON loans FOR EACH ROW EXECUTE FUNCTION fuzz_count();
  CREATE TRIGGER fuzz_events AFTER INSERT OR UPDATE OR DELETE ON loan_events FOR EACH ROW EXECUTE FUNCTION fuzz_count();
  CREATE TRIGGER fuzz_repayments AFTER INSERT OR UPDATE OR DELETE ON repayments FOR EACH ROW EXECUTE FUNCTION fuzz_count();`;
const changes = async () => (await t.pool.query<{ n: string }>('SELECT n FROM fuzz_changes')).rows[0]!.n;

beforeAll(async () => {
  t = await buildTestApp({ AUTH_REQUIRED: 'true', LOG_LEVEL: 'silent', DATABASE_POOL_MAX: '4' });
  for (const role of ROLES) {
    secrets[role] = generateKey('test');
    await insertKey(t.pool, secrets[role], { name: role, role });
  }
  // Loans in every state, so that actions meet real rows: made by the clerk, decided by the officer.
  const post = (url: string, key: string, body: unknown, headers: Record<string, string> = {}) =>
    t.app.inject({
      method: 'POST',
      url,
      headers: { ...JSON_HEADERS, authorization: `Bearer ${key}`, ...headers },
      payload: body as object,
    });
  for (let i = 0; i < 6; i++) {
    const id = (await post('/api/loans', secrets.clerk!, TERMS)).json().id as string;
    loanIds.push(id);
    if (i >= 1) await post(`/api/loans/${id}/approve`, secrets.officer!, {});
    if (i >= 2)
      await post(`/api/loans/${id}/disburse`, secrets.officer!, {}, { 'idempotency-key': `fuzz-setup-${i}` });
  }
  await t.pool.query(CHANGE_COUNTER);

  const document = (await t.app.inject({ url: '/openapi.json' })).json();
  operations = Object.entries(
    document.paths as Record<
      string,
      Record<
        string,
        { parameters?: Parameter[]; requestBody?: { content: Record<string, { schema: Schema }> } }
      >
    >,
  ).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({
      method: method.toUpperCase(),
      path,
      parameters: operation.parameters ?? [],
      body: operation.requestBody?.content['application/json']?.schema,
    })),
  );
});
afterAll(() => t.close());

const junk = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    '\ud800',
    '-1',
    '1e309',
    '0x10',
    '9'.repeat(400),
    "'; DROP TABLE loans; --",
    '%zz',
  ),
);
const jsonJunk = fc.oneof(
  junk,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(junk, { maxLength: 3 }),
  fc.object({ maxDepth: 1 }),
);

/** Values the schema accepts (mostly), for building requests that get past validation. */
function valid(schema: Schema): fc.Arbitrary<unknown> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  // The documented examples are values the service accepts in context (a real currency, an amount with
  // its digits), which random strings matching a pattern rarely are.
  if (schema.examples?.length) {
    return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...schema.examples) }, generated(schema));
  }
  return generated(schema);
}

function generated(schema: Schema): fc.Arbitrary<unknown> {
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.includes('object')) {
    const properties = schema.properties ?? {};
    const required = new Set(schema.required ?? []);
    return fc.record(
      Object.fromEntries(Object.entries(properties).map(([name, property]) => [name, valid(property)])),
      { requiredKeys: Object.keys(properties).filter((name) => required.has(name)) },
    );
  }
  if (types.includes('integer'))
    return fc.integer({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6 });
  if (schema.format === 'date')
    return fc
      .date({ min: new Date('2000-01-01'), max: new Date(), noInvalidDate: true })
      .map((d) => d.toISOString().slice(0, 10));
  if (schema.format === 'date-time')
    return fc
      .date({ min: new Date('0001-01-01'), max: new Date('9999-12-31'), noInvalidDate: true })
      .map((d) => d.toISOString());
  if (schema.pattern) {
    const strings = fc
      .stringMatching(new RegExp(schema.pattern))
      .filter((s) => s.length <= (schema.maxLength ?? 1000));
    return types.includes('number') ? fc.oneof(strings, fc.integer({ min: 0, max: 100_000 })) : strings;
  }
  return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 60, 600) });
}

/** Valid most of the time, anything some of the time. */
const value = (schema: Schema) =>
  fc.oneof({ weight: 4, arbitrary: valid(schema) }, { weight: 1, arbitrary: jsonJunk });
const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
/** Percent-encodes like a client would; a lone surrogate becomes the invalid UTF-8 it would be sent as. */
const encode = (v: string) => {
  try {
    return encodeURIComponent(v);
  } catch {
    return '%ED%A0%80';
  }
};

function body(schema: Schema | undefined): fc.Arbitrary<string | undefined> {
  if (!schema) return fc.option(fc.constantFrom('{}', '{"x":1}'), { nil: undefined });
  const properties = schema.properties ?? {};
  const object = fc.record(
    Object.fromEntries(Object.entries(properties).map(([name, property]) => [name, value(property)])),
    { requiredKeys: [] },
  );
  return fc.oneof(
    { weight: 6, arbitrary: object.map((o) => JSON.stringify(o)) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(object, fc.string({ minLength: 1, maxLength: 8 }), jsonJunk)
        .map(([o, k, v]) => JSON.stringify({ ...o, [k]: v })),
    },
    { weight: 1, arbitrary: jsonJunk.map((v) => JSON.stringify(v) ?? 'null') },
    {
      weight: 1,
      arbitrary: fc.constantFrom('', '{', '{"amount": 1e400}', '[]', 'null', '{"__proto__":{"x":1}}'),
    },
  );
}

function request(operation: Operation) {
  const id = fc.oneof(fc.constantFrom(...loanIds), fc.uuid(), junk.map(encode));
  const query: fc.Arbitrary<(string | undefined)[]> = fc.tuple(
    ...operation.parameters
      .filter((p) => p.in === 'query')
      .map((p) =>
        fc.option(
          value(p.schema).map((v) => `${p.name}=${encode(text(v))}`),
          { nil: undefined },
        ),
      ),
  );
  const auth = fc.constantFrom<Record<string, string>>(
    {},
    { authorization: `Bearer ${generateKey('test')}` },
    { authorization: 'Bearer' },
    ...ROLES.map((role) => ({ authorization: `Bearer ${secrets[role]}` })),
    ...ROLES.map((role) => ({ 'x-api-key': secrets[role]! })),
  );
  const extraHeaders = fc.record(
    {
      'idempotency-key': fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/), junk),
      'if-match': fc.oneof(fc.constant('*'), junk),
      'content-type': fc.constantFrom(
        'application/json',
        'text/plain',
        'application/json; charset=latin1',
        'application/x-www-form-urlencoded',
      ),
      'x-request-id': junk,
    },
    { requiredKeys: [] },
  );
  return fc
    .record({ id, query, auth, extraHeaders, payload: body(operation.body) })
    .map(({ id, query, auth, extraHeaders, payload }) => {
      const search = query.filter((part) => part !== undefined).join('&');
      const headers: Record<string, string> = { ...auth };
      for (const [name, value] of Object.entries(extraHeaders)) {
        // Node refuses to send some bytes in a header at all; those never reach a server.
        if (/^[\t\x20-\x7e]*$/.test(value)) headers[name] = value;
      }
      if (payload !== undefined && headers['content-type'] === undefined)
        headers['content-type'] = 'application/json';
      return {
        method: operation.method,
        url: `${operation.path.replace('{id}', id)}${search ? `?${search}` : ''}`,
        headers,
        payload,
      };
    });
}

describe('requests generated from the OpenAPI document', () => {
  it(`answer ${RUNS} requests with no 5xx, problem+json for every error, and no change when refused`, async () => {
    const requests = fc.oneof(...operations.map(request));
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(requests, async (sent) => {
        const before = await changes();
        const response = await t.app.inject({ ...sent, method: sent.method as 'GET' | 'POST' });
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
        expect(response.statusCode, `${sent.method} ${sent.url}: ${response.body}`).toBeLessThan(500);
        if (response.statusCode >= 400) {
          expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
          const problem = response.json();
          expect(problem).toMatchObject({
            status: response.statusCode,
            type: expect.stringMatching(/^https:\/\/branchloans\.com\/problems\//),
          });
          expect(response.headers['x-request-id']).toEqual(expect.any(String));
          expect(problem.request_id).toBe(response.headers['x-request-id']);
          expect(
            await changes(),
            `${sent.method} ${sent.url} changed rows and answered ${response.statusCode}`,
          ).toBe(before);
        }
      }),
      { numRuns: RUNS },
    );
    // The generated traffic reaches every outcome that matters, not only validation errors.
    for (const status of [200, 201, 400, 401, 403, 404, 409])
      expect(statuses.get(status) ?? 0, `status ${status}`).toBeGreaterThan(0);
  }, 600_000);
});
