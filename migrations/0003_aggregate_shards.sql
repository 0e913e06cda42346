-- Up Migration
-- No down migration: it would have to merge shards back; restore a backup instead.

-- Every loan change upserted one (currency, status) row of loan_stats and held its lock until commit,
-- so concurrent creates in one currency queued behind each other. Each connection now writes its own
-- shard (backend pid mod 8); readers sum the shards. Same for loan_arrears.
ALTER TABLE loan_stats ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE loan_stats DROP CONSTRAINT loan_stats_pkey;
ALTER TABLE loan_stats ADD PRIMARY KEY (currency, status, shard);

ALTER TABLE loan_arrears ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE loan_arrears DROP CONSTRAINT loan_arrears_pkey;
ALTER TABLE loan_arrears ADD PRIMARY KEY (currency, oldest_unpaid_due, shard);
-- PAR30 reads only the recent due dates (see stats.repository.ts): a short range of this index.
CREATE INDEX loan_arrears_due_idx ON loan_arrears (oldest_unpaid_due) INCLUDE (currency, outstanding_minor);

CREATE OR REPLACE FUNCTION loan_stats_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  delta text := CASE TG_OP
    WHEN 'INSERT' THEN 'SELECT *, 1 AS sign FROM new_rows'
    WHEN 'DELETE' THEN 'SELECT *, -1 AS sign FROM old_rows'
    ELSE 'SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 FROM old_rows'
  END;
BEGIN
  -- Transition tables are visible to dynamic SQL, so one statement serves all three operations.
  -- Rows are upserted in key order, so transactions sharing a shard cannot deadlock.
  EXECUTE format($sql$
    WITH delta AS (%s),
    stats AS (
      INSERT INTO loan_stats AS s (currency, status, shard, loans, amount_minor, outstanding_minor)
      SELECT currency, status, pg_backend_pid() %% 8, sum(sign), sum(sign * amount_minor),
             sum(sign * outstanding_principal_minor)
        FROM delta GROUP BY 1, 2
      HAVING sum(sign) <> 0 OR sum(sign * amount_minor) <> 0 OR sum(sign * outstanding_principal_minor) <> 0
       ORDER BY 1, 2
      ON CONFLICT (currency, status, shard) DO UPDATE
        SET loans = s.loans + EXCLUDED.loans,
            amount_minor = s.amount_minor + EXCLUDED.amount_minor,
            outstanding_minor = s.outstanding_minor + EXCLUDED.outstanding_minor
      RETURNING 1
    )
    INSERT INTO loan_arrears AS a (currency, oldest_unpaid_due, shard, loans, outstanding_minor)
    SELECT currency, oldest_unpaid_due_date, pg_backend_pid() %% 8, sum(sign), sum(sign * outstanding_principal_minor)
      FROM delta
     WHERE status IN ('disbursed', 'defaulted') AND oldest_unpaid_due_date IS NOT NULL
     GROUP BY 1, 2
    HAVING sum(sign) <> 0 OR sum(sign * outstanding_principal_minor) <> 0
     ORDER BY 1, 2
    ON CONFLICT (currency, oldest_unpaid_due, shard) DO UPDATE
      SET loans = a.loans + EXCLUDED.loans, outstanding_minor = a.outstanding_minor + EXCLUDED.outstanding_minor
  $sql$, delta);
  RETURN NULL;
END $$;
