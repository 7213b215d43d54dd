-- check: LEDGER_PLAN_MISMATCH
-- severity: high
-- reads: violations
-- A commit or rollback whose batches differ from the held ones, a plan ended twice, a posting
-- with `from == to` or `amount <= 0`; the offending event is the commit, rollback or batch.
-- Judged event by event as the fold judges it: raised by the violations projection
-- (workbench/models/violations/), here only listed as findings.
SELECT code AS check, subject, event_id, [event_id] AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency, detail
FROM violations
WHERE code = 'LEDGER_PLAN_MISMATCH'
