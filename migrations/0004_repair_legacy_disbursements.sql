-- Up Migration
-- No down migration: the values it replaces were wrong.

-- Loans disbursed before 0002 have no 'disbursed' event. 0002 gave them a disbursement date in the
-- migrating session's time zone (everything else is UTC) and no outstanding principal or next due date,
-- so active ones dropped out of stats and PAR30 while still taking repayments. Write them as the
-- disbursement command would have: the UTC date, the whole principal outstanding (they have no
-- repayments), and the first installment due one month later (clamped to the month's end, as the
-- schedule does). The aggregate triggers carry the change into loan_stats and loan_arrears.
UPDATE loans l
   SET disbursed_on = (l.created_at AT TIME ZONE 'UTC')::date,
       outstanding_principal_minor = CASE WHEN l.status = 'repaid' THEN 0 ELSE l.amount_minor END,
       oldest_unpaid_due_date = CASE
         WHEN l.status = 'repaid' THEN NULL
         ELSE ((l.created_at AT TIME ZONE 'UTC')::date + interval '1 month')::date
       END
 WHERE l.status IN ('disbursed', 'repaid', 'defaulted')
   AND NOT EXISTS (SELECT 1 FROM loan_events e WHERE e.loan_id = l.id AND e.type = 'disbursed')
   AND NOT EXISTS (SELECT 1 FROM repayments r WHERE r.loan_id = l.id);
