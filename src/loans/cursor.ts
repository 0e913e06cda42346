import { isStorableInstant } from '../platform/timestamps.ts';
import type { KeysetPosition } from './loans.repository.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// Exactly what Date#toISOString writes for the years the database can store.
const ISO_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Opaque to clients: base64url of the last row's (created_at, id). */
export function encodeCursor(position: KeysetPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id])).toString('base64url');
}

/** The position in a cursor this API could have issued; anything else (forged, edited) is undefined. */
export function decodeCursor(cursor: string): KeysetPosition | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [createdAt, id] = value;
  if (typeof createdAt !== 'string' || typeof id !== 'string' || !UUID.test(id)) return undefined;
  if (!ISO_MILLIS.test(createdAt) || !isStorableInstant(createdAt)) return undefined;
  if (new Date(createdAt).toISOString() !== createdAt) return undefined;
  return { createdAt, id };
}
