-- produces: hold_events
-- reads: prior_holds, trader_events
-- The trader stream's hold events, each with what was open on its ref just before it (one hold
-- per ref, as the catalog says): the previous hold event of the same trader and ref, or, for
-- the first in this build, the ref's stored state (`prior_holds`, empty in a full build).
SELECT h.*,
    coalesce(lag(h.kind) OVER wr = 'trader.hold_placed',
             CASE WHEN lag(h.kind) OVER wr IS NULL THEN p.last_kind = 'trader.hold_placed' END,
             false) AS was_open,
    CASE WHEN lag(h.kind) OVER wr IS NULL THEN p.amount ELSE lag(h.amount) OVER wr END AS held
FROM (
    SELECT aggregate_id, ord, event_id, kind, j.ref AS ref, j.amount AS amount,
        CASE kind WHEN 'trader.hold_released' THEN 'release' ELSE 'capture' END AS verb
    FROM trader_events
    WHERE kind IN ({{ HOLD_KINDS }})
) h
LEFT JOIN prior_holds p ON p.trader_id = h.aggregate_id AND p.ref = h.ref
WINDOW wr AS (PARTITION BY h.aggregate_id, h.ref ORDER BY h.ord)
