// Three real server processes behind a real HAProxy (round robin, health-checked on /readiness), sharing
// PostgreSQL through a real PgBouncer in transaction mode and rate-limit counters through Redis. Under a
// steady stream of keyed creates, one replica is SIGKILLed and another SIGTERMed: no loan is lost or
// duplicated, replays are byte-identical, errors stop once HAProxy has noticed, and the SIGTERMed replica
// answers everything it accepted and exits 0.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { type Haproxy, haproxyMissing, startHaproxy } from '../helpers/haproxy.ts';
import { type Pgbouncer, pgbouncerMissing, startPgbouncer } from '../helpers/pgbouncer.ts';
import { freePort } from '../helpers/ports.ts';
import { type AppProcess, type LogLine, skipWhenMissing, sleep, startServer } from '../helpers/process.ts';
import { redisMissing, TEST_REDIS_URL, uniqueClientAddress } from '../helpers/redis.ts';

const KEYS = 600;
const LOAD_MS = 10_000;
const CONCURRENCY = 20;
/** Every fifth key is sent twice at once. */
const DOUBLED_EVERY = 5;
const KILL_AT_MS = 3_000;
const TERM_AT_MS = 6_000;
const CHECK_INTERVAL_MS = 500;
const FALL = 2;
// Longer than HAProxy needs to mark a replica down (FALL failed checks, CHECK_INTERVAL_MS apart), so
// that it has stopped sending before the replica stops accepting.
const DRAIN_DELAY_MS = FALL * CHECK_INTERVAL_MS + 1_000;
const MAX_ERROR_WINDOW_MS = 3_000;
const MAX_ATTEMPTS = 10;
const REQUEST_TIMEOUT_MS = 10_000;
const CURRENCIES = ['INR', 'KES', 'USD'] as const;

const skip = skipWhenMissing(
  'replica tests',
  haproxyMissing() ?? pgbouncerMissing() ?? (await redisMissing()),
);

interface Attempt {
  key: string;
  sentAt: number;
  answeredAt: number;
  status?: number;
  /** The connection failed (reset, refused, timed out) before a response. */
  error?: string;
  body?: string;
  replayed: boolean;
  rateLimitRemaining?: string;
  /** Retry-After, in seconds, when the answer had one. */
  retryAfter?: number;
}

/** A retry is needed after a 5xx, a connection error, or 409 while the key's first request runs. */
function isFinal(attempt: Attempt): boolean {
  if (attempt.status === undefined || attempt.status >= 500 || attempt.status === 429) return false;
  if (attempt.status !== 409) return true;
  return !attempt.body?.includes('/problems/idempotency-request-in-progress');
}

const termsOf = (index: number) => ({
  borrower_id: keyOf(index),
  amount: `${1000 + index}.${String(index % 100).padStart(2, '0')}`,
  currency: CURRENCIES[index % CURRENCIES.length]!,
  term_months: 12,
  interest_rate_apr: '18.50',
});
const runId = Math.random().toString(36).slice(2, 8);
// The key is also the borrower: counting a borrower's loans counts the loans made for a key.
const keyOf = (index: number) => `rep-${runId}-${index}`;

describe.skipIf(skip)('three replicas behind HAProxy and PgBouncer', () => {
  let db: TestDatabase;
  let bouncer: Pgbouncer;
  let haproxy: Haproxy;
  const replicas: { name: string; port: number; proc: AppProcess }[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    bouncer = await startPgbouncer(inject('adminUrl'), { poolSize: 20 });
    const ports = new Set<number>();
    while (ports.size < 3) ports.add(await freePort());
    for (const [name, port] of [...ports].map((port, index) => [`r${index + 1}`, port] as const)) {
      const proc = startServer({
        APP_ENV: 'test',
        HOST: '127.0.0.1',
        PORT: String(port),
        DATABASE_URL: bouncer.through(db.url),
        MIGRATION_DATABASE_URL: db.url,
        MIGRATE_ON_START: 'false',
        SHUTDOWN_DRAIN_DELAY_MS: String(DRAIN_DELAY_MS),
        LOG_LEVEL: 'info',
        REDIS_URL: TEST_REDIS_URL,
        RATE_LIMIT_ENABLED: 'true',
        RATE_LIMIT_ANONYMOUS_PER_MINUTE: '1000000',
        TRUST_PROXY: 'loopback',
      });
      replicas.push({ name, port, proc });
    }
    await Promise.all(
      replicas.map(({ proc }) => proc.waitForLog((line) => line.msg?.startsWith('API: ') === true, 40_000)),
    );
    haproxy = await startHaproxy({
      servers: replicas.map(({ name, port }) => ({ name, port })),
      checkIntervalMs: CHECK_INTERVAL_MS,
      fall: FALL,
    });
  }, 60_000);

  afterAll(async () => {
    await haproxy?.stop();
    await Promise.all(replicas.map(({ proc }) => proc.stop(5_000)));
    await bouncer?.stop();
    await db?.drop();
  });

  it('a SIGKILL and a SIGTERM under keyed load lose and duplicate nothing, and errors stop once HAProxy notices', async () => {
    const clientAddress = uniqueClientAddress();
    const attempts: Attempt[] = [];

    const send = async (index: number): Promise<Attempt> => {
      const key = keyOf(index);
      const attempt: Attempt = { key, sentAt: Date.now(), answeredAt: 0, replayed: false };
      try {
        const response = await fetch(`${haproxy.url}/api/loans`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'idempotency-key': key,
            'x-forwarded-for': clientAddress,
          },
          body: JSON.stringify(termsOf(index)),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        attempt.body = await response.text();
        attempt.status = response.status;
        attempt.replayed = response.headers.get('idempotent-replayed') === 'true';
        attempt.rateLimitRemaining = response.headers.get('ratelimit-remaining') ?? undefined;
        const retryAfter = response.headers.get('retry-after');
        if (retryAfter !== null) attempt.retryAfter = Number(retryAfter);
      } catch (error) {
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        attempt.error = cause?.code ?? cause?.message ?? String(error);
      }
      attempt.answeredAt = Date.now();
      attempts.push(attempt);
      return attempt;
    };

    /** Sends until a final answer, after Retry-After when given, else with exponential backoff and jitter. */
    const sendUntilFinal = async (index: number): Promise<Attempt | undefined> => {
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
        const result = await send(index);
        if (isFinal(result)) return result;
        if (result.retryAfter !== undefined) await sleep(Math.min(result.retryAfter, 2) * 1000);
        else await sleep(Math.min(1000, 25 * 2 ** attempt) * (0.5 + Math.random() / 2));
      }
      return undefined;
    };

    // Key i is due LOAD_MS * i / KEYS after the start; at most CONCURRENCY keys are in flight.
    const finals = new Map<string, (Attempt | undefined)[]>();
    const start = Date.now();
    let next = 0;
    const worker = async () => {
      for (;;) {
        const index = next++;
        if (index >= KEYS) return;
        await sleep(start + (LOAD_MS * index) / KEYS - Date.now());
        const copies = index % DOUBLED_EVERY === 0 ? 2 : 1;
        finals.set(
          keyOf(index),
          await Promise.all(Array.from({ length: copies }, () => sendUntilFinal(index))),
        );
      }
    };

    const [killed, terminated, survivor] = replicas as [
      (typeof replicas)[0],
      (typeof replicas)[0],
      (typeof replicas)[0],
    ];
    /** Polls HAProxy's view of `name` until it is DOWN; resolves with when that was seen. */
    const downAt = async (name: string) => {
      for (let polls = 0; polls < 200; polls += 1) {
        if ((await haproxy.serverStates())[name] === 'DOWN') return Date.now();
        await sleep(20);
      }
      throw new Error(`HAProxy did not mark ${name} DOWN`);
    };
    const disruption = (async () => {
      await sleep(start + KILL_AT_MS - Date.now());
      const killAt = Date.now();
      killed.proc.signal('SIGKILL');
      const killNoticedAt = await downAt(killed.name);
      await sleep(start + TERM_AT_MS - Date.now());
      const termAt = Date.now();
      terminated.proc.signal('SIGTERM');
      const termNoticedAt = await downAt(terminated.name);
      return { killAt, killNoticedAt, termAt, termNoticedAt };
    })();
    // Awaited after the load; until then a failure must not surface as an unhandled rejection.
    disruption.catch(() => {});

    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const loadMs = Date.now() - start;
    const { killAt, killNoticedAt, termAt, termNoticedAt } = await disruption;
    const termExit = await terminated.proc.waitForExit(15_000);
    expect(killed.proc.exitStatus).toEqual({ code: null, signal: 'SIGKILL' });

    // Every request got a final answer: 201, the first time or as a replay.
    const keys = Array.from({ length: KEYS }, (_, index) => keyOf(index));
    const unanswered = keys.filter((key) => finals.get(key)?.some((final) => final?.status !== 201));
    expect(unanswered, JSON.stringify(attempts.filter((a) => unanswered.includes(a.key)))).toEqual([]);

    // Replays are byte for byte the first answer: one distinct 2xx body per key.
    const bodies = new Map<string, Set<string>>();
    for (const attempt of attempts) {
      if (attempt.status !== undefined && attempt.status < 300) {
        bodies.set(attempt.key, (bodies.get(attempt.key) ?? new Set()).add(attempt.body!));
      }
    }
    expect(keys.filter((key) => bodies.get(key)?.size !== 1)).toEqual([]);
    const replays = attempts.filter((attempt) => attempt.replayed).length;
    expect(replays).toBeGreaterThanOrEqual(KEYS / DOUBLED_EVERY);

    // The replicas count every request in one budget in Redis: no two answers report the same remainder.
    const remainders = attempts
      .filter((attempt) => attempt.status !== undefined && attempt.status < 500)
      .map((attempt) => attempt.rateLimitRemaining);
    expect(remainders).not.toContain(undefined);
    expect(new Set(remainders).size).toBe(remainders.length);

    // Exactly one loan per key, and it is the one every answer for that key names.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    let perBorrower: { borrower_id: string; ids: string[] }[];
    let perCurrency: { currency: string; loans: number; amount_minor: string }[];
    try {
      perBorrower = (
        await client.query<{ borrower_id: string; ids: string[] }>(
          `SELECT borrower_id, array_agg(id::text) AS ids FROM loans GROUP BY borrower_id ORDER BY borrower_id`,
        )
      ).rows;
      perCurrency = (
        await client.query<{ currency: string; loans: number; amount_minor: string }>(
          `SELECT currency, count(*)::int AS loans, sum(amount_minor)::text AS amount_minor
             FROM loans GROUP BY currency ORDER BY currency`,
        )
      ).rows;
    } finally {
      await client.end();
    }
    expect(perBorrower.map((row) => row.borrower_id)).toEqual([...keys].sort());
    const idOf = new Map(perBorrower.map((row) => [row.borrower_id, row.ids]));
    const mismatched = keys.filter((key) => {
      const [body] = bodies.get(key) ?? [];
      return JSON.stringify(idOf.get(key)) !== JSON.stringify([(JSON.parse(body!) as { id: string }).id]);
    });
    expect(mismatched).toEqual([]);

    // The aggregates agree with the rows and with what was sent.
    const sent = new Map<string, { loans: number; minor: bigint }>();
    for (let index = 0; index < KEYS; index += 1) {
      const { currency, amount } = termsOf(index);
      const total = sent.get(currency) ?? { loans: 0, minor: 0n };
      sent.set(currency, { loans: total.loans + 1, minor: total.minor + BigInt(amount.replace('.', '')) });
    }
    const major = (minor: bigint) => `${minor / 100n}.${String(minor % 100n).padStart(2, '0')}`;
    expect(perCurrency).toEqual(
      [...sent].map(([currency, { loans, minor }]) => ({ currency, loans, amount_minor: String(minor) })),
    );
    const statsResponse = await fetch(`${haproxy.url}/api/stats`, {
      headers: { 'x-forwarded-for': clientAddress },
    });
    expect(statsResponse.status).toBe(200);
    const stats = (await statsResponse.json()) as {
      total_loans: number;
      by_status: Record<string, number>;
      by_currency: Record<string, number>;
      amounts: Record<string, { loans: number; total_amount: string }>;
    };
    expect(stats.total_loans).toBe(KEYS);
    expect(stats.by_status.pending).toBe(KEYS);
    expect(stats.by_currency).toEqual(
      Object.fromEntries(perCurrency.map((row) => [row.currency, row.loans])),
    );
    expect(
      Object.fromEntries(
        Object.entries(stats.amounts).map(([currency, { loans, total_amount }]) => [
          currency,
          { loans, total_amount },
        ]),
      ),
    ).toEqual(
      Object.fromEntries(
        [...sent].map(([currency, { loans, minor }]) => [currency, { loans, total_amount: major(minor) }]),
      ),
    );

    // Errors (5xx or a failed connection) only right after the SIGKILL, for a bounded time; none from the
    // SIGTERM, whose replica stopped being ready before it stopped serving.
    const errors = attempts.filter(
      (attempt) => attempt.error !== undefined || (attempt.status !== undefined && attempt.status >= 500),
    );
    const lastErrorAt = Math.max(killAt, ...errors.map((attempt) => attempt.answeredAt));
    const errorWindowMs = lastErrorAt - killAt;
    expect(errors.filter((attempt) => attempt.answeredAt < killAt)).toEqual([]);
    expect(errorWindowMs, JSON.stringify(errors)).toBeLessThan(MAX_ERROR_WINDOW_MS);

    // The SIGTERMed replica answered every request it accepted. The client's view is the oracle: every
    // answer from the signal on is a 201 (HAProxy closes a client connection without logging when a
    // replica cuts off a reused one, so its log alone could not show a dropped request). HAProxy's log
    // and the replica's own show that it kept serving during its drain delay; then it exited 0.
    expect(attempts.filter((attempt) => attempt.answeredAt >= termAt && attempt.status !== 201)).toEqual([]);
    const toTerminated = haproxy
      .requests()
      .filter((line) => line.path === '/api/loans' && line.server === terminated.name);
    expect(toTerminated.filter((line) => line.status !== 201 || line.termination !== '----')).toEqual([]);
    const duringDrain = toTerminated.filter((line) => line.receivedAt >= termAt);
    expect(duringDrain.length).toBeGreaterThan(0);
    // It kept accepting until HAProxy stopped sending: no request after the signal had to be redispatched
    // (after the SIGKILL, those that met the dead replica's closed port were).
    const redispatched = haproxy.requests().filter((line) => line.retries !== '0');
    expect(redispatched.filter((line) => line.receivedAt >= termAt)).toEqual([]);
    expect(termExit, terminated.proc.output()).toEqual({ code: 0, signal: null });
    const drained = terminated.proc.logs.slice(
      terminated.proc.logs.findIndex((line: LogLine) => line.msg?.startsWith('shutting down') === true),
    );
    expect(drained.map((line) => line.msg)).toContain('database pool closed');
    // Its readiness answers 503 from the signal on, while every API request it gets still succeeds.
    const apiDuringDrain = drained.filter(
      (line) => line.msg === 'request completed' && line.route === '/api/loans',
    );
    expect(apiDuringDrain.filter((line) => line.status !== 201)).toEqual([]);
    expect(apiDuringDrain.length).toBeGreaterThanOrEqual(duringDrain.length);
    expect(survivor.proc.exitStatus).toBeUndefined();

    const retries = attempts.length - [...finals.values()].flat().length;
    const errorKinds = new Map<string, number>();
    for (const { status, error } of errors) {
      const kind = error ?? String(status);
      errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
    }
    console.warn(
      `[replicas] ${KEYS} keys (${KEYS / DOUBLED_EVERY} sent twice at once), ${attempts.length} requests ` +
        `in ${(loadMs / 1000).toFixed(1)} s (${Math.round(attempts.length / (loadMs / 1000))} req/s), ` +
        `${retries} retries, ${replays} replays; SIGKILL r1: HAProxy DOWN after ${killNoticedAt - killAt} ms, ` +
        `${errors.length} 5xx/connection errors (${[...errorKinds].map(([kind, n]) => `${kind}×${n}`).join(', ') || 'none'}) ` +
        `within ${errorWindowMs} ms of the kill; SIGTERM r2: DOWN ` +
        `after ${termNoticedAt - termAt} ms, ${duringDrain.length} requests served while draining, exit 0; ` +
        `${redispatched.length} requests redispatched by HAProxy after a refused connection`,
    );
  }, 60_000);
});
