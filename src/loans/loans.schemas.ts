import { Type } from '@sinclair/typebox';
import { DECIMAL_PATTERN } from '../money/money.ts';
import {
  CurrencyInput,
  DecimalInput,
  MoneyString,
  StringEnum,
  Timestamp,
  Uuid,
} from '../platform/schemas.ts';
import { EARLIEST_INSTANT, LATEST_INSTANT } from '../platform/timestamps.ts';
import { INSTALLMENT_STATUSES } from './allocation.ts';
import { EVENT_TYPES } from './events.repository.ts';
import { LOAN_STATUSES, type LoanStatus } from './loan-status.ts';
import { MAX_TERM_MONTHS } from './schedule.ts';

const BorrowerId = Type.String({
  pattern: '^[A-Za-z0-9_.:-]{1,64}$',
  errorMessage: 'must be 1–64 characters of letters, digits and _ . : -',
  examples: ['usr_india_002'],
});

const LoanStatusSchema = StringEnum(LOAN_STATUSES);

const CalendarDate = Type.String({
  format: 'date',
  errorMessage: 'must be a date as YYYY-MM-DD',
  examples: ['2026-11-21'],
});
// A type array rather than anyOf: the response serializer then writes the value without running
// format validation on every non-null field (which an anyOf branch costs it).
const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) =>
  Type.Unsafe<string | null>({ ...schema, type: ['string', 'null'] });
/** Free text as the database can store it: no NUL character and no unpaired UTF-16 surrogate. */
const Text = (max: number, description: string) =>
  Type.String({
    minLength: 1,
    maxLength: max,
    pattern: '^[^\\u0000\\uD800-\\uDFFF]*$',
    errorMessage: `must be 1–${max} characters, without NUL characters or unpaired surrogates`,
    description,
  });
const TimestampFilter = (description: string) => ({
  ...Timestamp,
  errorMessage: `must be an RFC 3339 timestamp from ${EARLIEST_INSTANT} to ${LATEST_INSTANT}`,
  description,
});

const amountInput = DecimalInput(
  'must be a positive decimal such as "15000.00" (a string or a number; no sign, exponent or spaces)',
  '15000.00',
);
const TermMonths = Type.Integer({ minimum: 1, maximum: MAX_TERM_MONTHS, examples: [12] });
const APR_MESSAGE = 'must be a decimal from 0 to 100 with at most 2 decimal places';
const aprInput = DecimalInput(APR_MESSAGE, '18.50');

export const CreateLoanBody = Type.Object(
  {
    borrower_id: BorrowerId,
    amount: amountInput,
    currency: CurrencyInput,
    term_months: TermMonths,
    interest_rate_apr: aprInput,
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
  approved_at: Nullable(Timestamp),
  approval_note: Nullable(Type.String()),
  rejected_at: Nullable(Timestamp),
  rejection_reason: Nullable(Type.String()),
  disbursed_at: Nullable(Timestamp),
  disbursed_on: Nullable(Type.String({ format: 'date' })),
  defaulted_at: Nullable(Timestamp),
  default_reason: Nullable(Type.String()),
  repaid_at: Nullable(Timestamp),
  outstanding_principal: {
    ...MoneyString,
    description: 'Principal not yet repaid ("0.00" before disbursement)',
  },
  total_repaid: { ...MoneyString, description: 'Sum of all repayments (principal and interest)' },
  next_due_date: Nullable(
    Type.String({
      format: 'date',
      description: 'Due date of the oldest installment not fully paid (may be past)',
    }),
  ),
  days_past_due: Type.Integer({
    description: 'Days since the oldest unpaid installment fell due; 0 if none',
  }),
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
    created_after: Type.Optional(TimestampFilter('Only loans created strictly after this instant')),
    created_before: Type.Optional(TimestampFilter('Only loans created strictly before this instant')),
  },
  { additionalProperties: false },
);

export const ApproveBody = Type.Object(
  { note: Type.Optional(Text(500, 'Why the loan was approved')) },
  { additionalProperties: false },
);
export const ReasonBody = Type.Object({ reason: Text(500, 'Why') }, { additionalProperties: false });
export const DisburseBody = Type.Object(
  {
    disbursed_on: Type.Optional({
      ...CalendarDate,
      description: 'When the money was paid out (default: today, UTC); any date up to today',
    }),
  },
  { additionalProperties: false },
);
export const RepaymentBody = Type.Object(
  {
    amount: amountInput,
    paid_on: Type.Optional({ ...CalendarDate, description: 'When it was paid (default: today, UTC)' }),
    reference: Type.Optional(Text(128, 'The payment reference, e.g. a transaction id')),
  },
  { additionalProperties: false },
);

const idempotencyKey = Type.String({
  pattern: '^[A-Za-z0-9_.:-]{1,255}$',
  errorMessage: 'must be 1–255 characters of letters, digits and _ . : -',
  description: 'Makes retries safe: the first outcome is stored and replayed for 24 hours',
});
const ifMatch = Type.String({ description: "The loan's ETag; a stale one gets 412 and changes nothing" });

export const CreateHeaders = Type.Object({ 'idempotency-key': Type.Optional(idempotencyKey) });
export const ActionHeaders = Type.Object({
  'idempotency-key': Type.Optional(idempotencyKey),
  'if-match': Type.Optional(ifMatch),
});
export const ActionHeadersKeyRequired = Type.Object({
  'idempotency-key': idempotencyKey,
  'if-match': Type.Optional(ifMatch),
});

export const QuoteQuery = Type.Object(
  {
    amount: Type.String({
      pattern: DECIMAL_PATTERN,
      errorMessage: 'must be a positive decimal such as 15000.00',
    }),
    currency: CurrencyInput,
    term_months: TermMonths,
    interest_rate_apr: Type.String({ pattern: DECIMAL_PATTERN, errorMessage: APR_MESSAGE }),
  },
  { additionalProperties: false },
);

export const ScheduleSchema = Type.Object({
  currency: Type.String(),
  disbursed_on: Type.String({
    format: 'date',
    description: 'Disbursement date (today for a quote or undisbursed loan)',
  }),
  installment_amount: MoneyString,
  total_interest: MoneyString,
  total_repayable: MoneyString,
  installments: Type.Array(
    Type.Object({
      number: Type.Integer(),
      due_date: Type.String({ format: 'date' }),
      principal: MoneyString,
      interest: MoneyString,
      total: MoneyString,
      paid: MoneyString,
      status: StringEnum(INSTALLMENT_STATUSES),
    }),
  ),
});

export const Repayment = Type.Object({
  id: Uuid,
  loan_id: Uuid,
  amount: MoneyString,
  currency: Type.String(),
  interest: { ...MoneyString, description: 'Part of the payment allocated to interest' },
  principal: { ...MoneyString, description: 'Part of the payment allocated to principal' },
  paid_on: Type.String({ format: 'date' }),
  reference: Nullable(Type.String()),
  actor: Type.String(),
  request_id: Type.String(),
  created_at: Timestamp,
});

export const LoanEvent = Type.Object({
  id: Uuid,
  loan_id: Uuid,
  type: StringEnum(EVENT_TYPES),
  from_status: Type.Unsafe<LoanStatus | null>({ type: ['string', 'null'], enum: [...LOAN_STATUSES, null] }),
  to_status: LoanStatusSchema,
  actor: Type.String({ description: 'API key id, or "anonymous"' }),
  request_id: Type.String(),
  at: Timestamp,
  data: Type.Record(Type.String(), Type.Unknown()),
});
