import { Type } from '@sinclair/typebox';
import { DECIMAL_PATTERN } from '../money/money.ts';
import {
  Actor,
  CurrencyCode,
  CurrencyInput,
  DateString,
  DecimalInput,
  MAX_DECIMAL_INPUT_LENGTH,
  MoneyString,
  RequestId,
  StringEnum,
  Timestamp,
  Uuid,
} from '../platform/schemas.ts';
import { EARLIEST_INSTANT, LATEST_INSTANT } from '../platform/timestamps.ts';
import { ERROR_MESSAGE } from '../platform/validation.ts';
import { INSTALLMENT_STATUSES, MAX_REPAYMENTS_PER_LOAN } from './allocation.ts';
import { EVENT_TYPES } from './events.repository.ts';
import { LOAN_STATUSES, type LoanStatus } from './loan-status.ts';
import { MAX_TERM_MONTHS } from './schedule.ts';

/** The documented upper bounds of a loan's lists: see the routes' descriptions. */
const MAX_PAGE_SIZE = 200;
// A create, at most four transitions (approve, disburse, default, repaid) and one event per repayment.
const MAX_EVENTS_LISTED = MAX_REPAYMENTS_PER_LOAN + 5;
// Days from 0001-01-01 to 9999-12-31, the dates PostgreSQL and the API handle.
const MAX_DAYS = 3_652_058;
const NOTE_LENGTH = 500;
const REFERENCE_LENGTH = 128;
// Free text as it was accepted (see Text below).
const STORABLE_TEXT = '^[^\\u0000\\uD800-\\uDFFF]*$';

const BorrowerId = Type.String({
  pattern: '^[A-Za-z0-9_.:-]{1,64}$',
  maxLength: 64,
  [ERROR_MESSAGE]: 'must be 1–64 characters of letters, digits and _ . : -',
  examples: ['usr_india_002'],
});

const LoanStatusSchema = StringEnum(LOAN_STATUSES);

const CalendarDate = Type.String({
  format: 'date',
  maxLength: 10,
  [ERROR_MESSAGE]: 'must be a date as YYYY-MM-DD',
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
    pattern: STORABLE_TEXT,
    [ERROR_MESSAGE]: `must be 1–${max} characters, without NUL characters or unpaired surrogates`,
    description,
  });
/** Free text as the service returns it, null when absent. */
const StoredText = (max: number) => Nullable(Type.String({ maxLength: max, pattern: STORABLE_TEXT }));
const TimestampFilter = (description: string) => ({
  ...Timestamp,
  // Any RFC 3339 form is accepted (offsets, more fraction digits), hence more than the 24 characters written.
  maxLength: 64,
  [ERROR_MESSAGE]: `must be an RFC 3339 timestamp from ${EARLIEST_INSTANT} to ${LATEST_INSTANT}`,
  description,
});

const amountInput = DecimalInput(
  'must be a positive decimal such as "15000.00" (a string or a number; no sign, exponent or spaces)',
  '15000.00',
);
const TermMonths = Type.Integer({ minimum: 1, maximum: MAX_TERM_MONTHS, examples: [12] });
const Apr = Type.String({ pattern: '^[0-9]{1,3}\\.[0-9]{2}$', maxLength: 6, examples: ['18.50'] });
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
  borrower_id: Type.String({ pattern: '^[A-Za-z0-9_.:-]+$', maxLength: 64 }),
  amount: MoneyString,
  currency: CurrencyCode,
  term_months: TermMonths,
  interest_rate_apr: Apr,
  status: LoanStatusSchema,
  created_at: Timestamp,
  updated_at: Timestamp,
  approved_at: Nullable(Timestamp),
  approval_note: StoredText(NOTE_LENGTH),
  rejected_at: Nullable(Timestamp),
  rejection_reason: StoredText(NOTE_LENGTH),
  disbursed_at: Nullable(Timestamp),
  disbursed_on: Nullable(DateString()),
  defaulted_at: Nullable(Timestamp),
  default_reason: StoredText(NOTE_LENGTH),
  repaid_at: Nullable(Timestamp),
  outstanding_principal: {
    ...MoneyString,
    description: 'Principal not yet repaid ("0.00" before disbursement)',
  },
  total_repaid: { ...MoneyString, description: 'Sum of all repayments (principal and interest)' },
  next_due_date: Nullable(DateString('Due date of the oldest installment not fully paid (may be past)')),
  days_past_due: Type.Integer({
    minimum: 0,
    maximum: MAX_DAYS,
    description: 'Days since the oldest unpaid installment fell due; 0 if none',
  }),
});

export const LoanList = Type.Array(Loan, { maxItems: MAX_PAGE_SIZE });

export const ListLoansQuery = Type.Object(
  {
    limit: Type.Integer({
      minimum: 1,
      maximum: MAX_PAGE_SIZE,
      default: 50,
      description: `Page size (1–${MAX_PAGE_SIZE})`,
    }),
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
  { note: Type.Optional(Text(NOTE_LENGTH, 'Why the loan was approved')) },
  { additionalProperties: false },
);
export const ReasonBody = Type.Object({ reason: Text(NOTE_LENGTH, 'Why') }, { additionalProperties: false });
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
    reference: Type.Optional(Text(REFERENCE_LENGTH, 'The payment reference, e.g. a transaction id')),
  },
  { additionalProperties: false },
);

const idempotencyKey = Type.String({
  pattern: '^[A-Za-z0-9_.:-]{1,255}$',
  maxLength: 255,
  [ERROR_MESSAGE]: 'must be 1–255 characters of letters, digits and _ . : -',
  description: 'Makes retries safe: the first outcome is stored and replayed for 24 hours',
});
const ifMatch = Type.String({
  // ETags are about 20 characters; the bound only refuses what cannot be one.
  maxLength: 512,
  [ERROR_MESSAGE]: 'must be an ETag of at most 512 characters',
  description:
    "The loan's ETag; a stale one gets 412 and changes nothing. At most 512 characters (400 otherwise)",
});

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
      maxLength: MAX_DECIMAL_INPUT_LENGTH,
      [ERROR_MESSAGE]: 'must be a positive decimal such as 15000.00',
    }),
    currency: CurrencyInput,
    term_months: TermMonths,
    interest_rate_apr: Type.String({
      pattern: DECIMAL_PATTERN,
      maxLength: MAX_DECIMAL_INPUT_LENGTH,
      [ERROR_MESSAGE]: APR_MESSAGE,
    }),
  },
  { additionalProperties: false },
);

export const ScheduleSchema = Type.Object({
  currency: CurrencyCode,
  disbursed_on: DateString('Disbursement date (today for a quote or undisbursed loan)'),
  installment_amount: MoneyString,
  total_interest: MoneyString,
  total_repayable: MoneyString,
  installments: Type.Array(
    Type.Object({
      number: Type.Integer({ minimum: 1, maximum: MAX_TERM_MONTHS }),
      due_date: DateString(),
      principal: MoneyString,
      interest: MoneyString,
      total: MoneyString,
      paid: MoneyString,
      status: StringEnum(INSTALLMENT_STATUSES),
    }),
    { minItems: 1, maxItems: MAX_TERM_MONTHS, description: 'One per month of the term' },
  ),
});

export const Repayment = Type.Object({
  id: Uuid,
  loan_id: Uuid,
  amount: MoneyString,
  currency: CurrencyCode,
  interest: { ...MoneyString, description: 'Part of the payment allocated to interest' },
  principal: { ...MoneyString, description: 'Part of the payment allocated to principal' },
  paid_on: DateString(),
  reference: StoredText(REFERENCE_LENGTH),
  actor: Actor,
  request_id: RequestId,
  created_at: Timestamp,
});

export const RepaymentList = Type.Array(Repayment, { maxItems: MAX_REPAYMENTS_PER_LOAN });

export const LoanEvent = Type.Object({
  id: Uuid,
  loan_id: Uuid,
  type: StringEnum(EVENT_TYPES),
  from_status: Type.Unsafe<LoanStatus | null>({ type: ['string', 'null'], enum: [...LOAN_STATUSES, null] }),
  to_status: LoanStatusSchema,
  actor: Actor,
  request_id: RequestId,
  at: Timestamp,
  data: Type.Record(Type.String(), Type.Unknown(), {
    maxProperties: 16,
    description: 'What the change recorded: amounts, dates, the note or reason, the repayment id',
  }),
});

export const LoanEventList = Type.Array(LoanEvent, { maxItems: MAX_EVENTS_LISTED });
