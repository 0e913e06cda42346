import { Type } from '@sinclair/typebox';
import { LOAN_STATUSES } from '../loans/loan-status.ts';
import { CurrencyInput, MoneyString, Timestamp } from '../platform/schemas.ts';

export const StatsQuery = Type.Object(
  { currency: Type.Optional(CurrencyInput) },
  { additionalProperties: false },
);

const CurrencyAmounts = Type.Object({
  loans: Type.Integer(),
  total_amount: MoneyString,
  avg_amount: MoneyString,
  outstanding_principal: MoneyString,
  par30_ratio: Type.String({ pattern: '^[0-9]+\\.[0-9]{4}$', examples: ['0.0000'] }),
});

export const Stats = Type.Object({
  total_loans: Type.Integer(),
  by_status: Type.Object(Object.fromEntries(LOAN_STATUSES.map((status) => [status, Type.Integer()]))),
  by_currency: Type.Record(Type.String(), Type.Integer()),
  amounts: Type.Record(Type.String(), CurrencyAmounts),
  as_of: Timestamp,
});
