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

/** An instant as the API writes it (what Date#toISOString gives): "2026-12-02T10:14:21.123Z". */
export type Rfc3339 = string;

/**
 * A client's RFC 3339 instant (any offset, any fraction) in the API's own form, which PostgreSQL reads
 * as it is: it refuses offsets past ±15:59, which RFC 3339 allows.
 */
export const inUtc = (instant: string): Rfc3339 => new Date(instant).toISOString();

// DateStyle ISO, any session time zone: "2026-12-02 15:44:21.123456+05:30", "0044-03-15 12:00:00+00:19:32 BC".
const PG_TIMESTAMPTZ =
  /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?( BC)?$/;

/** Three digits of a fraction of a second, truncated as Date truncates it. */
const millis = (fraction: string | undefined) => `${fraction ?? ''}000`.slice(0, 3);

/**
 * A timestamptz as PostgreSQL prints it → the API's form, without building a Date in the common case
 * (a UTC session, a four-digit year). The app's pools read every timestamptz with it (database.ts).
 * Text that is no instant ('infinity') is returned as it is.
 */
export function timestamptzToRfc3339(text: string): Rfc3339 {
  if (text.endsWith('+00') && text.length >= 22 && text[4] === '-') {
    const fraction = text.length > 22 ? text.slice(20, -3) : undefined;
    return `${text.slice(0, 10)}T${text.slice(11, 19)}.${millis(fraction)}Z`;
  }
  const match = PG_TIMESTAMPTZ.exec(text);
  if (!match) return text;
  const [, year, month, day, hours, minutes, seconds, fraction, sign, offsetH, offsetM, offsetS, bc] = match;
  const instant = new Date(0);
  instant.setUTCFullYear(bc ? 1 - Number(year) : Number(year), Number(month) - 1, Number(day));
  instant.setUTCHours(Number(hours), Number(minutes), Number(seconds), Number(millis(fraction)));
  const offsetSeconds = Number(offsetH) * 3600 + Number(offsetM ?? 0) * 60 + Number(offsetS ?? 0);
  return new Date(instant.getTime() - (sign === '-' ? -1 : 1) * offsetSeconds * 1000).toISOString();
}
