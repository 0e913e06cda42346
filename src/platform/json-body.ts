import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parse } from 'lossless-json';
import { AppError } from './errors.ts';

/**
 * A JSON number becomes a JS number only when that loses nothing: its shortest decimal form is exactly
 * the literal the client sent. Otherwise (trailing fraction zeros, exponents, more digits than a double
 * holds) it stays the literal string, so money is never rounded by parsing and `100.100` has three
 * fraction digits as `"100.100"` does; the schemas then judge it as they judge a string.
 */
function parseNumberLiteral(literal: string): number | string {
  const value = Number(literal);
  return String(value) === literal ? value : literal;
}

export function parseJsonBody(text: string): unknown {
  try {
    return parse(text, null, parseNumberLiteral);
  } catch (error) {
    // The parser recurses per level: past the stack's depth it fails with the engine's own message.
    const reason =
      error instanceof RangeError
        ? 'nested too deeply'
        : error instanceof Error
          ? error.message
          : 'parse error';
    throw new AppError('invalid-json', { detail: `The request body is not valid JSON: ${reason}` });
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/gi;

const UTF8_NAME = /^utf-?8$/i;

/** Refuses a body that is not JSON text as sent: a content coding, or a charset other than UTF-8. */
function checkReadable(request: FastifyRequest): void {
  const coding = request.headers['content-encoding'];
  if (coding !== undefined && coding.trim().toLowerCase() !== 'identity') {
    throw new AppError('unsupported-media-type', {
      detail: `Content-Encoding ${coding} is not supported; send the body uncompressed`,
    });
  }
  for (const [, charset = ''] of (request.headers['content-type'] ?? '').matchAll(CHARSET)) {
    if (!UTF8_NAME.test(charset)) {
      throw new AppError('unsupported-media-type', {
        detail: `charset=${charset} is not supported; send the body as application/json in UTF-8`,
      });
    }
  }
}

function decodeUtf8(body: Buffer): string {
  try {
    return UTF8.decode(body);
  } catch {
    throw new AppError('invalid-json', { detail: 'The request body is not valid UTF-8' });
  }
}

/**
 * The one body parser: JSON in UTF-8, numbers kept exact. An empty body is no body, as when none is
 * sent: routes whose body is optional take it as `{}`, the others refuse it in validation.
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    try {
      checkReadable(request);
      const bytes = body as Buffer;
      done(null, bytes.length === 0 ? undefined : parseJsonBody(decodeUtf8(bytes)));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}
