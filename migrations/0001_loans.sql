-- Up Migration

CREATE TABLE loans (
  id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  borrower_id       text        NOT NULL CHECK (borrower_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
  currency          char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  -- Integer minor units of the currency (paise for INR, dong for VND): exact, no scale per row.
  amount_minor      bigint      NOT NULL CHECK (amount_minor > 0),
  term_months       integer     NOT NULL CHECK (term_months BETWEEN 1 AND 360),
  interest_rate_apr numeric(5,2) NOT NULL CHECK (interest_rate_apr BETWEEN 0 AND 100),
  status            text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected', 'disbursed', 'repaid', 'defaulted')),
  -- Millisecond precision, so the API's timestamps and the keyset cursor round-trip exactly.
  created_at        timestamptz(3) NOT NULL DEFAULT date_trunc('milliseconds', now()),
  updated_at        timestamptz(3) NOT NULL DEFAULT date_trunc('milliseconds', now()),
  -- Bumped on every update; the ETag is derived from it.
  version           integer     NOT NULL DEFAULT 1
);

-- Keyset pagination (created_at DESC, id DESC), unfiltered and per filter.
CREATE INDEX loans_created_idx ON loans (created_at, id);
CREATE INDEX loans_status_created_idx ON loans (status, created_at, id);
CREATE INDEX loans_currency_created_idx ON loans (currency, created_at, id);
CREATE INDEX loans_borrower_created_idx ON loans (borrower_id, created_at, id);

CREATE FUNCTION loans_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := date_trunc('milliseconds', now());
  NEW.version := OLD.version + 1;
  RETURN NEW;
END $$;

CREATE TRIGGER loans_touch BEFORE UPDATE ON loans FOR EACH ROW EXECUTE FUNCTION loans_touch();

-- Per currency and status counts and sums, maintained by statement-level triggers, so that
-- GET /api/stats reads a few dozen rows however many loans there are.
CREATE TABLE loan_stats (
  currency     char(3) NOT NULL,
  status       text    NOT NULL,
  loans        bigint  NOT NULL,
  amount_minor numeric NOT NULL,
  PRIMARY KEY (currency, status)
);

CREATE FUNCTION loan_stats_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Rows are locked in key order, so concurrent transactions cannot deadlock on loan_stats.
  IF TG_OP = 'INSERT' THEN
    INSERT INTO loan_stats AS s (currency, status, loans, amount_minor)
    SELECT currency, status, count(*), sum(amount_minor) FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (currency, status) DO UPDATE
      SET loans = s.loans + EXCLUDED.loans, amount_minor = s.amount_minor + EXCLUDED.amount_minor;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO loan_stats AS s (currency, status, loans, amount_minor)
    SELECT currency, status, sum(n), sum(amount) FROM (
      SELECT currency, status, 1 AS n, amount_minor AS amount FROM new_rows
      UNION ALL
      SELECT currency, status, -1, -amount_minor FROM old_rows
    ) delta
    GROUP BY 1, 2 HAVING sum(n) <> 0 OR sum(amount) <> 0 ORDER BY 1, 2
    ON CONFLICT (currency, status) DO UPDATE
      SET loans = s.loans + EXCLUDED.loans, amount_minor = s.amount_minor + EXCLUDED.amount_minor;
  ELSE
    INSERT INTO loan_stats AS s (currency, status, loans, amount_minor)
    SELECT currency, status, -count(*), -sum(amount_minor) FROM old_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (currency, status) DO UPDATE
      SET loans = s.loans + EXCLUDED.loans, amount_minor = s.amount_minor + EXCLUDED.amount_minor;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER loan_stats_insert AFTER INSERT ON loans
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION loan_stats_apply();
CREATE TRIGGER loan_stats_update AFTER UPDATE ON loans
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION loan_stats_apply();
CREATE TRIGGER loan_stats_delete AFTER DELETE ON loans
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION loan_stats_apply();

-- Down Migration

DROP TABLE loan_stats;
DROP TABLE loans;
DROP FUNCTION loan_stats_apply();
DROP FUNCTION loans_touch();
