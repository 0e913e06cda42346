import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { LoggerOptions } from 'pino';
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

// Credential headers wherever a request's or response's headers are logged.
const CREDENTIAL_PATHS = ['req.headers', 'res.headers', 'headers', '*.headers'].flatMap((headers) => [
  `${headers}.authorization`,
  `${headers}["x-api-key"]`,
  `${headers}.cookie`,
  `${headers}["set-cookie"]`,
]);

export function loggerOptions(config: Config): LoggerOptions {
  return {
    level: config.log.level,
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: [...CREDENTIAL_PATHS, 'password', '*.password'], censor: REDACTED },
    // The finished line is the one place that sees everything, including the message, an error's
    // message and stack, and what serializers produced, so connection strings are scrubbed there.
    hooks: { streamWrite: redactConnectionStrings },
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
