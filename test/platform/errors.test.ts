import { describe, expect, it } from 'vitest';
import { AppError, toProblem } from '../../src/platform/errors.ts';

describe('AppError', () => {
  it('takes its status and title from its problem type', () => {
    const error = new AppError('not-found', { detail: 'Loan x does not exist' });
    expect([error.status, error.title, error.message]).toEqual([
      404,
      'Resource not found',
      'Loan x does not exist',
    ]);
    expect(new AppError('idempotency-key-reused').status).toBe(422);
    expect(new AppError('request-timeout').status).toBe(408);
  });

  it('takes another status only where the type declares one', () => {
    expect(new AppError('validation-error', { status: 422 }).status).toBe(422);
    // @ts-expect-error not-found has no other status
    void new AppError('not-found', { status: 400 });
    // @ts-expect-error validation-error may be 400 or 422, nothing else
    void new AppError('validation-error', { status: 409 });
  });

  it('renders RFC 9457 problem details with its extensions', () => {
    const error = new AppError('invalid-state-transition', {
      detail: 'Cannot approve a loan that is rejected',
      extensions: { current_status: 'rejected', allowed_actions: [] },
    });
    expect(toProblem(error, '/api/loans/x/approve', 'req-1')).toEqual({
      type: 'https://branchloans.com/problems/invalid-state-transition',
      title: 'Action not allowed in the current state',
      status: 409,
      detail: 'Cannot approve a loan that is rejected',
      instance: '/api/loans/x/approve',
      request_id: 'req-1',
      current_status: 'rejected',
      allowed_actions: [],
    });
  });
});
