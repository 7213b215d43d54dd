-- produces: audit_trader_deposit
-- reads: audit_attempts, audit_shared_positions, audit_trader_events, payload_trader
-- Each trader's available deposit after each of its money events, as the catalog (3.2) and the
-- fold define it (`deposit_moves`): the balance (top-ups and credits in; debits and captures out)
-- less the open holds by `ref`. The scheduler's rules read it at each assignment
-- (`audit_assignment_trader`) and POLICY_DEVIATION at its candidates' (`audit_policy_judged`), so
-- the series is summed once.
--
-- "After" is in the fold's order, `(position, event_id)`. Positions are unique in a valid log
-- (strictly increasing, says the catalog), so a trader's series is ordered by position alone, on
-- integers (`event_id` NULL), but for the traders with an event at a position another event
-- shares (`tied`: from `audit_shared_positions`, none in a valid log): theirs is ordered by
-- `(position, event_id)`, their events' ids fetched by row, and has `event_id`. The running
-- sums are over every trader's moves in one sort, less what the traders before each moved (a
-- window per trader, six thousand, cost twice as much).
{%- macro by_pos(pos, event_id) -%}{{ pos }}{%- endmacro %}
{%- macro by_pos_and_id(pos, event_id) -%}{'pos': {{ pos }}, 'event_id': {{ event_id }}}{%- endmacro %}
{%- macro series(key, trader_events) -%}
(WITH m AS ({{ deposit_moves(trader_events, key("pos", "event_id")) }}),
 base AS (  -- what the traders before each one moved: its sums are the whole's less that
     SELECT trader_id, coalesce(sum(t) OVER (ORDER BY trader_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS b
     FROM (SELECT trader_id, sum(d) AS t FROM m GROUP BY trader_id))
 SELECT m.trader_id, m.key, m.available - b.b AS available
 FROM (SELECT trader_id, key, sum(d) OVER (ORDER BY trader_id, key ROWS UNBOUNDED PRECEDING) AS available FROM m) m
 JOIN base b USING (trader_id))
{%- endmacro %}
WITH tied AS (  -- the traders with an event at a shared position
    SELECT trader_id FROM audit_attempts
    WHERE assigned_pos IN (SELECT pos FROM audit_shared_positions)
       OR end_pos IN (SELECT pos FROM audit_shared_positions)
    UNION
    SELECT trader_id FROM audit_trader_events WHERE pos IN (SELECT pos FROM audit_shared_positions)
)
SELECT trader_id, key AS pos, NULL::VARCHAR AS event_id, available
FROM {{ series(by_pos, "(SELECT * FROM audit_trader_events ANTI JOIN tied USING (trader_id))") }}
UNION ALL
SELECT trader_id, key.pos, key.event_id, available
FROM {{ series(by_pos_and_id,
               "(SELECT t.*, e.event_id FROM audit_trader_events t SEMI JOIN tied USING (trader_id) JOIN payload_trader e ON e.rowid = t.row)") }}
