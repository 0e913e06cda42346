-- Up Migration
-- No down migration: 0003's function is the same but for the status list.

-- The statuses of loans that owe money, in one place for SQL (loans/loan-status.ts ACTIVE_STATUSES is
-- the same list for the service; a test holds the two equal). Inlined by the planner.
CREATE FUNCTION loan_status_is_active(status text) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN status IN ('disbursed', 'defaulted');

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
     WHERE loan_status_is_active(status) AND oldest_unpaid_due_date IS NOT NULL
     GROUP BY 1, 2
    HAVING sum(sign) <> 0 OR sum(sign * outstanding_principal_minor) <> 0
     ORDER BY 1, 2
    ON CONFLICT (currency, oldest_unpaid_due, shard) DO UPDATE
      SET loans = a.loans + EXCLUDED.loans, outstanding_minor = a.outstanding_minor + EXCLUDED.outstanding_minor
  $sql$, delta);
  RETURN NULL;
END $$;
