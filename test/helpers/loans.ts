import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { JSON_HEADERS } from './app.ts';

export const TERMS = {
  borrower_id: 'usr_test',
  amount: '15000.00',
  currency: 'INR',
  term_months: 12,
  interest_rate_apr: '18.50',
};

let keys = 0;
export const newKey = () => `key-${process.pid}-${++keys}`;

export async function post(
  app: FastifyInstance,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return app.inject({
    method: 'POST',
    url,
    headers: body === undefined ? headers : { ...JSON_HEADERS, ...headers },
    payload: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Creates a loan and moves it to `status` through the API; returns its id. */
export async function loanIn(
  app: FastifyInstance,
  status: 'pending' | 'approved' | 'rejected' | 'disbursed' | 'repaid' | 'defaulted',
  terms: Record<string, unknown> = {},
  disbursedOn?: string,
): Promise<string> {
  const created = await post(app, '/api/loans', { ...TERMS, ...terms });
  expect(created.statusCode).toBe(201);
  const id: string = created.json().id;
  const ok = async (url: string, body?: unknown, headers?: Record<string, string>) => {
    const response = await post(app, `/api/loans/${id}/${url}`, body, headers);
    expect(response.statusCode, response.body).toBeLessThan(300);
  };
  if (status === 'rejected') await ok('reject', { reason: 'policy' });
  if (status === 'pending' || status === 'rejected') return id;
  await ok('approve');
  if (status === 'approved') return id;
  await ok('disburse', disbursedOn ? { disbursed_on: disbursedOn } : {}, { 'idempotency-key': newKey() });
  if (status === 'defaulted') await ok('default', { reason: 'unreachable' });
  if (status === 'repaid') {
    const schedule = (await app.inject({ url: `/api/loans/${id}/schedule` })).json();
    await ok('repayments', { amount: schedule.total_repayable }, { 'idempotency-key': newKey() });
  }
  return id;
}
