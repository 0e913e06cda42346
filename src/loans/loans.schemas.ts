import { Type } from '@sinclair/typebox';
import {
  CurrencyInput,
  DecimalInput,
  MoneyString,
  StringEnum,
  Timestamp,
  Uuid,
} from '../platform/schemas.ts';
import { LOAN_STATUSES } from './loan-status.ts';

export const BorrowerId = Type.String({
  pattern: '^[A-Za-z0-9_.:-]{1,64}$',
  errorMessage: 'must be 1–64 characters of letters, digits and _ . : -',
  examples: ['usr_india_002'],
});

export const LoanStatusSchema = StringEnum(LOAN_STATUSES);

export const CreateLoanBody = Type.Object(
  {
    borrower_id: BorrowerId,
    amount: DecimalInput(
      'must be a positive decimal such as "15000.00" (a string or a number; no sign, exponent or spaces)',
      '15000.00',
    ),
    currency: CurrencyInput,
    term_months: Type.Integer({ minimum: 1, maximum: 360, examples: [12] }),
    interest_rate_apr: DecimalInput('must be a decimal from 0 to 100 with at most 2 decimal places', '18.50'),
  },
  { additionalProperties: false },
);

export const Loan = Type.Object({
  id: Uuid,
  borrower_id: Type.String(),
  amount: MoneyString,
  currency: Type.String({ examples: ['INR'] }),
  term_months: Type.Integer(),
  interest_rate_apr: Type.String({ examples: ['18.50'] }),
  status: LoanStatusSchema,
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const ListLoansQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50, description: 'Page size (1–200)' }),
    cursor: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 512,
        description: 'Opaque cursor from the previous Link header',
      }),
    ),
    status: Type.Optional(LoanStatusSchema),
    currency: Type.Optional(CurrencyInput),
    borrower_id: Type.Optional(BorrowerId),
    created_after: Type.Optional({
      ...Timestamp,
      description: 'Only loans created strictly after this instant',
    }),
    created_before: Type.Optional({
      ...Timestamp,
      description: 'Only loans created strictly before this instant',
    }),
  },
  { additionalProperties: false },
);
