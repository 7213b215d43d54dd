-- produces: trader_ratings
-- reads: ev, payload_trader_rating
-- Every rating the rating service published, one row per event. `score` is exact for the
-- catalog's values (at most six decimals, admitted by the decoder).
SELECT
    aggregate_id AS trader_id,
    seq,
    j.as_of::TIMESTAMPTZ AS as_of,
    j.window_days,
    j.assignments,
    j.completed,
    j.on_time,
    j.disputed,
    j.score::DECIMAL(18, 6) AS score,
    occurred_at AS published_at,
    event_id
FROM (
    SELECT aggregate_id, seq, occurred_at, event_id, j
    FROM {{ typed("trader_rating") }}
)
