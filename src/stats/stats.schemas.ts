import { Type } from '@sinclair/typebox';
import { LOAN_STATUSES } from '../loans/loan-status.ts';
import { Count, CurrencyInput, MoneyString, Timestamp } from '../platform/schemas.ts';

export const StatsQuery = Type.Object(
  { currency: Type.Optional(CurrencyInput) },
  { additionalProperties: false },
);

const CurrencyAmounts = Type.Object({
  loans: Count(),
  total_amount: MoneyString,
  avg_amount: MoneyString,
  outstanding_principal: MoneyString,
  par30_ratio: Type.String({ pattern: '^[0-9]+\\.[0-9]{4}$', maxLength: 6, examples: ['0.0000'] }),
});

export const Stats = Type.Object({
  total_loans: Count(),
  by_status: Type.Object(Object.fromEntries(LOAN_STATUSES.map((status) => [status, Count()]))),
  by_currency: Type.Record(Type.String(), Count()),
  amounts: Type.Record(Type.String(), CurrencyAmounts),
  as_of: Timestamp,
});
