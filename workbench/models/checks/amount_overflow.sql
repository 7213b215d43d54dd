-- check: AMOUNT_OVERFLOW
-- severity: high
-- reads: violations
-- A summed money figure whose exact value left the int64 range (a trader's deposit balance,
-- held or available amount; an account's own, held or available amount), once per deposit and
-- per account and currency; the offending event is the one after which it first left int64.
-- Judged event by event as the fold judges it: raised by the violations projection
-- (workbench/models/violations/), here only listed as findings.
SELECT code AS check, subject, event_id, [event_id] AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency, detail
FROM violations
WHERE code = 'AMOUNT_OVERFLOW'
