-- check: CONFLICTING_DUPLICATE
-- severity: medium
-- reads: violations
-- One `event_id` delivered with two contents, or one `(stream, aggregate, seq)` used by two
-- events; the offending event is the second copy.
-- Judged event by event as the fold judges it: raised by the violations projection
-- (workbench/models/violations/), here only listed as findings.
SELECT code AS check, subject, event_id, [event_id] AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency, detail
FROM violations
WHERE code = 'CONFLICTING_DUPLICATE'
