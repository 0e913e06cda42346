// The statements each write sends to PostgreSQL: every one is a round trip on the request's path, so the
// counts are pinned here (BENCHMARKS.md has what folding them bought).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { observeQueries } from '../../src/platform/database.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { loanIn, newKey, post, TERMS } from '../helpers/loans.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

/** The statements `request` sent, and its answer's status. */
async function statementsOf(request: () => Promise<{ statusCode: number }>): Promise<[number, number]> {
  let statements = 0;
  const stop = observeQueries(t.pool, () => {
    statements += 1;
  });
  try {
    const { statusCode } = await request();
    return [statusCode, statements];
  } finally {
    stop();
  }
}

describe('round trips per write', () => {
  it('creates a loan and its event in one statement, three with an Idempotency-Key', async () => {
    expect(await statementsOf(() => post(t.app, '/api/loans', TERMS))).toEqual([201, 1]);
    // Open (BEGIN, lock, lookup, savepoint), the insert, then the stored answer with COMMIT.
    const key = { 'idempotency-key': newKey() };
    expect(await statementsOf(() => post(t.app, '/api/loans', TERMS, key))).toEqual([201, 3]);
    // A replay: open, then COMMIT.
    expect(await statementsOf(() => post(t.app, '/api/loans', TERMS, key))).toEqual([201, 2]);
  });

  it('approves and rejects in one statement, the update with its event; a refusal reads the loan to say why', async () => {
    const id = await loanIn(t.app, 'pending');
    expect(await statementsOf(() => post(t.app, `/api/loans/${id}/approve`))).toEqual([200, 1]);
    expect(await statementsOf(() => post(t.app, `/api/loans/${id}/reject`, { reason: 'late' }))).toEqual([
      409, 2,
    ]);
    const other = await loanIn(t.app, 'pending');
    expect(await statementsOf(() => post(t.app, `/api/loans/${other}/reject`, { reason: 'x' }))).toEqual([
      200, 1,
    ]);
  });

  it('defaults in four: a command that locks the loan keeps its transaction (BEGIN, the lock, the update with its event, COMMIT)', async () => {
    const id = await loanIn(t.app, 'disbursed');
    expect(await statementsOf(() => post(t.app, `/api/loans/${id}/default`, { reason: 'gone' }))).toEqual([
      200, 4,
    ]);
  });

  it('disburses in four: BEGIN with the key, the row lock, the update with its event, the stored answer with COMMIT', async () => {
    const id = await loanIn(t.app, 'approved');
    const disburse = () => post(t.app, `/api/loans/${id}/disburse`, {}, { 'idempotency-key': newKey() });
    expect(await statementsOf(disburse)).toEqual([200, 4]);
  });

  it('stores an answer with quotes and backslashes, quoted into the simple protocol, and replays it byte for byte', async () => {
    const id = await loanIn(t.app, 'disbursed');
    const body = { amount: '10.00', reference: `O'Brien \\ "quoted" \\' ; COMMIT; --` };
    const key = { 'idempotency-key': newKey() };
    const first = await post(t.app, `/api/loans/${id}/repayments`, body, key);
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json().reference).toBe(body.reference);
    const replay = await post(t.app, `/api/loans/${id}/repayments`, body, key);
    expect([replay.statusCode, replay.headers['idempotent-replayed'], replay.body]).toEqual([
      201,
      'true',
      first.body,
    ]);
    const stored = await t.pool.query('SELECT count(*)::int AS n FROM repayments WHERE loan_id = $1', [id]);
    expect(stored.rows[0].n).toBe(1);
  });

  it('records a repayment with its key in four', async () => {
    const id = await loanIn(t.app, 'disbursed');
    const repay = () =>
      post(t.app, `/api/loans/${id}/repayments`, { amount: '100.00' }, { 'idempotency-key': newKey() });
    // Open, the row lock with the prior repayments, the update with its repayment and event, store + COMMIT.
    expect(await statementsOf(repay)).toEqual([201, 4]);
  });
});
