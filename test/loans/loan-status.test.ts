import { describe, expect, it } from 'vitest';
import {
  allowedActions,
  canPerform,
  LOAN_ACTIONS,
  LOAN_STATUSES,
  type LoanAction,
  type LoanStatus,
  nextStatus,
} from '../../src/loans/loan-status.ts';

// Every transition of API.md §3; any pair not listed here must be refused.
const ALLOWED: [LoanStatus, LoanAction, LoanStatus][] = [
  ['pending', 'approve', 'approved'],
  ['pending', 'reject', 'rejected'],
  ['approved', 'disburse', 'disbursed'],
  ['disbursed', 'repayments', 'disbursed'],
  ['disbursed', 'default', 'defaulted'],
  ['defaulted', 'repayments', 'defaulted'],
];

const everyPair = LOAN_STATUSES.flatMap((status) => LOAN_ACTIONS.map((action) => [status, action] as const));

describe('loan transitions', () => {
  it('names the actions after the URL path segments', () => {
    expect(LOAN_ACTIONS).toEqual(['approve', 'reject', 'disburse', 'repayments', 'default']);
  });

  it.each(
    everyPair.map(([status, action]) => {
      const to = ALLOWED.find(([from, via]) => from === status && via === action)?.[2];
      return [status, action, to] as const;
    }),
  )('%s --%s--> %s', (status, action, to) => {
    expect(nextStatus(status, action)).toBe(to);
    expect(canPerform(status, action)).toBe(to !== undefined);
  });

  it('allows exactly the six transitions of the contract', () => {
    const allowed = everyPair.filter(([status, action]) => canPerform(status, action));
    expect(allowed).toEqual(ALLOWED.map(([from, action]) => [from, action]));
  });

  it.each<[LoanStatus, LoanAction[]]>([
    ['pending', ['approve', 'reject']],
    ['approved', ['disburse']],
    ['rejected', []],
    ['disbursed', ['repayments', 'default']],
    ['repaid', []],
    ['defaulted', ['repayments']],
  ])('from %s the allowed actions are %j, in path-segment order', (status, actions) => {
    expect(allowedActions(status)).toEqual(actions);
  });

  it('returns a fresh array that callers cannot use to change the table', () => {
    allowedActions('pending').push('disburse');
    expect(allowedActions('pending')).toEqual(['approve', 'reject']);
    expect(canPerform('pending', 'disburse')).toBe(false);
  });
});
