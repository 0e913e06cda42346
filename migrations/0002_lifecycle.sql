-- Up Migration
-- No down migration: this one is irreversible (restore a backup taken before upgrading).

-- Lifecycle state of a loan. The schedule is a pure function of amount, rate, term and disbursed_on,
-- all frozen once the loan is disbursed; the columns below are maintained at each change so that
-- lists and stats never recompute schedules.
ALTER TABLE loans
  ADD COLUMN created_by        text NOT NULL DEFAULT 'anonymous',
  ADD COLUMN approved_at       timestamptz(3),
  ADD COLUMN approval_note     text,
  ADD COLUMN rejected_at       timestamptz(3),
  ADD COLUMN rejection_reason  text,
  ADD COLUMN disbursed_at      timestamptz(3),
  ADD COLUMN disbursed_on      date,
  ADD COLUMN defaulted_at      timestamptz(3),
  ADD COLUMN default_reason    text,
  ADD COLUMN repaid_at         timestamptz(3),
  -- Principal not yet repaid, and everything repaid so far (principal and interest), in minor units.
  ADD COLUMN outstanding_principal_minor bigint NOT NULL DEFAULT 0 CHECK (outstanding_principal_minor >= 0),
  ADD COLUMN repaid_minor      bigint NOT NULL DEFAULT 0 CHECK (repaid_minor >= 0),
  -- Due date of the oldest installment not fully paid; NULL when none is owed.
  ADD COLUMN oldest_unpaid_due_date date;

-- Rows written before this migration had no disbursement date.
UPDATE loans SET disbursed_on = created_at::date WHERE status IN ('disbursed', 'repaid', 'defaulted');

ALTER TABLE loans
  ADD CONSTRAINT loans_disbursed_on_iff_disbursed
    CHECK ((disbursed_on IS NOT NULL) = (status IN ('disbursed', 'repaid', 'defaulted'))),
  ADD CONSTRAINT loans_nothing_outstanding_before_disbursement
    CHECK (disbursed_on IS NOT NULL OR (outstanding_principal_minor = 0 AND repaid_minor = 0));

CREATE TABLE repayments (
  id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  seq             bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
  loan_id         uuid        NOT NULL REFERENCES loans (id),
  amount_minor    bigint      NOT NULL CHECK (amount_minor > 0),
  -- How the payment was allocated (oldest installment first, interest before principal).
  interest_minor  bigint      NOT NULL CHECK (interest_minor >= 0),
  principal_minor bigint      NOT NULL CHECK (principal_minor >= 0),
  paid_on         date        NOT NULL,
  reference       text        CHECK (reference IS NULL OR char_length(reference) BETWEEN 1 AND 128),
  actor           text        NOT NULL,
  request_id      text        NOT NULL,
  created_at      timestamptz(3) NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
  CHECK (interest_minor + principal_minor = amount_minor)
);
CREATE INDEX repayments_loan_idx ON repayments (loan_id, seq);

-- The audit history: append-only, written in the transaction of the change it describes.
CREATE TABLE loan_events (
  seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id          uuid        NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  loan_id     uuid        NOT NULL REFERENCES loans (id),
  type        text        NOT NULL,
  from_status text,
  to_status   text        NOT NULL,
  actor       text        NOT NULL,
  request_id  text        NOT NULL,
  at          timestamptz(3) NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
  data        jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX loan_events_loan_idx ON loan_events (loan_id, seq);

CREATE FUNCTION loan_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'loan_events is append-only: % is not allowed', TG_OP USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER loan_events_no_update BEFORE UPDATE OR DELETE ON loan_events
  FOR EACH ROW EXECUTE FUNCTION loan_events_append_only();
CREATE TRIGGER loan_events_no_truncate BEFORE TRUNCATE ON loan_events
  FOR EACH STATEMENT EXECUTE FUNCTION loan_events_append_only();

-- Stored outcomes of requests sent with an Idempotency-Key, replayed byte for byte.
CREATE TABLE idempotency_keys (
  scope       text        NOT NULL,
  key         text        NOT NULL,
  fingerprint text        NOT NULL,
  status      integer     NOT NULL,
  headers     jsonb       NOT NULL,
  body        text        NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Outstanding principal per (currency, status), next to the counts.
ALTER TABLE loan_stats ADD COLUMN outstanding_minor numeric NOT NULL DEFAULT 0;

-- Outstanding principal of active loans by the due date of their oldest unpaid installment:
-- PAR30 sums the rows older than 30 days, a few hundred rows per currency whatever the loan count.
CREATE TABLE loan_arrears (
  currency          char(3) NOT NULL,
  oldest_unpaid_due date    NOT NULL,
  loans             bigint  NOT NULL,
  outstanding_minor numeric NOT NULL,
  PRIMARY KEY (currency, oldest_unpaid_due)
);

CREATE OR REPLACE FUNCTION loan_stats_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  delta text := CASE TG_OP
    WHEN 'INSERT' THEN 'SELECT *, 1 AS sign FROM new_rows'
    WHEN 'DELETE' THEN 'SELECT *, -1 AS sign FROM old_rows'
    ELSE 'SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 FROM old_rows'
  END;
BEGIN
  -- Transition tables are visible to dynamic SQL, so one statement serves all three operations.
  -- Rows are upserted in key order, so concurrent transactions cannot deadlock on the aggregates.
  EXECUTE format($sql$
    WITH delta AS (%s),
    stats AS (
      INSERT INTO loan_stats AS s (currency, status, loans, amount_minor, outstanding_minor)
      SELECT currency, status, sum(sign), sum(sign * amount_minor), sum(sign * outstanding_principal_minor)
        FROM delta GROUP BY 1, 2
      HAVING sum(sign) <> 0 OR sum(sign * amount_minor) <> 0 OR sum(sign * outstanding_principal_minor) <> 0
       ORDER BY 1, 2
      ON CONFLICT (currency, status) DO UPDATE
        SET loans = s.loans + EXCLUDED.loans,
            amount_minor = s.amount_minor + EXCLUDED.amount_minor,
            outstanding_minor = s.outstanding_minor + EXCLUDED.outstanding_minor
      RETURNING 1
    )
    INSERT INTO loan_arrears AS a (currency, oldest_unpaid_due, loans, outstanding_minor)
    SELECT currency, oldest_unpaid_due_date, sum(sign), sum(sign * outstanding_principal_minor)
      FROM delta
     WHERE status IN ('disbursed', 'defaulted') AND oldest_unpaid_due_date IS NOT NULL
     GROUP BY 1, 2
    HAVING sum(sign) <> 0 OR sum(sign * outstanding_principal_minor) <> 0
     ORDER BY 1, 2
    ON CONFLICT (currency, oldest_unpaid_due) DO UPDATE
      SET loans = a.loans + EXCLUDED.loans, outstanding_minor = a.outstanding_minor + EXCLUDED.outstanding_minor
  $sql$, delta);
  RETURN NULL;
END $$;
