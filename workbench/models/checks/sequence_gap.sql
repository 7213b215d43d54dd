-- check: SEQUENCE_GAP
-- severity: medium
-- reads: violations
-- A missing `seq` in an aggregate; the offending event is the one after the gap.
-- Judged event by event as the fold judges it: raised by the violations projection
-- (workbench/models/violations/), here only listed as findings.
SELECT code AS check, subject, event_id, [event_id] AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency, detail
FROM violations
WHERE code = 'SEQUENCE_GAP'
