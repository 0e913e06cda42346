import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPool } from '../../src/platform/database.ts';
import { timestamptzToRfc3339 } from '../../src/platform/timestamps.ts';

// node-postgres' own timestamptz parser (postgres-date): what the app read before, through a Date.
const viaDate = (text: string) =>
  (pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ) as (t: string) => Date)(text);

const ZONES = [
  'UTC',
  'Asia/Kolkata', // +05:30
  'America/St_Johns', // -03:30, -02:30 in summer
  'Pacific/Chatham', // +12:45
  'Europe/Amsterdam', // +00:19:32 (local mean time) before 1835
  'Etc/GMT+11',
];

let client: pg.Client;
beforeAll(async () => {
  client = new pg.Client({ connectionString: inject('adminUrl') });
  await client.connect();
});
afterAll(() => client.end());

describe('timestamptzToRfc3339', () => {
  it('reads what PostgreSQL prints in any session time zone as Date#toISOString would', async () => {
    const instants = await client.query<{ at: string }>(
      `SELECT ('0001-01-01 00:00:00+00'::timestamptz + random() * interval '9998 years')::text AS at
         FROM generate_series(1, 300)
       UNION ALL
       SELECT at::timestamptz::text FROM unnest(ARRAY[
         '2026-12-02 10:14:21+00', '2026-12-02 10:14:21.1+00', '2026-12-02 10:14:21.12+00',
         '2026-12-02 10:14:21.999999+00', '1999-12-31 23:59:59.9995+00', '0001-01-01 00:00:00+00',
         '9999-12-31 23:59:59.999+00', '1800-06-01 12:00:00+00', '2024-02-29 00:00:00.5+00'
       ]) AS at`,
    );
    let compared = 0;
    for (const zone of ZONES) {
      await client.query(`SET TimeZone = '${zone}'`);
      const printed = await client.query<{ text: string }>('SELECT unnest($1::timestamptz[])::text AS text', [
        instants.rows.map((row) => row.at),
      ]);
      for (const { text } of printed.rows) {
        expect(timestamptzToRfc3339(text), `${text} (${zone})`).toBe(viaDate(text).toISOString());
        compared++;
      }
    }
    expect(compared).toBe(ZONES.length * 309);
  });

  it('handles years before the common era and passes infinity through', () => {
    expect(timestamptzToRfc3339('0044-03-15 12:00:00+00 BC')).toBe(
      viaDate('0044-03-15 12:00:00+00 BC').toISOString(),
    );
    expect(timestamptzToRfc3339('0044-03-15 12:00:00+00 BC')).toBe('-000043-03-15T12:00:00.000Z');
    expect(timestamptzToRfc3339('infinity')).toBe('infinity');
  });

  it('is how the app’s pools read timestamptz; other clients keep Dates', async () => {
    const pool = createPool(
      inject('adminUrl'),
      { poolMax: 1, connectTimeoutMs: 5000, statementTimeoutMs: 5000 },
      () => {},
    );
    try {
      const { rows } = await pool.query(
        `SELECT '2026-12-02 15:44:21.1234+05:30'::timestamptz AS at, DATE '2026-12-02' AS on`,
      );
      expect(rows[0]).toEqual({ at: '2026-12-02T10:14:21.123Z', on: '2026-12-02' });
    } finally {
      await pool.end();
    }
    const { rows } = await client.query(`SELECT '2026-12-02 10:14:21+00'::timestamptz AS at`);
    expect(rows[0].at).toBeInstanceOf(Date);
  });
});
