// The benchmark's floor: the same routes and the same SQL work as the service, on bare Fastify + pg,
// with no validation schemas, hooks, logging, metrics, authentication or error mapping. `npm run bench` forks it;
// `npm run bench:baseline` runs it alone. Its settings are command-line arguments only (see USAGE).
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';
import { argsOrExit, integerArg, parseArgs } from '../src/cli/args.ts';
import { allocateRepayments, nextDueDate } from '../src/loans/allocation.ts';
import { requestFingerprint } from '../src/loans/idempotency.ts';
import { LOAN_STATUSES } from '../src/loans/loan-status.ts';
import { aprToBasisPoints, buildSchedule } from '../src/loans/schedule.ts';
import { divideHalfEven, formatMoney, formatScaled, parseMoney } from '../src/money/money.ts';

pg.types.setTypeParser(pg.types.builtins.DATE, (value) => value);

const USAGE =
  'usage: npm run bench:baseline -- [--database-url postgres://…] [--host 127.0.0.1] [--port 8001] [--pool-max 10]';
const COLUMNS = `id, borrower_id, currency, amount_minor, term_months, interest_rate_apr, status, created_at,
  updated_at, version, approved_at, rejected_at, rejection_reason, disbursed_at, disbursed_on, defaulted_at,
  default_reason, repaid_at, outstanding_principal_minor, repaid_minor, oldest_unpaid_due_date`;

interface Row {
  id: string;
  borrower_id: string;
  currency: string;
  amount_minor: string;
  term_months: number;
  interest_rate_apr: string;
  status: string;
  created_at: Date;
  updated_at: Date;
  version: number;
  approved_at: Date | null;
  rejected_at: Date | null;
  rejection_reason: string | null;
  disbursed_at: Date | null;
  disbursed_on: string | null;
  defaulted_at: Date | null;
  default_reason: string | null;
  repaid_at: Date | null;
  outstanding_principal_minor: string;
  repaid_minor: string;
  oldest_unpaid_due_date: string | null;
}

const iso = (value: Date | null) => (value ? value.toISOString() : null);

// The service's ETag format (etagOf in src/loans/loan-views.ts).
const etag = (id: string, version: number) => `"${id.slice(0, 8)}-v${version}"`;

function toLoan(row: Row) {
  return {
    id: row.id,
    borrower_id: row.borrower_id,
    amount: formatMoney(BigInt(row.amount_minor), row.currency),
    currency: row.currency,
    term_months: row.term_months,
    interest_rate_apr: row.interest_rate_apr,
    status: row.status,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    approved_at: iso(row.approved_at),
    rejected_at: iso(row.rejected_at),
    rejection_reason: row.rejection_reason,
    disbursed_at: iso(row.disbursed_at),
    disbursed_on: row.disbursed_on,
    defaulted_at: iso(row.defaulted_at),
    default_reason: row.default_reason,
    repaid_at: iso(row.repaid_at),
    outstanding_principal: formatMoney(BigInt(row.outstanding_principal_minor), row.currency),
    total_repaid: formatMoney(BigInt(row.repaid_minor), row.currency),
    next_due_date: row.oldest_unpaid_due_date,
  };
}

async function startBaseline(options: { databaseUrl: string; host: string; port: number; poolMax: number }) {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolMax });
  const app = Fastify({ logger: false });

  const startedAt = performance.now();
  app.get('/health', async () => {
    const started = performance.now();
    await pool.query('SELECT 1');
    return {
      status: 'ok',
      checks: {
        database: { status: 'ok', latency_ms: Math.round((performance.now() - started) * 100) / 100 },
      },
      version: '0.0.0',
      uptime_s: Math.floor((performance.now() - startedAt) / 1000),
    };
  });

  app.get<{ Params: { id: string } }>('/api/loans/:id', async (request, reply) => {
    const result = await pool.query<Row>(`SELECT ${COLUMNS} FROM loans WHERE id = $1`, [request.params.id]);
    const row = result.rows[0];
    if (!row) return reply.code(404).send({ status: 404 });
    return reply.header('etag', etag(row.id, row.version)).send(toLoan(row));
  });

  app.get<{ Querystring: { limit?: string; cursor?: string } }>('/api/loans', async (request, reply) => {
    const limit = Number(request.query.limit ?? 50);
    const params: unknown[] = [limit + 1];
    let where = '';
    if (request.query.cursor) {
      const [createdAt, id] = JSON.parse(Buffer.from(request.query.cursor, 'base64url').toString('utf8'));
      params.push(createdAt, id);
      where = 'WHERE (created_at, id) < ($2::timestamptz, $3::uuid)';
    }
    const result = await pool.query<Row>(
      `SELECT ${COLUMNS} FROM loans ${where} ORDER BY created_at DESC, id DESC LIMIT $1`,
      params,
    );
    const rows = result.rows.slice(0, limit);
    const last = rows.at(-1);
    if (result.rows.length > limit && last) {
      const cursor = Buffer.from(JSON.stringify([last.created_at.toISOString(), last.id])).toString(
        'base64url',
      );
      reply.header('link', `</api/loans?limit=${limit}&cursor=${cursor}>; rel="next"`);
    }
    return rows.map(toLoan);
  });

  // One statement writes the loan and its audit event, as the service does in one transaction.
  app.post<{
    Body: {
      borrower_id: string;
      amount: string;
      currency: string;
      term_months: number;
      interest_rate_apr: string;
    };
  }>('/api/loans', async (request, reply) => {
    const body = request.body;
    const currency = body.currency.toUpperCase();
    const amount = parseMoney(body.amount, currency);
    if (!amount.ok) return reply.code(400).send({ status: 400, detail: amount.reason });
    const result = await pool.query<Row>(
      `WITH loan AS (
         INSERT INTO loans (borrower_id, currency, amount_minor, term_months, interest_rate_apr)
         VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}
       ), event AS (
         INSERT INTO loan_events (loan_id, type, from_status, to_status, actor, request_id, data)
         SELECT id, 'created', NULL, 'pending', 'anonymous', $6,
                jsonb_build_object('borrower_id', borrower_id, 'amount', $7::text, 'currency', currency,
                                   'term_months', term_months, 'interest_rate_apr', interest_rate_apr::text)
           FROM loan
       )
       SELECT * FROM loan`,
      [
        body.borrower_id,
        currency,
        amount.value.toString(),
        body.term_months,
        body.interest_rate_apr,
        request.id,
        formatMoney(amount.value, currency),
      ],
    );
    const row = result.rows[0]!;
    return reply.code(201).header('location', `/api/loans/${row.id}`).send(toLoan(row));
  });

  // The conditional update and its event in one statement (one transaction), as the service does in one.
  app.post<{ Params: { id: string } }>('/api/loans/:id/approve', async (request, reply) => {
    const result = await pool.query<Row>(
      `WITH loan AS (
         UPDATE loans SET status = 'approved', approved_at = date_trunc('milliseconds', now())
          WHERE id = $1 AND status = 'pending' RETURNING ${COLUMNS}
       ), event AS (
         INSERT INTO loan_events (loan_id, type, from_status, to_status, actor, request_id, data)
         SELECT id, 'approved', 'pending', 'approved', 'anonymous', $2, '{}' FROM loan
       )
       SELECT * FROM loan`,
      [request.params.id, request.id],
    );
    const row = result.rows[0];
    if (!row) return reply.code(409).send({ status: 409 });
    return reply.header('etag', etag(row.id, row.version)).send(toLoan(row));
  });

  // The service's work in four round trips: lock the loan (reading its prior repayments and any stored
  // outcome of the key with it), allocate with the same pure schedule code, then write the repayment,
  // its event(s), the loan's maintained columns and the idempotency record in one statement.
  app.post<{ Params: { id: string }; Body: { amount: string; paid_on?: string; reference?: string } }>(
    '/api/loans/:id/repayments',
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      if (typeof key !== 'string') return reply.code(400).send({ status: 400 });
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const found = await client.query<Row & { prior: string[]; replay: string | null }>(
          `SELECT ${COLUMNS},
                  ARRAY(SELECT amount_minor FROM repayments WHERE loan_id = loans.id ORDER BY seq)::text[] AS prior,
                  (SELECT body FROM idempotency_keys WHERE scope = 'anonymous' AND key = $2) AS replay
             FROM loans WHERE id = $1 FOR UPDATE`,
          [request.params.id, key],
        );
        const loan = found.rows[0];
        const refuse = async (status: number) => {
          await client.query('ROLLBACK');
          return reply.code(status).send({ status });
        };
        if (!loan) return await refuse(404);
        if (loan.replay !== null) {
          await client.query('ROLLBACK');
          return reply.code(201).header('content-type', 'application/json; charset=utf-8').send(loan.replay);
        }
        if (loan.status !== 'disbursed' && loan.status !== 'defaulted') return await refuse(409);
        const amount = parseMoney(request.body.amount, loan.currency);
        if (!amount.ok || amount.value <= 0n) return await refuse(400);

        const schedule = buildSchedule({
          principalMinor: BigInt(loan.amount_minor),
          aprBasisPoints: aprToBasisPoints(loan.interest_rate_apr),
          termMonths: loan.term_months,
          disbursedOn: loan.disbursed_on!,
        });
        const prior = loan.prior.map(BigInt);
        const before = allocateRepayments(schedule.installments, prior);
        if (amount.value > before.outstandingMinor) return await refuse(422);
        const after = allocateRepayments(schedule.installments, [...prior, amount.value]);
        const interest = before.outstandingInterestMinor - after.outstandingInterestMinor;
        const cleared = after.outstandingMinor === 0n;
        const now = new Date();
        const money = (minor: bigint) => formatMoney(minor, loan.currency);
        const repayment = {
          id: randomUUID(),
          loan_id: loan.id,
          amount: money(amount.value),
          currency: loan.currency,
          interest: money(interest),
          principal: money(amount.value - interest),
          paid_on: request.body.paid_on ?? now.toISOString().slice(0, 10),
          reference: request.body.reference ?? null,
          actor: 'anonymous',
          request_id: request.id,
          created_at: now.toISOString(),
        };
        const body = JSON.stringify(repayment);
        const headers = {
          'content-type': 'application/json; charset=utf-8',
          location: `/api/loans/${loan.id}/repayments`,
          etag: etag(loan.id, loan.version + 1),
        };
        const event = {
          repayment_id: repayment.id,
          amount: repayment.amount,
          interest: repayment.interest,
          principal: repayment.principal,
          paid_on: repayment.paid_on,
          reference: repayment.reference,
        };
        const events = cleared
          ? [
              ['repayment', loan.status, loan.status, event],
              ['repaid', loan.status, 'repaid', { repayment_id: repayment.id }],
            ]
          : [['repayment', loan.status, loan.status, event]];
        await client.query(
          `WITH repayment AS (
             INSERT INTO repayments (id, loan_id, amount_minor, interest_minor, principal_minor, paid_on, reference,
                                     actor, request_id, created_at)
             VALUES ($2, $1, $3, $4, $5, $6, $7, 'anonymous', $8, $9)
           ), events AS (
             INSERT INTO loan_events (loan_id, type, from_status, to_status, actor, request_id, at, data)
             SELECT $1, e.type, e.from_status, e.to_status, 'anonymous', $8, $9, e.data
               FROM unnest($10::text[], $11::text[], $12::text[], $13::jsonb[]) WITH ORDINALITY
                    AS e(type, from_status, to_status, data, n)
              ORDER BY n
           ), loan AS (
             UPDATE loans SET status = $14, outstanding_principal_minor = $15, repaid_minor = $16,
                              oldest_unpaid_due_date = $17, repaid_at = CASE WHEN $18 THEN $9 ELSE repaid_at END
              WHERE id = $1
           )
           INSERT INTO idempotency_keys (scope, key, fingerprint, status, headers, body)
           VALUES ('anonymous', $19, $20, 201, $21, $22)`,
          [
            loan.id,
            repayment.id,
            amount.value.toString(),
            interest.toString(),
            (amount.value - interest).toString(),
            repayment.paid_on,
            repayment.reference,
            request.id,
            now,
            events.map((row) => row[0]),
            events.map((row) => row[1]),
            events.map((row) => row[2]),
            events.map((row) => JSON.stringify(row[3])),
            cleared ? 'repaid' : loan.status,
            after.outstandingPrincipalMinor.toString(),
            after.totalPaidMinor.toString(),
            nextDueDate(after),
            cleared,
            key,
            requestFingerprint('POST', request.url, request.body),
            JSON.stringify(headers),
            body,
          ],
        );
        await client.query('COMMIT');
        return reply.code(201).headers(headers).send(body);
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
  );

  app.get('/api/stats', async () => {
    const [stats, arrears] = await Promise.all([
      pool.query<{
        currency: string;
        status: string;
        loans: string;
        amount_minor: string;
        outstanding_minor: string;
      }>(
        `SELECT currency, status, sum(loans)::text AS loans, sum(amount_minor)::text AS amount_minor,
                sum(outstanding_minor)::text AS outstanding_minor
           FROM loan_stats GROUP BY currency, status HAVING sum(loans) > 0 ORDER BY currency, status`,
      ),
      pool.query<{ currency: string; outstanding_minor: string }>(
        `SELECT currency, sum(outstanding_minor)::text AS outstanding_minor FROM loan_arrears
          WHERE oldest_unpaid_due >= (now() AT TIME ZONE 'UTC')::date - 30 GROUP BY currency`,
      ),
    ]);
    const byStatus: Record<string, number> = Object.fromEntries(LOAN_STATUSES.map((status) => [status, 0]));
    const totals = new Map<string, { loans: bigint; amount: bigint; outstanding: bigint }>();
    for (const row of stats.rows) {
      byStatus[row.status] = (byStatus[row.status] ?? 0) + Number(row.loans);
      const total = totals.get(row.currency) ?? { loans: 0n, amount: 0n, outstanding: 0n };
      total.loans += BigInt(row.loans);
      total.amount += BigInt(row.amount_minor);
      total.outstanding += BigInt(row.outstanding_minor);
      totals.set(row.currency, total);
    }
    const current = new Map(arrears.rows.map((row) => [row.currency, BigInt(row.outstanding_minor)]));
    const amounts: Record<string, unknown> = {};
    for (const [code, total] of totals) {
      const ratio =
        total.outstanding > 0n
          ? divideHalfEven((total.outstanding - (current.get(code) ?? 0n)) * 10_000n, total.outstanding)
          : 0n;
      amounts[code] = {
        loans: Number(total.loans),
        total_amount: formatMoney(total.amount, code),
        avg_amount: formatMoney(divideHalfEven(total.amount, total.loans), code),
        outstanding_principal: formatMoney(total.outstanding, code),
        par30_ratio: formatScaled(ratio, 4),
      };
    }
    return {
      total_loans: Object.values(byStatus).reduce((sum, count) => sum + count, 0),
      by_status: byStatus,
      by_currency: Object.fromEntries([...totals].map(([code, total]) => [code, Number(total.loans)])),
      amounts,
      as_of: new Date().toISOString(),
    };
  });

  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    port,
    async close() {
      await app.close();
      await pool.end();
    },
  };
}

/** The port defaults to a free one when the bench forks it (it reads the port over IPC), else to 8001. */
function parseBaselineArgs(argv: readonly string[]) {
  const values = parseArgs(argv, {
    'database-url': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'pool-max': { type: 'string' },
  });
  return {
    databaseUrl: values['database-url'] ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    host: values.host ?? '127.0.0.1',
    port: values.port === undefined ? (process.send ? 0 : 8001) : integerArg('--port', values.port, 0, 65535),
    poolMax: values['pool-max'] === undefined ? 10 : integerArg('--pool-max', values['pool-max'], 1, 500),
  };
}

const options = argsOrExit('baseline-server', USAGE, () => parseBaselineArgs(process.argv.slice(2)));
const server = await startBaseline(options);
if (process.send) {
  process.send({ type: 'listening', port: server.port });
  // The bench went away: do not outlive it.
  process.on('disconnect', () => void server.close().then(() => process.exit(0)));
} else {
  console.log(`baseline server on http://${options.host}:${server.port}`);
}
const stop = () => void server.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
