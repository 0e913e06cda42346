export const LOAN_STATUSES = ['pending', 'approved', 'rejected', 'disbursed', 'repaid', 'defaulted'] as const;
export type LoanStatus = (typeof LOAN_STATUSES)[number];

/** Action names are the URL path segments: POST /api/loans/{id}/{action}. */
export const LOAN_ACTIONS = ['approve', 'reject', 'disburse', 'repayments', 'default'] as const;
export type LoanAction = (typeof LOAN_ACTIONS)[number];

// A repayment keeps the status; the service moves the loan to `repaid` when the balance reaches 0.
const TRANSITIONS: Readonly<Record<LoanStatus, Readonly<Partial<Record<LoanAction, LoanStatus>>>>> = {
  pending: { approve: 'approved', reject: 'rejected' },
  approved: { disburse: 'disbursed' },
  rejected: {},
  disbursed: { repayments: 'disbursed', default: 'defaulted' },
  repaid: {},
  defaulted: { repayments: 'defaulted' },
};

/** The status after `action`, or undefined when `action` is not allowed from `status`. */
export function nextStatus(status: LoanStatus, action: LoanAction): LoanStatus | undefined {
  return TRANSITIONS[status][action];
}

export function canPerform(status: LoanStatus, action: LoanAction): boolean {
  return nextStatus(status, action) !== undefined;
}

/** Actions allowed from `status`, in LOAN_ACTIONS order (for the 409 body's `allowed_actions`). */
export function allowedActions(status: LoanStatus): LoanAction[] {
  return LOAN_ACTIONS.filter((action) => canPerform(status, action));
}
