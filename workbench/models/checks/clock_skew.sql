-- check: CLOCK_SKEW
-- severity: medium
-- reads: violations
-- An event whose `occurred_at` is more than the clock's tolerance after its `recorded_at`, or
-- whose `occurred_at` or `recorded_at` is outside the platform's era (`workbench/domain/clock.py`).
-- Judged event by event as the fold judges it: raised by the violations projection
-- (workbench/models/violations/), here only listed as findings.
SELECT code AS check, subject, event_id, [event_id] AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency, detail
FROM violations
WHERE code = 'CLOCK_SKEW'
