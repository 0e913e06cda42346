// The benchmark's floor: the same routes and the same SQL work as the service, on bare Fastify + pg,
// with no validation schemas, hooks, logging, metrics, auth or error mapping. `npm run bench` forks it;
// `npm run bench:baseline` runs it alone (DATABASE_URL, PORT, default 127.0.0.1:8001).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import pg from 'pg';
import { divideHalfEven, formatMoney, formatScaled, parseMoney } from '../src/money/money.ts';

pg.types.setTypeParser(pg.types.builtins.DATE, (value) => value);

const STATUSES = ['pending', 'approved', 'rejected', 'disbursed', 'repaid', 'defaulted'];
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

export async function startBaseline(options: {
  databaseUrl: string;
  host: string;
  port: number;
  poolMax: number;
}) {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolMax });
  const app = Fastify({ logger: false });

  app.get<{ Params: { id: string } }>('/api/loans/:id', async (request, reply) => {
    const result = await pool.query<Row>(`SELECT ${COLUMNS} FROM loans WHERE id = $1`, [request.params.id]);
    const row = result.rows[0];
    if (!row) return reply.code(404).send({ status: 404 });
    return reply.header('etag', `"${row.id.slice(0, 8)}-v${row.version}"`).send(toLoan(row));
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
    const byStatus: Record<string, number> = Object.fromEntries(STATUSES.map((status) => [status, 0]));
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

// Run directly (npm run bench:baseline, or forked by the bench, which reads the port from IPC).
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const server = await startBaseline({
    databaseUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    host: process.env.HOST ?? '127.0.0.1',
    port: Number(process.env.PORT ?? (process.send ? 0 : 8001)),
    poolMax: Number(process.env.DATABASE_POOL_MAX ?? 10),
  });
  if (process.send) {
    process.send({ type: 'listening', port: server.port });
    // The bench went away: do not outlive it.
    process.on('disconnect', () => void server.close().then(() => process.exit(0)));
  } else {
    console.log(`baseline server on http://127.0.0.1:${server.port}`);
  }
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
