import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { loanIn, TERMS } from '../helpers/loans.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

async function counts() {
  const result = await t.pool.query<{ loans: string; events: string }>(
    'SELECT (SELECT count(*) FROM loans) AS loans, (SELECT count(*) FROM loan_events) AS events',
  );
  return result.rows[0];
}

function postRaw(url: string, headers: Record<string, string>, payload: string | Buffer) {
  return t.app.inject({ method: 'POST', url, headers, payload });
}

const CREATE = JSON.stringify({ ...TERMS, borrower_id: 'body_test' });

describe('reading a request body', () => {
  it.each([
    ['Content-Encoding: gzip', { 'content-encoding': 'gzip' }, 'Content-Encoding gzip is not supported'],
    ['charset=iso-8859-1', { 'content-type': 'application/json; charset=iso-8859-1' }, 'charset=iso-8859-1'],
    [
      'a quoted windows-1252 charset',
      { 'content-type': 'application/json;charset="windows-1252"' },
      'windows-1252',
    ],
    [
      'a second charset',
      { 'content-type': 'application/json;charset=utf-8;charset=latin1' },
      'charset=latin1',
    ],
  ])('answers 415 for %s and creates nothing', async (_name, headers, detail) => {
    const before = await counts();
    const response = await postRaw('/api/loans', { 'content-type': 'application/json', ...headers }, CREATE);
    expect(response.statusCode).toBe(415);
    expect(response.json()).toMatchObject({
      type: 'https://branchloans.com/problems/unsupported-media-type',
      detail: expect.stringContaining(detail),
    });
    expect(await counts()).toEqual(before);
  });

  it.each([
    ['Content-Encoding: identity', { 'content-encoding': 'identity' }],
    ['charset=UTF-8', { 'content-type': 'application/json; charset=UTF-8' }],
    ['charset=utf8', { 'content-type': 'application/json; charset=utf8' }],
  ])('reads a body sent with %s', async (_name, headers) => {
    const response = await postRaw('/api/loans', { 'content-type': 'application/json', ...headers }, CREATE);
    expect(response.statusCode).toBe(201);
  });

  it('refuses bytes that are not UTF-8 with 400 and stores nothing', async () => {
    const id = await loanIn(t.app, 'pending');
    const before = await counts();
    const body = Buffer.concat([Buffer.from('{"note":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    const response = await postRaw(`/api/loans/${id}/approve`, { 'content-type': 'application/json' }, body);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({
      type: 'https://branchloans.com/problems/invalid-json',
      detail: 'The request body is not valid UTF-8',
    });
    expect(await counts()).toEqual(before);
    expect((await t.app.inject({ url: `/api/loans/${id}` })).json().status).toBe('pending');
  });

  it('takes an empty JSON body as no body: an optional one is {}', async () => {
    const id = await loanIn(t.app, 'pending');
    const response = await postRaw(`/api/loans/${id}/approve`, { 'content-type': 'application/json' }, '');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ status: 'approved', approval_note: null });
  });

  it('refuses an empty JSON body where one is required, changing nothing', async () => {
    const before = await counts();
    const response = await postRaw('/api/loans', { 'content-type': 'application/json' }, '');
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({
      type: 'https://branchloans.com/problems/validation-error',
      errors: [{ pointer: '', message: 'the request body must be a JSON object' }],
    });
    expect(await counts()).toEqual(before);
  });
});
