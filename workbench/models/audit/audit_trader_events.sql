-- produces: audit_trader_events
-- reads: events
-- The trader stream's events, with their payload parsed once: the drift, the hold leaks and the
-- scheduler's rules all read them, so the audit keeps them in a temp table (one scan of the
-- payloads instead of four). Money events (`TRADER_MONEY`) have their `ref` and `amount`;
-- registrations and limit changes their fields in `state` (`STATE_FIELDS`, in that order).
-- Narrow, as it stays in memory: the event is its `row` in `events` (its `rowid`), and the few
-- ids needed (those a finding shows, those that order two events at one position) are fetched
-- by it.
SELECT row, pos, aggregate_id AS trader_id, kind, money[1] AS ref, (money[2])::BIGINT AS amount, state
FROM (
    SELECT *,
           CASE WHEN kind IN ({{ names(TRADER_MONEY) }})
                THEN json_extract_string(payload, ['$.ref', '$.amount']) END AS money,
           CASE WHEN kind IN ('trader.registered', 'trader.limits_changed')
                THEN json_extract_string(payload, [{% for f in STATE_FIELDS %}'$.{{ f }}'{% if not loop.last %}, {% endif %}{% endfor %}]) END AS state
    FROM {{ events_of(*(TRADER_MONEY + TRADER_STATE)) }}
)
