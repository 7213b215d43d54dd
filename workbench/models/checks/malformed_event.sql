-- check: MALFORMED_EVENT
-- severity: medium
-- reads: quarantine
-- A row the replay quarantined (bad JSON, unknown kind or version, missing field, wrong type,
-- missing envelope column), with the quarantine's reason and field. The offending event is the
-- row's `event_id`, or `raw:<md5 of the row>` when it has none. A conflicting duplicate is
-- quarantined too but reported as CONFLICTING_DUPLICATE (from the violations).
SELECT 'MALFORMED_EVENT' AS check,
       coalesce(stream || ':' || aggregate_id, 'source:' || source) AS subject,
       coalesce(event_id, 'raw:' || md5(raw)) AS event_id,
       [coalesce(event_id, 'raw:' || md5(raw))] AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency,
       'quarantined (' || reason || coalesce(', ' || field, '') || '): ' || error AS detail
FROM quarantine
WHERE reason <> 'conflicting_duplicate'
