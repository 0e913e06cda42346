import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOAN_ACTIONS, LOAN_STATUSES } from '../../src/loans/loan-status.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { loanIn, newKey, post, TERMS } from '../helpers/loans.ts';

// A fixed clock: 2026-11-21 10:00 UTC.
const NOW = new Date('2026-11-21T10:00:00.000Z');
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({}, () => NOW);
});
afterAll(() => t.close());

const get = async (url: string) => {
  const response = await t.app.inject({ url });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
};
const count = async (sql: string, params: unknown[] = []) =>
  Number((await t.pool.query<{ n: string }>(sql, params)).rows[0]!.n);

describe('from application to repaid', () => {
  it('walks the whole lifecycle and records every step as an event', async () => {
    const created = await post(t.app, '/api/loans', TERMS, { 'x-request-id': 'req-create' });
    const id = created.json().id;
    expect(created.json()).toMatchObject({
      status: 'pending',
      outstanding_principal: '0.00',
      total_repaid: '0.00',
      next_due_date: null,
      days_past_due: 0,
      approved_at: null,
      disbursed_on: null,
    });

    const approved = await post(
      t.app,
      `/api/loans/${id}/approve`,
      { note: 'good history' },
      { 'x-request-id': 'req-approve' },
    );
    expect(approved.statusCode).toBe(200);
    expect(approved.json()).toMatchObject({
      status: 'approved',
      approved_at: NOW.toISOString(),
      approval_note: 'good history',
    });

    const disbursed = await post(
      t.app,
      `/api/loans/${id}/disburse`,
      { disbursed_on: '2026-01-31' },
      {
        'idempotency-key': newKey(),
        'x-request-id': 'req-disburse',
      },
    );
    expect(disbursed.statusCode).toBe(200);
    expect(disbursed.json()).toMatchObject({
      status: 'disbursed',
      disbursed_on: '2026-01-31',
      disbursed_at: NOW.toISOString(),
      outstanding_principal: '15000.00',
      next_due_date: '2026-02-28',
      days_past_due: 266,
    });

    const schedule = await get(`/api/loans/${id}/schedule`);
    expect(schedule).toMatchObject({
      currency: 'INR',
      disbursed_on: '2026-01-31',
      installment_amount: '1378.77',
      total_interest: '1545.27',
      total_repayable: '16545.27',
    });
    expect(schedule.installments.map((row: { due_date: string }) => row.due_date)).toEqual([
      '2026-02-28',
      '2026-03-31',
      '2026-04-30',
      '2026-05-31',
      '2026-06-30',
      '2026-07-31',
      '2026-08-31',
      '2026-09-30',
      '2026-10-31',
      '2026-11-30',
      '2026-12-31',
      '2027-01-31',
    ]);
    expect(schedule.installments.slice(0, 2)).toEqual([
      {
        number: 1,
        due_date: '2026-02-28',
        principal: '1147.52',
        interest: '231.25',
        total: '1378.77',
        paid: '0.00',
        status: 'overdue',
      },
      {
        number: 2,
        due_date: '2026-03-31',
        principal: '1165.21',
        interest: '213.56',
        total: '1378.77',
        paid: '0.00',
        status: 'overdue',
      },
    ]);

    // 1500.00: installment 1 in full (interest 231.25 first), then 121.23 of installment 2's interest.
    const partial = await post(
      t.app,
      `/api/loans/${id}/repayments`,
      { amount: '1500.00', paid_on: '2026-03-01', reference: 'mpesa-1' },
      {
        'idempotency-key': newKey(),
        'x-request-id': 'req-repay-1',
      },
    );
    expect(partial.statusCode).toBe(201);
    expect(partial.json()).toMatchObject({
      loan_id: id,
      amount: '1500.00',
      currency: 'INR',
      interest: '352.48',
      principal: '1147.52',
      paid_on: '2026-03-01',
      reference: 'mpesa-1',
      actor: 'anonymous',
      request_id: 'req-repay-1',
    });
    const afterPartial = await get(`/api/loans/${id}`);
    expect(afterPartial).toMatchObject({
      status: 'disbursed',
      outstanding_principal: '13852.48',
      total_repaid: '1500.00',
      next_due_date: '2026-03-31',
      days_past_due: 235,
    });
    const partialSchedule = await get(`/api/loans/${id}/schedule`);
    expect(partialSchedule.installments[0]).toMatchObject({ paid: '1378.77', status: 'paid' });
    expect(partialSchedule.installments[1]).toMatchObject({ paid: '121.23', status: 'overdue' });
    expect(partialSchedule.installments[11]).toMatchObject({
      paid: '0.00',
      status: 'pending',
      total: '1378.80',
    });

    const rest = await post(
      t.app,
      `/api/loans/${id}/repayments`,
      { amount: '15045.27' },
      {
        'idempotency-key': newKey(),
        'x-request-id': 'req-repay-2',
      },
    );
    expect(rest.statusCode).toBe(201);
    expect(rest.json()).toMatchObject({
      amount: '15045.27',
      principal: '13852.48',
      interest: '1192.79',
      paid_on: '2026-11-21',
    });

    expect(await get(`/api/loans/${id}`)).toMatchObject({
      status: 'repaid',
      repaid_at: NOW.toISOString(),
      outstanding_principal: '0.00',
      total_repaid: '16545.27',
      next_due_date: null,
      days_past_due: 0,
    });
    expect((await get(`/api/loans/${id}/repayments`)).map((r: { amount: string }) => r.amount)).toEqual([
      '1500.00',
      '15045.27',
    ]);

    const events = await get(`/api/loans/${id}/events`);
    expect(
      events.map((e: Record<string, unknown>) => [e.type, e.from_status, e.to_status, e.request_id]),
    ).toEqual([
      ['created', null, 'pending', 'req-create'],
      ['approved', 'pending', 'approved', 'req-approve'],
      ['disbursed', 'approved', 'disbursed', 'req-disburse'],
      ['repayment', 'disbursed', 'disbursed', 'req-repay-1'],
      ['repayment', 'disbursed', 'disbursed', 'req-repay-2'],
      ['repaid', 'disbursed', 'repaid', 'req-repay-2'],
    ]);
    expect(
      events.every(
        (e: { actor: string; at: string }) => e.actor === 'anonymous' && e.at === NOW.toISOString(),
      ),
    ).toBe(true);
    expect(events[0].data).toEqual({
      borrower_id: 'usr_test',
      amount: '15000.00',
      currency: 'INR',
      term_months: 12,
      interest_rate_apr: '18.50',
    });
    expect(events[2].data).toMatchObject({
      disbursed_on: '2026-01-31',
      recorded_on: '2026-11-21',
      total_repayable: '16545.27',
    });
    expect(events[3].data).toMatchObject({
      amount: '1500.00',
      interest: '352.48',
      principal: '1147.52',
      reference: 'mpesa-1',
    });
  });

  it('lets a defaulted loan be repaid (recovery)', async () => {
    const id = await loanIn(
      t.app,
      'defaulted',
      { amount: '1000.00', term_months: 2, interest_rate_apr: '0' },
      '2026-06-01',
    );
    expect(await get(`/api/loans/${id}`)).toMatchObject({
      status: 'defaulted',
      default_reason: 'unreachable',
    });
    const first = await post(
      t.app,
      `/api/loans/${id}/repayments`,
      { amount: 400 },
      { 'idempotency-key': newKey() },
    );
    expect(first.statusCode).toBe(201);
    expect((await get(`/api/loans/${id}`)).status).toBe('defaulted');
    const last = await post(
      t.app,
      `/api/loans/${id}/repayments`,
      { amount: '600' },
      { 'idempotency-key': newKey() },
    );
    expect(last.statusCode).toBe(201);
    const events = await get(`/api/loans/${id}/events`);
    expect(
      events.slice(-3).map((e: { type: string; to_status: string }) => `${e.type}:${e.to_status}`),
    ).toEqual(['repayment:defaulted', 'repayment:defaulted', 'repaid:repaid']);
  });

  it('quotes the worked example without creating anything', async () => {
    const before = await count('SELECT count(*) AS n FROM loans');
    const quote = await get(
      '/api/loan-quote?amount=15000.00&currency=inr&term_months=12&interest_rate_apr=18.50',
    );
    expect(quote).toMatchObject({
      currency: 'INR',
      disbursed_on: '2026-11-21',
      installment_amount: '1378.77',
      total_interest: '1545.27',
      total_repayable: '16545.27',
    });
    expect(quote.installments[10]).toMatchObject({ interest: '41.55', due_date: '2027-10-21' });
    expect(quote.installments[11]).toEqual({
      number: 12,
      due_date: '2027-11-21',
      principal: '1357.87',
      interest: '20.93',
      total: '1378.80',
      paid: '0.00',
      status: 'pending',
    });
    expect(await count('SELECT count(*) AS n FROM loans')).toBe(before);
  });

  it.each([
    ['amount=0&currency=INR&term_months=12&interest_rate_apr=1', 'amount', 'must be greater than 0'],
    [
      'amount=1.001&currency=INR&term_months=12&interest_rate_apr=1',
      'amount',
      'must have at most 2 decimal places for INR',
    ],
    [
      'amount=100&currency=XAU&term_months=12&interest_rate_apr=1',
      'currency',
      'must be an active ISO 4217 currency code (got "XAU")',
    ],
    [
      'amount=100&currency=INR&term_months=0&interest_rate_apr=1',
      'term_months',
      'must be greater than or equal to 1',
    ],
    [
      'amount=100&currency=INR&term_months=12&interest_rate_apr=101',
      'interest_rate_apr',
      'must be less than or equal to 100',
    ],
    ['amount=100&currency=INR&term_months=12', 'interest_rate_apr', 'is required'],
    [
      'amount=100&currency=INR&term_months=12&interest_rate_apr=1&borrower_id=x',
      'borrower_id',
      'is not a supported query parameter',
    ],
  ])('rejects the quote ?%s', async (query, parameter, message) => {
    const response = await t.app.inject({ url: `/api/loan-quote?${query}` });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toContainEqual({ parameter, message });
  });

  it('shows a pending loan the schedule it would get if disbursed today', async () => {
    const id = await loanIn(t.app, 'pending');
    const schedule = await get(`/api/loans/${id}/schedule`);
    expect(schedule).toMatchObject({ disbursed_on: '2026-11-21', installment_amount: '1378.77' });
    expect(
      schedule.installments.every(
        (row: { status: string; paid: string }) => row.status === 'pending' && row.paid === '0.00',
      ),
    ).toBe(true);
  });
});

describe('the state machine', () => {
  const EXPECTED: Record<string, Record<string, number>> = {
    pending: { approve: 200, reject: 200, disburse: 409, repayments: 409, default: 409 },
    approved: { approve: 409, reject: 409, disburse: 200, repayments: 409, default: 409 },
    rejected: { approve: 409, reject: 409, disburse: 409, repayments: 409, default: 409 },
    disbursed: { approve: 409, reject: 409, disburse: 409, repayments: 201, default: 200 },
    repaid: { approve: 409, reject: 409, disburse: 409, repayments: 409, default: 409 },
    defaulted: { approve: 409, reject: 409, disburse: 409, repayments: 201, default: 409 },
  };
  const BODIES: Record<string, unknown> = {
    approve: {},
    reject: { reason: 'r' },
    disburse: {},
    repayments: { amount: '1.00' },
    default: { reason: 'r' },
  };

  for (const status of LOAN_STATUSES) {
    for (const action of LOAN_ACTIONS) {
      const expected = EXPECTED[status]![action]!;
      it(`${action} on a ${status} loan → ${expected}`, async () => {
        const id = await loanIn(t.app, status, {}, '2026-10-01');
        const eventsBefore = await count('SELECT count(*) AS n FROM loan_events WHERE loan_id = $1', [id]);
        const response = await post(t.app, `/api/loans/${id}/${action}`, BODIES[action], {
          'idempotency-key': newKey(),
        });
        expect(response.statusCode, response.body).toBe(expected);
        const eventsAfter = await count('SELECT count(*) AS n FROM loan_events WHERE loan_id = $1', [id]);
        if (expected === 409) {
          expect(response.json()).toMatchObject({
            type: 'https://branchloans.com/problems/invalid-state-transition',
            status: 409,
            current_status: status,
            allowed_actions: LOAN_ACTIONS.filter((a) => EXPECTED[status]![a] !== 409),
          });
          expect(eventsAfter).toBe(eventsBefore);
          expect((await get(`/api/loans/${id}`)).status).toBe(status);
        } else {
          expect(eventsAfter).toBe(eventsBefore + 1);
        }
      });
    }
  }

  it('answers 404 for an action on an unknown loan', async () => {
    const response = await post(t.app, '/api/loans/6f1c4b7e-1111-4111-8111-111111111111/approve');
    expect(response.statusCode).toBe(404);
  });
});

describe('action input', () => {
  it.each([
    ['reject', undefined, '', 'the request body must be a JSON object'],
    ['reject', {}, '/reason', 'is required'],
    [
      'reject',
      { reason: '' },
      '/reason',
      'must be 1–500 characters, without NUL characters or unpaired surrogates',
    ],
    [
      'reject',
      { reason: 'x'.repeat(501) },
      '/reason',
      'must be 1–500 characters, without NUL characters or unpaired surrogates',
    ],
    [
      'approve',
      { note: 5 },
      '/note',
      'must be 1–500 characters, without NUL characters or unpaired surrogates',
    ],
    ['approve', { approved: true }, '/approved', 'is not a recognised field'],
  ])('%s with %j → 400 at %s', async (action, body, pointer, message) => {
    const id = await loanIn(t.app, 'pending');
    const response = await post(t.app, `/api/loans/${id}/${action}`, body);
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toContainEqual({ pointer, message });
    expect((await get(`/api/loans/${id}`)).status).toBe('pending');
  });

  it('requires an Idempotency-Key to disburse and to record a repayment', async () => {
    const approved = await loanIn(t.app, 'approved');
    const disburse = await post(t.app, `/api/loans/${approved}/disburse`, {});
    expect(disburse.statusCode).toBe(400);
    expect(disburse.json().errors).toEqual([{ parameter: 'idempotency-key', message: 'is required' }]);
    const disbursed = await loanIn(t.app, 'disbursed');
    const repay = await post(t.app, `/api/loans/${disbursed}/repayments`, { amount: '1.00' });
    expect(repay.statusCode).toBe(400);
    const badKey = await post(
      t.app,
      `/api/loans/${disbursed}/repayments`,
      { amount: '1.00' },
      { 'idempotency-key': 'has space' },
    );
    expect(badKey.statusCode).toBe(400);
    expect(badKey.json().errors).toEqual([
      { parameter: 'idempotency-key', message: 'must be 1–255 characters of letters, digits and _ . : -' },
    ]);
  });

  it.each([
    [{ disbursed_on: '2026-11-22' }, 'must not be in the future (today is 2026-11-21 UTC)'],
    [{ disbursed_on: '2026-02-30' }, 'must be a date as YYYY-MM-DD'],
    [{ disbursed_on: '1999-12-31' }, 'must not be before 2000-01-01'],
  ])('refuses to disburse with %j', async (body, message) => {
    const id = await loanIn(t.app, 'approved');
    const response = await post(t.app, `/api/loans/${id}/disburse`, body, { 'idempotency-key': newKey() });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([{ pointer: '/disbursed_on', message }]);
    expect((await get(`/api/loans/${id}`)).status).toBe('approved');
  });

  it.each([
    [{ amount: '0' }, 400, '/amount', 'must be greater than 0'],
    [{ amount: '1.001' }, 400, '/amount', 'must have at most 2 decimal places for INR'],
    [{ amount: '-1' }, 400, '/amount', expect.stringContaining('no sign')],
    [
      { amount: '1.00', paid_on: '2026-11-22' },
      400,
      '/paid_on',
      'must not be in the future (today is 2026-11-21 UTC)',
    ],
    [{ amount: '1.00', paid_on: '2026-09-30' }, 400, '/paid_on', 'must not be before 2026-10-01'],
    [
      { amount: '1.00', reference: '' },
      400,
      '/reference',
      'must be 1–128 characters, without NUL characters or unpaired surrogates',
    ],
    [{ amount: '16545.28' }, 422, '/amount', 'must not exceed the outstanding balance of 16545.27'],
  ])('refuses the repayment %j and changes nothing', async (body, status, pointer, message) => {
    const id = await loanIn(t.app, 'disbursed', {}, '2026-10-01');
    const before = await get(`/api/loans/${id}`);
    const response = await post(t.app, `/api/loans/${id}/repayments`, body, { 'idempotency-key': newKey() });
    expect(response.statusCode).toBe(status);
    expect(response.json().errors).toEqual([{ pointer, message }]);
    expect(await get(`/api/loans/${id}`)).toEqual(before);
    expect(await get(`/api/loans/${id}/repayments`)).toEqual([]);
  });

  it('reports the outstanding balance on an overpayment', async () => {
    const id = await loanIn(t.app, 'disbursed', {
      amount: '100.00',
      term_months: 1,
      interest_rate_apr: '12.00',
    });
    const response = await post(
      t.app,
      `/api/loans/${id}/repayments`,
      { amount: '101.01' },
      { 'idempotency-key': newKey() },
    );
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({
      type: 'https://branchloans.com/problems/validation-error',
      status: 422,
      detail: 'amount exceeds the outstanding balance of 101.00 INR',
      outstanding_balance: '101.00',
    });
  });

  it('handles currencies without and with three minor digits', async () => {
    const vnd = await loanIn(t.app, 'disbursed', {
      amount: '8400',
      currency: 'VND',
      term_months: 4,
      interest_rate_apr: '26.00',
    });
    const schedule = await get(`/api/loans/${vnd}/schedule`);
    expect(schedule.installments.map((row: { total: string }) => row.total)).toEqual([
      '2215',
      '2215',
      '2215',
      '2215',
    ]);
    const paid = await post(
      t.app,
      `/api/loans/${vnd}/repayments`,
      { amount: 2215 },
      { 'idempotency-key': newKey() },
    );
    expect(paid.json()).toMatchObject({ amount: '2215', interest: '182', principal: '2033' });
    const kwd = await loanIn(t.app, 'disbursed', {
      amount: '150.000',
      currency: 'KWD',
      term_months: 3,
      interest_rate_apr: '10.00',
    });
    expect((await get(`/api/loans/${kwd}`)).outstanding_principal).toBe('150.000');
    const wrong = await post(
      t.app,
      `/api/loans/${kwd}/repayments`,
      { amount: '1.0001' },
      { 'idempotency-key': newKey() },
    );
    expect(wrong.json().errors).toEqual([
      { pointer: '/amount', message: 'must have at most 3 decimal places for KWD' },
    ]);
  });
});

describe('audit events', () => {
  it('cannot be updated or deleted', async () => {
    const id = await loanIn(t.app, 'approved');
    await expect(t.pool.query(`UPDATE loan_events SET actor = 'x' WHERE loan_id = $1`, [id])).rejects.toThrow(
      /append-only/,
    );
    await expect(t.pool.query('DELETE FROM loan_events WHERE loan_id = $1', [id])).rejects.toThrow(
      /append-only/,
    );
    await expect(t.pool.query('TRUNCATE loan_events')).rejects.toThrow(/append-only/);
    expect(await count('SELECT count(*) AS n FROM loan_events WHERE loan_id = $1', [id])).toBe(2);
  });

  it('answers 404 for the events, repayments and schedule of an unknown loan', async () => {
    for (const part of ['events', 'repayments', 'schedule']) {
      const response = await t.app.inject({ url: `/api/loans/6f1c4b7e-1111-4111-8111-111111111111/${part}` });
      expect(response.statusCode).toBe(404);
    }
  });
});

describe('the number of repayments', () => {
  it('is bounded: the 10,000th repayment must clear the loan, so it can always be repaid', async () => {
    const id = await loanIn(t.app, 'disbursed');
    await t.pool.query(
      `INSERT INTO repayments (loan_id, amount_minor, interest_minor, principal_minor, paid_on, actor, request_id)
       SELECT $1, 1, 1, 0, CURRENT_DATE, 'test', 'bulk' FROM generate_series(1, 9999)`,
      [id],
    );
    const repay = (amount: string) =>
      post(t.app, `/api/loans/${id}/repayments`, { amount }, { 'idempotency-key': newKey() });
    const refused = await repay('1.00');
    expect(refused.statusCode).toBe(422);
    expect(refused.json().detail).toBe(
      'a loan takes at most 10000 repayments and this would be the last; pay what is outstanding in one',
    );
    expect(await count('SELECT count(*) AS n FROM repayments WHERE loan_id = $1', [id])).toBe(9999);

    const owed: string = (await repay('9999999.00')).json().outstanding_balance;
    const last = await repay(owed);
    expect(last.statusCode).toBe(201);
    expect((await t.app.inject({ url: `/api/loans/${id}` })).json().status).toBe('repaid');
    expect(await count('SELECT count(*) AS n FROM repayments WHERE loan_id = $1', [id])).toBe(10000);
  });
});
