import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../src/loans/cursor.ts';

const position = { createdAt: '2026-11-21T11:29:57.123Z', id: 'cd4b1589-7921-4096-96ea-397f65b201cd' };
const raw = (parts: unknown) => Buffer.from(JSON.stringify(parts)).toString('base64url');

describe('cursor', () => {
  it('round-trips a keyset position through an opaque url-safe string', () => {
    const cursor = encodeCursor(position);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual(position);
  });

  it.each([
    ['not base64 JSON', 'garbage'],
    ['an object', raw({ createdAt: position.createdAt, id: position.id })],
    ['three parts', raw([position.createdAt, position.id, 1])],
    ['a number for the time', raw([1, position.id])],
    ['an upper-case id', raw([position.createdAt, position.id.toUpperCase()])],
    ['a time without milliseconds', raw(['2026-11-21T11:29:57Z', position.id])],
    ['an offset instead of Z', raw(['2026-11-21T11:29:57.123+00:00', position.id])],
    ['an impossible date', raw(['2026-02-30T00:00:00.000Z', position.id])],
    ['year 0000', raw(['0000-01-01T00:00:00.000Z', position.id])],
    ['an expanded year', raw(['+275760-09-13T00:00:00.000Z', position.id])],
  ])('refuses %s', (_what, cursor) => {
    expect(decodeCursor(cursor)).toBeUndefined();
  });
});
