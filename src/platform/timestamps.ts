// PostgreSQL's timestamptz has no year 0 and JavaScript's Date reaches years it cannot store, so an
// instant taken from a client (a filter, a cursor) is held to the range both handle the same way.
export const EARLIEST_INSTANT = '0001-01-01T00:00:00.000Z';
export const LATEST_INSTANT = '9999-12-31T23:59:59.999Z';
const EARLIEST_MS = Date.parse(EARLIEST_INSTANT);
const LATEST_MS = Date.parse(LATEST_INSTANT);

/** True when `value` parses (leap seconds do not) to an instant from 0001-01-01 to 9999-12-31 UTC. */
export function isStorableInstant(value: string): boolean {
  const ms = Date.parse(value);
  return ms >= EARLIEST_MS && ms <= LATEST_MS;
}
