// Errors Node's HTTP server meets while it reads a request, before Fastify could answer it: a message the
// parser refuses, a header section over the limit, a request that does not arrive in time. Fastify has no
// reply to send for them, so the problem+json answer is written on the socket by hand.
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, maxHeaderSize, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionError, FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import { AppError } from './errors.ts';
import { problemResponse } from './http-errors.ts';
import { requestIdFrom } from './request-id.ts';
import { HEADERS_WITHOUT_HOOKS } from './security-headers.ts';

type HttpTimeouts = Config['http'];

/** The problem to answer with; undefined when the connection itself failed (a reset) and nothing can be said. */
function problemForClientError(error: ConnectionError, timeouts: HttpTimeouts): AppError | undefined {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new AppError('request-timeout', {
      detail: `The request was not received in time: headers are allowed ${timeouts.headersTimeoutMs} ms and the whole request ${timeouts.requestTimeoutMs} ms`,
    });
  }
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return new AppError('request-header-fields-too-large', {
      detail: `The request header section exceeds ${maxHeaderSize} bytes`,
    });
  }
  if (error.code?.startsWith('HPE_')) {
    // llhttp's reasons are fixed phrases ("Invalid header value char"), never bytes of the request.
    const reason = (error as ConnectionError & { reason?: unknown }).reason;
    return new AppError('malformed-request', {
      detail: `The request is not valid HTTP/1.1${typeof reason === 'string' ? `: ${reason}` : ''}`,
    });
  }
  return undefined;
}

/**
 * The response Node holds for the oldest unanswered request on this socket. `_httpMessage` is internal,
 * but it is what Node's own clientError fallback consults to decide whether an answer may be written.
 */
function pendingResponse(socket: Socket): ServerResponse | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/** The request the error is about when Node had parsed its head and was still reading its body. */
function requestBeingRead(response: ServerResponse | undefined): IncomingMessage | undefined {
  // A complete request is an earlier one pipelined ahead of the message that failed.
  return response && !response.req.complete ? response.req : undefined;
}

function rawHttpResponse(problem: AppError, path: string, requestId: string): string {
  const { status, headers, body } = problemResponse(problem, path, requestId);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    `Date: ${new Date().toUTCString()}`,
    ...Object.entries({ ...HEADERS_WITHOUT_HOOKS, ...headers }).map(([name, value]) => `${name}: ${value}`),
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-ID: ${requestId}`,
    'Connection: close',
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/**
 * Fastify's clientErrorHandler (called with the instance as `this`): answers problem+json when the
 * protocol still allows an answer (the socket is writable and no response has started), then closes.
 */
export function problemClientErrorHandler(timeouts: HttpTimeouts) {
  return function onClientError(this: FastifyInstance, error: ConnectionError, socket: Socket): void {
    const problem = problemForClientError(error, timeouts);
    const response = pendingResponse(socket);
    if (!problem || !socket.writable || response?.headersSent) {
      this.log.debug({ code: error.code }, 'client error not answered');
      socket.destroy();
      return;
    }
    const request = requestBeingRead(response);
    // A request whose head was parsed keeps the caller's X-Request-ID and its path; before that
    // there is neither.
    const requestId = request ? requestIdFrom(request) : randomUUID();
    const path = request?.url?.split('?')[0] || '/';
    // info, not warn: scanners and flaky mobile clients produce these all day.
    this.log.info(
      {
        request_id: requestId,
        code: error.code,
        status: problem.status,
        path,
        peer_address: socket.remoteAddress,
      },
      'client error answered',
    );
    socket.end(rawHttpResponse(problem, path, requestId), () => socket.destroy());
  };
}

/** Requests that asked for an expectation other than 100-continue, which no route can meet. */
const unmetExpectations = new WeakSet<IncomingMessage>();

// Fields a request may carry once: Node would keep the first and drop the rest without a word.
const SINGLE_FIELDS = new Set(['host', 'content-type', 'authorization', 'x-api-key']);
// RFC 3986 host (a reg-name, an IPv4 address or a bracketed IP literal) and an optional port.
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::[0-9]*)?$/;

function repeatedField(rawHeaders: string[]): string | undefined {
  const seen = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!SINGLE_FIELDS.has(name)) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/** Why the request's header section is not one the service can act on, if it is not (RFC 9112 §3.2). */
function malformedHeaders(request: FastifyRequest): string | undefined {
  const { host } = request.headers;
  if (host === undefined && request.raw.httpVersion === '1.1')
    return 'An HTTP/1.1 request must have a Host header';
  if (host !== undefined && !HOST.test(host)) return 'The Host header is not a valid host';
  const repeated = repeatedField(request.raw.rawHeaders);
  if (repeated) return `The request has more than one ${repeated} header`;
  if (request.headers.authorization !== undefined && request.headers['x-api-key'] !== undefined) {
    return 'Send the API key in Authorization or in X-API-Key, not both';
  }
  return undefined;
}

/**
 * Requests Node's server would refuse itself with an empty body — an HTTP/1.1 request without Host (400),
 * an Expect other than 100-continue (417) — or would serve on a guess: a repeated or invalid Host, a
 * repeated Content-Type or credential, two kinds of credential at once. Node lets them through to the
 * app (app.ts turns off requireHostHeader), and this hook refuses them like any other problem: headers,
 * log line, metrics.
 */
export function registerRequestChecks(app: FastifyInstance): void {
  app.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    unmetExpectations.add(request);
    app.server.emit('request', request, response);
  });
  app.addHook('onRequest', async (request) => {
    const malformed = malformedHeaders(request);
    if (malformed) throw new AppError('malformed-request', { detail: malformed });
    if (unmetExpectations.has(request.raw)) {
      throw new AppError('expectation-failed', {
        detail: 'The only expectation supported is Expect: 100-continue',
      });
    }
  });
}
