-- produces: hold_events
-- reads: trader_events
-- The trader stream's hold events, each with what was open on its ref just before it (the
-- previous hold event of the same trader and ref: one hold per ref, as the catalog says).
SELECT *,
    coalesce(lag(kind) OVER wr = 'trader.hold_placed', false) AS was_open,
    lag(amount) OVER wr AS held
FROM (
    SELECT aggregate_id, ord, event_id, kind, j.ref AS ref, j.amount AS amount,
        CASE kind WHEN 'trader.hold_released' THEN 'release' ELSE 'capture' END AS verb
    FROM trader_events
    WHERE kind IN ({{ HOLD_KINDS }})
)
WINDOW wr AS (PARTITION BY aggregate_id, ref ORDER BY ord)
