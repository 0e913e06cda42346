import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  ACTIVE_STATUSES,
  allowedActions,
  canPerform,
  isActive,
  LOAN_ACTIONS,
  LOAN_STATUSES,
  type LoanAction,
  type LoanStatus,
  nextStatus,
  onlyStatusFor,
  statusChanges,
} from '../../src/loans/loan-status.ts';
import { createTestDatabase } from '../helpers/database.ts';

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

describe('active statuses', () => {
  it('are the same in SQL (loan_status_is_active) as in the service', async () => {
    const db = await createTestDatabase();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const result = await client.query<{ status: LoanStatus; active: boolean }>(
        'SELECT status, loan_status_is_active(status) AS active FROM unnest($1::text[]) AS status',
        [LOAN_STATUSES],
      );
      expect(result.rows).toEqual(LOAN_STATUSES.map((status) => ({ status, active: isActive(status) })));
      expect(LOAN_STATUSES.filter(isActive)).toEqual([...ACTIVE_STATUSES]);
    } finally {
      await client.end();
      await db.drop();
    }
  });
});

describe('onlyStatusFor', () => {
  it('names the one status a decision is taken from, and refuses actions allowed from several', () => {
    expect(onlyStatusFor('approve')).toBe('pending');
    expect(onlyStatusFor('reject')).toBe('pending');
    expect(onlyStatusFor('disburse')).toBe('approved');
    expect(() => onlyStatusFor('repayments')).toThrow('repayments is allowed from 2 statuses, not one');
  });
});

describe('statusChanges', () => {
  it('lists each change an action makes, and the clearing repayment to repaid', () => {
    expect(statusChanges()).toEqual([
      { from: 'pending', to: 'approved' },
      { from: 'pending', to: 'rejected' },
      { from: 'approved', to: 'disbursed' },
      { from: 'disbursed', to: 'repaid' },
      { from: 'disbursed', to: 'defaulted' },
      { from: 'defaulted', to: 'repaid' },
    ]);
  });
});
