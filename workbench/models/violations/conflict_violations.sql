-- produces: conflict_violations
-- scope: quarantine
-- reads: quarantine
-- CONFLICTING_DUPLICATE: the conflicting copies of an event, kept in quarantine by the replay.
SELECT 'CONFLICTING_DUPLICATE' AS code, event_id,
    coalesce(stream, 'None') || ':' || coalesce(aggregate_id, 'None') AS subject,
    error AS detail
FROM quarantine
WHERE reason = 'conflicting_duplicate'
