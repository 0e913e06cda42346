// What a client sees when its request breaks HTTP itself (Node's parser and timeouts answer before
// Fastify routes anything), spoken over raw sockets because app.inject() never reaches the parser.
import { type AddressInfo, connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBLEM_BASE } from '../../src/platform/errors.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 3000;
const KEEP_ALIVE_TIMEOUT_MS = 1000;
// Node looks for expired requests once a second (app.ts), so an answer may come up to that much later.
const CHECK_INTERVAL_MS = 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let t: TestApp;
let port: number;
beforeAll(async () => {
  t = await buildTestApp({
    HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    HTTP_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_TIMEOUT_MS),
  });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  port = (t.app.server.address() as AddressInfo).port;
});
afterAll(() => t.close());

interface RawResponse {
  statusLine: string;
  headers: Record<string, string>;
  body: string;
  /** Whether the server closed the connection before the wait was over. */
  closed: boolean;
  /** From the connection's start to its close (or the end of the wait). */
  elapsedMs: number;
}

function parseResponse(raw: string): Pick<RawResponse, 'statusLine' | 'headers' | 'body'> {
  const headEnd = raw.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = (headEnd === -1 ? raw : raw.slice(0, headEnd)).split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
    }),
  );
  return { statusLine, headers, body: headEnd === -1 ? '' : raw.slice(headEnd + 4) };
}

/** Opens a connection, lets `talk` write to it, and collects the answer until the server closes it. */
function exchange(talk: (socket: Socket) => void, waitMs = 5000): Promise<RawResponse> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: '127.0.0.1', port });
    let started = 0;
    const finish = (closed: boolean) => {
      clearTimeout(wait);
      socket.destroy();
      const raw = Buffer.concat(chunks).toString('utf8');
      resolve({ ...parseResponse(raw), closed, elapsedMs: performance.now() - started });
    };
    const wait = setTimeout(() => finish(false), waitMs);
    socket.on('connect', () => {
      started = performance.now();
      talk(socket);
    });
    socket.on('data', (chunk) => chunks.push(chunk));
    // A reset after the answer is how some of these connections end; what arrived before it counts.
    socket.on('error', () => {});
    socket.on('close', () => finish(true));
  });
}

function send(request: string): (socket: Socket) => void {
  return (socket) => socket.write(request);
}

/** Writes the head of a request, then one byte of its body every 200 ms for as long as it is open. */
function dribble(head: string): (socket: Socket) => void {
  return (socket) => {
    socket.write(head);
    const drip = setInterval(() => socket.writable && socket.write('x'), 200);
    socket.on('close', () => clearInterval(drip));
  };
}

function expectProblem(
  response: RawResponse,
  expected: { status: string; type: string; title: string; detail: string; instance: string },
): void {
  const code = Number(expected.status.split(' ')[0]);
  expect(response.statusLine).toBe(`HTTP/1.1 ${expected.status}`);
  expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  expect(response.headers.connection).toBe('close');
  // Security headers, as on every other answer.
  expect(response.headers['x-content-type-options']).toBe('nosniff');
  expect(Number(response.headers['content-length'])).toBe(Buffer.byteLength(response.body));
  expect(JSON.parse(response.body)).toEqual({
    type: PROBLEM_BASE + expected.type,
    title: expected.title,
    status: code,
    detail: expected.detail,
    instance: expected.instance,
    request_id: response.headers['x-request-id'],
  });
  expect(response.closed).toBe(true);
}

describe('requests that are not valid HTTP', () => {
  it('answers 400 problem+json to Content-Length together with Transfer-Encoding', async () => {
    const response = await exchange(
      send(
        'POST /api/loans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      ),
    );
    expectProblem(response, {
      status: '400 Bad Request',
      type: 'malformed-request',
      title: 'Malformed HTTP request',
      detail: "The request is not valid HTTP/1.1: Transfer-Encoding can't be present with Content-Length",
      instance: '/',
    });
    expect(response.headers['x-request-id']).toMatch(UUID);
  });

  it.each([
    ['a bare CR', '\r'],
    ['a NUL', '\0'],
  ])('answers 400 problem+json to a header value holding %s', async (_name, character) => {
    const response = await exchange(
      send(`GET /api/loans HTTP/1.1\r\nHost: x\r\nX-Note: a${character}b\r\n\r\n`),
    );
    expectProblem(response, {
      status: '400 Bad Request',
      type: 'malformed-request',
      title: 'Malformed HTTP request',
      detail: expect.stringMatching(/^The request is not valid HTTP\/1\.1: .+/),
      instance: '/',
    });
    expect(response.headers['x-request-id']).toMatch(UUID);
  });

  it("answers a body that breaks chunked encoding with the request path and the caller's request id", async () => {
    const response = await exchange(
      send(
        'POST /api/loans?x=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          'X-Request-ID: bad-chunk-1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      ),
    );
    expectProblem(response, {
      status: '400 Bad Request',
      type: 'malformed-request',
      title: 'Malformed HTTP request',
      detail: 'The request is not valid HTTP/1.1: Invalid character in chunk size',
      instance: '/api/loans',
    });
    expect(response.headers['x-request-id']).toBe('bad-chunk-1');
  });

  it('does not blame a good request for a malformed one pipelined behind it', async () => {
    const response = await exchange(
      send(
        'GET /api/nothing-here HTTP/1.1\r\nHost: x\r\nX-Request-ID: good-1\r\n\r\n' +
          'GET /api/loans HTTP/1.1\r\nHost: x\r\nX-Note: a\0b\r\n\r\n',
      ),
    );
    expect(response.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(response.headers['x-request-id']).toMatch(UUID);
    expect(JSON.parse(response.body)).toMatchObject({
      instance: '/',
      request_id: response.headers['x-request-id'],
    });
  });

  it('answers 431 problem+json to a header section over 16 KiB', async () => {
    const response = await exchange(
      send(`GET /api/loans HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`),
    );
    expectProblem(response, {
      status: '431 Request Header Fields Too Large',
      type: 'request-header-fields-too-large',
      title: 'Request header fields too large',
      detail: 'The request header section exceeds 16384 bytes',
      instance: '/',
    });
    expect(response.headers['x-request-id']).toMatch(UUID);
  });

  it('logs one info line with the parser error code and the request id it answered with', async () => {
    const response = await exchange(
      send(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`),
    );
    const requestId = response.headers['x-request-id'];
    expect(t.logs.filter((line) => line.request_id === requestId)).toEqual([
      expect.objectContaining({
        level: 'info',
        msg: 'client error answered',
        code: 'HPE_HEADER_OVERFLOW',
        status: 431,
        request_id: requestId,
      }),
    ]);
  });
});

// A body the service would accept: a refusal that creates nothing is the refusal, not the body.
const VALID_CREATE = JSON.stringify({
  borrower_id: 'b',
  amount: '1.00',
  currency: 'INR',
  term_months: 1,
  interest_rate_apr: '0',
});

describe('requests Node would refuse with an empty body', () => {
  it('answers 400 problem+json, with the usual headers, to an HTTP/1.1 request without Host', async () => {
    const response = await exchange(send('GET /liveness HTTP/1.1\r\nConnection: close\r\n\r\n'));
    expectProblem(response, {
      status: '400 Bad Request',
      type: 'malformed-request',
      title: 'Malformed HTTP request',
      detail: 'An HTTP/1.1 request must have a Host header',
      instance: '/liveness',
    });
    expect(response.headers['x-request-id']).toMatch(UUID);
    expect(response.headers['x-content-type-options']).toBe('nosniff');
  });

  it.each([
    [
      'two Host fields',
      'Host: a.example\r\nHost: b.example\r\n',
      'The request has more than one host header',
    ],
    ['an invalid Host', 'Host: a b\r\n', 'The Host header is not a valid host'],
    [
      'two Content-Type fields',
      'Host: x\r\nContent-Type: application/json\r\nContent-Type: text/plain\r\n',
      'The request has more than one content-type header',
    ],
    [
      'two Authorization fields',
      'Host: x\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n',
      'The request has more than one authorization header',
    ],
    [
      'Authorization and X-API-Key together',
      'Host: x\r\nAuthorization: Bearer a\r\nX-API-Key: b\r\n',
      'Send the API key in Authorization or in X-API-Key, not both',
    ],
  ])('answers 400 problem+json to %s, and creates nothing', async (_name, fields, detail) => {
    const before = await t.pool.query('SELECT count(*) FROM loans');
    const response = await exchange(
      send(
        `POST /api/loans HTTP/1.1\r\n${fields}${fields.includes('Content-Type') ? '' : 'Content-Type: application/json\r\n'}` +
          `Content-Length: ${VALID_CREATE.length}\r\nConnection: close\r\n\r\n${VALID_CREATE}`,
      ),
    );
    expectProblem(response, {
      status: '400 Bad Request',
      type: 'malformed-request',
      title: 'Malformed HTTP request',
      detail,
      instance: '/api/loans',
    });
    expect((await t.pool.query('SELECT count(*) FROM loans')).rows).toEqual(before.rows);
  });

  it('answers 400 to an HTTP/1.0 request without Host that sends two keys', async () => {
    const response = await exchange(
      send('GET /api/loans HTTP/1.0\r\nAuthorization: Bearer a\r\nX-API-Key: b\r\n\r\n'),
    );
    expect(response.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(response.body).detail).toBe(
      'Send the API key in Authorization or in X-API-Key, not both',
    );
  });

  it('treats an absolute-form target (GET http://host/path) as its path', async () => {
    const id = '6f1c4b7e-1111-4111-8111-111111111111';
    const refused = await exchange(
      send(`GET http://x/api/loans/${id}/approve HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    expect(refused.statusLine).toBe('HTTP/1.1 405 Method Not Allowed');
    expect(refused.headers.allow).toBe('POST');
    expect(JSON.parse(refused.body).instance).toBe(`/api/loans/${id}/approve`);
    const list = await exchange(
      send('GET http://x/api/loans?limit=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
    );
    expect(list.statusLine).toBe('HTTP/1.1 200 OK');
    expect(list.headers['cache-control']).toBe('no-store');
  });

  it('serves an HTTP/1.0 request without Host', async () => {
    const response = await exchange(send('GET /liveness HTTP/1.0\r\n\r\n'));
    expect(response.statusLine).toBe('HTTP/1.1 200 OK');
    expect(JSON.parse(response.body)).toEqual({ status: 'alive' });
  });

  it('answers 417 problem+json to an Expect other than 100-continue, and creates nothing', async () => {
    const before = await t.pool.query('SELECT count(*) FROM loans');
    const response = await exchange(
      send(
        'POST /api/loans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: bogus\r\n' +
          `Content-Length: ${VALID_CREATE.length}\r\nConnection: close\r\n\r\n${VALID_CREATE}`,
      ),
    );
    expectProblem(response, {
      status: '417 Expectation Failed',
      type: 'expectation-failed',
      title: 'Expectation failed',
      detail: 'The only expectation supported is Expect: 100-continue',
      instance: '/api/loans',
    });
    expect((await t.pool.query('SELECT count(*) FROM loans')).rows).toEqual(before.rows);
  });
});

describe('clients that send too slowly', () => {
  it('answers 408 problem+json and closes the connection when the body dribbles past the request timeout', async () => {
    const response = await exchange(
      dribble(
        'POST /api/loans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          'X-Request-ID: slow-body-1\r\nContent-Length: 100\r\n\r\n',
      ),
    );
    expectProblem(response, {
      status: '408 Request Timeout',
      type: 'request-timeout',
      title: 'Request timeout',
      detail: `The request was not received in time: headers are allowed ${HEADERS_TIMEOUT_MS} ms and the whole request ${REQUEST_TIMEOUT_MS} ms`,
      instance: '/api/loans',
    });
    // The client's own id, as for any other response to a request the server has read the head of.
    expect(response.headers['x-request-id']).toBe('slow-body-1');
    expect(response.elapsedMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(response.elapsedMs).toBeLessThan(REQUEST_TIMEOUT_MS + CHECK_INTERVAL_MS + 500);
  });

  it('answers 408 problem+json when the header section never ends, after the headers timeout', async () => {
    const response = await exchange(send('POST /api/loans HTTP/1.1\r\nHost: x\r\n'));
    expectProblem(response, {
      status: '408 Request Timeout',
      type: 'request-timeout',
      title: 'Request timeout',
      detail: `The request was not received in time: headers are allowed ${HEADERS_TIMEOUT_MS} ms and the whole request ${REQUEST_TIMEOUT_MS} ms`,
      instance: '/',
    });
    expect(response.headers['x-request-id']).toMatch(UUID);
    expect(response.elapsedMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(response.elapsedMs).toBeLessThan(REQUEST_TIMEOUT_MS);
  });

  it('closes an idle keep-alive connection after the keep-alive timeout', async () => {
    const response = await exchange(send('GET /api/nothing-here HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(response.statusLine).toBe('HTTP/1.1 404 Not Found');
    expect(response.headers['keep-alive']).toBe(`timeout=${KEEP_ALIVE_TIMEOUT_MS / 1000}`);
    expect(response.closed).toBe(true);
    expect(response.elapsedMs).toBeGreaterThanOrEqual(KEEP_ALIVE_TIMEOUT_MS);
    // Node closes a second after the timeout it advertises, so that clients give up on the socket first.
    expect(response.elapsedMs).toBeLessThan(KEEP_ALIVE_TIMEOUT_MS + 2000);
  });
});

describe('a client that goes away mid-body', () => {
  it('is logged as a client that left, not as a database outage', async () => {
    await exchange((socket) => {
      socket.write(
        'POST /api/loans HTTP/1.1\r\nHost: x\r\nX-Request-ID: gone-mid-body\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"bo',
      );
      setTimeout(() => socket.destroy(), 100);
    }, 1000);
    const ofThisRequest = () =>
      t.logs.filter((line) => line.request_id === 'gone-mid-body').map((line) => line.msg);
    await expect.poll(ofThisRequest).toContain('client closed the connection before its request was read');
    expect(ofThisRequest()).not.toContain('database unavailable');
  });
});
