export const LOAN_STATUSES = ['pending', 'approved', 'rejected', 'disbursed', 'repaid', 'defaulted'] as const;
export type LoanStatus = (typeof LOAN_STATUSES)[number];

/**
 * Loans that owe money: they carry outstanding principal, a next due date and days past due, and count
 * in PAR30. SQL reads the same list from the function loan_status_is_active (migration 0005); a test
 * holds the two equal.
 */
export const ACTIVE_STATUSES = ['disbursed', 'defaulted'] as const satisfies readonly LoanStatus[];

export function isActive(status: LoanStatus): boolean {
  return (ACTIVE_STATUSES as readonly LoanStatus[]).includes(status);
}

/** Action names are the URL path segments: POST /api/loans/{id}/{action}. */
export const LOAN_ACTIONS = ['approve', 'reject', 'disburse', 'repayments', 'default'] as const;
export type LoanAction = (typeof LOAN_ACTIONS)[number];

/** Maker–checker: these must be done by someone other than whoever created the loan. */
export const CHECKER_ACTIONS: readonly LoanAction[] = ['approve', 'reject', 'disburse'];

// A repayment keeps the status, unless it clears the balance: then the loan becomes CLEARED_STATUS.
const TRANSITIONS: Readonly<Record<LoanStatus, Readonly<Partial<Record<LoanAction, LoanStatus>>>>> = {
  pending: { approve: 'approved', reject: 'rejected' },
  approved: { disburse: 'disbursed' },
  rejected: {},
  disbursed: { repayments: 'disbursed', default: 'defaulted' },
  repaid: {},
  defaulted: { repayments: 'defaulted' },
};
export const CLEARED_STATUS = 'repaid' satisfies LoanStatus;

/** The status after `action`, or undefined when `action` is not allowed from `status`. */
export function nextStatus(status: LoanStatus, action: LoanAction): LoanStatus | undefined {
  return TRANSITIONS[status][action];
}

export function canPerform(status: LoanStatus, action: LoanAction): boolean {
  return nextStatus(status, action) !== undefined;
}

/** The one status `action` is allowed from; only for actions allowed from a single status. */
export function onlyStatusFor(action: LoanAction): LoanStatus {
  const from = LOAN_STATUSES.filter((status) => canPerform(status, action));
  if (from.length !== 1) throw new Error(`${action} is allowed from ${from.length} statuses, not one`);
  return from[0]!;
}

/** Actions allowed from `status`, in LOAN_ACTIONS order (for the 409 body's `allowed_actions`). */
export function allowedActions(status: LoanStatus): LoanAction[] {
  return LOAN_ACTIONS.filter((action) => canPerform(status, action));
}

/** Every change of status an action can make, the clearing repayment included. */
export function statusChanges(): { from: LoanStatus; to: LoanStatus }[] {
  return LOAN_STATUSES.flatMap((from) =>
    LOAN_ACTIONS.flatMap((action) => {
      const to = nextStatus(from, action);
      if (to === undefined) return [];
      const changes = to === from ? [] : [{ from, to }];
      return action === 'repayments' ? [...changes, { from, to: CLEARED_STATUS }] : changes;
    }),
  );
}
