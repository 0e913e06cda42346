export const LOAN_STATUSES = ['pending', 'approved', 'rejected', 'disbursed', 'repaid', 'defaulted'] as const;
export type LoanStatus = (typeof LOAN_STATUSES)[number];
