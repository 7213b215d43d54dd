-- check: INVALID_TRANSITION
-- severity: medium
-- reads: violations
-- An event the catalog's state machines do not allow in the state it met (a kind in the
-- wrong status, hold misuse on the trader stream, anything before registration).
-- Judged event by event as the fold judges it: raised by the violations projection
-- (workbench/models/violations/), here only listed as findings.
SELECT code AS check, subject, event_id, [event_id] AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency, detail
FROM violations
WHERE code = 'INVALID_TRANSITION'
