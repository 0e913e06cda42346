import cluster from 'node:cluster';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import pino, { type Logger, type LoggerOptions } from 'pino';
import type { Config } from '../config.ts';
import { ANONYMOUS } from './auth.ts';
import { requestPath, routeLabel } from './http.ts';

const REDACTED = '[redacted]';

// Credentials in a URL's user info: scheme://user:PASSWORD@host. The line is JSON text, so a match
// never crosses an unescaped quote (it stays inside one string) and takes escapes (\" \\) whole.
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/(?:[^\s"\\:/@]|\\.)*:)(?:[^\s"\\@]|\\.)*@/gi;
// key=value connection strings (libpq "host=db password=…", JDBC/ADO "…;Password=…").
const KEYWORD_PASSWORD = /\b(password|passwd|pwd)=(?:[^\s"\\&;]|\\.)*/gi;
// Cheap test first: almost every line has neither.
const MAY_HOLD_PASSWORD = /:\/\/|passw|pwd=/i;

/** A log line with the passwords of any connection strings in it (message, error, stack, field) replaced. */
export function redactConnectionStrings(line: string): string {
  if (!MAY_HOLD_PASSWORD.test(line)) return line;
  return line.replace(URL_PASSWORD, `$1${REDACTED}@`).replace(KEYWORD_PASSWORD, `$1=${REDACTED}`);
}

// Credential headers in any logged `headers` object, and any `password` field. Redacted in the finished
// line (pino's own redaction copies every logged object, a cost on each request's line); only the rare
// line that has such a field is parsed.
const CREDENTIAL_HEADERS = new Set(['authorization', 'x-api-key', 'cookie', 'set-cookie']);
const MAY_HOLD_SECRET_FIELD = /"(?:headers|password)":/;

function redactFields(value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  const fields = value as Record<string, unknown>;
  for (const [key, field] of Object.entries(fields)) {
    if (key === 'password') fields[key] = REDACTED;
    else if (key === 'headers' && typeof field === 'object' && field !== null) {
      const headers = field as Record<string, unknown>;
      for (const name of Object.keys(headers)) {
        if (CREDENTIAL_HEADERS.has(name.toLowerCase())) headers[name] = REDACTED;
      }
    } else redactFields(field);
  }
}

/** A finished log line without credentials: secret fields and the passwords of connection strings. */
export function redactLine(line: string): string {
  let redacted = line;
  if (MAY_HOLD_SECRET_FIELD.test(line)) {
    try {
      const fields: unknown = JSON.parse(line);
      redactFields(fields);
      redacted = `${JSON.stringify(fields)}\n`;
    } catch {
      // Not one JSON object (it always is from pino): the connection-string pass below still runs.
    }
  }
  return redactConnectionStrings(redacted);
}

// The server writes its lines to stdout in blocks rather than one write (and one wake-up of whatever
// reads the pipe) per request line: a block goes out once this much is buffered, and at least this often.
const LOG_BLOCK_BYTES = 8192;
const LOG_FLUSH_MS = 100;

/**
 * The server's logger. Lines still buffered are written synchronously when the process exits (process.exit,
 * an uncaught exception); a SIGKILL or an out-of-memory abort loses at most the last LOG_FLUSH_MS of them.
 * Unbuffered: pretty output (development), and cluster workers (WEB_CONCURRENCY), which share stdout with
 * each other — a block larger than a pipe's atomic write could interleave with another worker's mid-line.
 */
export function serverLogger(config: Config): Logger {
  if (config.log.pretty || cluster.isWorker) return pino(loggerOptions(config));
  const stdout = pino.destination({
    dest: 1,
    sync: true,
    minLength: LOG_BLOCK_BYTES,
    periodicFlush: LOG_FLUSH_MS,
  });
  process.on('exit', () => {
    try {
      stdout.flushSync();
    } catch {
      // stdout is gone (EPIPE): nothing can be written any more.
    }
  });
  return pino(loggerOptions(config), stdout);
}

/** The `time` field: an ISO 8601 string, formatted once per millisecond (a server logs many lines in one). */
function isoTimeField(): () => string {
  let formattedAt = Number.NaN;
  let field = '';
  return () => {
    const now = Date.now();
    if (now !== formattedAt) {
      formattedAt = now;
      field = `,"time":"${new Date(now).toISOString()}"`;
    }
    return field;
  };
}

export function loggerOptions(config: Config): LoggerOptions {
  return {
    level: config.log.level,
    timestamp: isoTimeField(),
    formatters: { level: (label) => ({ level: label }) },
    // The finished line is the one place that sees everything, including the message, an error's
    // message and stack, and what serializers produced, so credentials are scrubbed there.
    hooks: { streamWrite: redactLine },
    ...(config.log.pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
          },
        }
      : {}),
  };
}

/** The one line a request leaves when it completes: the route template rather than the raw path. */
export function logRequestCompleted(request: FastifyRequest, status: number, durationMs: number): void {
  request.log.info(
    {
      method: request.method,
      route: routeLabel(request),
      path: requestPath(request),
      status,
      duration_ms: Math.round(durationMs * 100) / 100,
      // Requests failed by the router (app.ts) get a bare request object without decorations.
      actor: request.actor ?? ANONYMOUS,
      // The peer's address, or the forwarded client's when the proxy is trusted (TRUST_PROXY).
      client_ip: request.ip,
    },
    'request completed',
  );
}

export function registerRequestLogging(app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => {
    logRequestCompleted(request, reply.statusCode, reply.elapsedTime);
  });
}
