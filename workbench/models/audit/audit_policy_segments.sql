-- produces: audit_policy_segments
-- reads: audit_attempts, audit_trader_events, payload_trader, payload_trader_rating
-- POLICY_DEVIATION's traders (`audit_policy_pick` says what it is for): each trader's life cut
-- into segments at each event that changes what the policy reads of it (its state events, its
-- ratings, the start and end of each of its attempts), in the fold's `(position, event_id)`
-- order; a segment holds the state after its first event until the next one (`hi`, NULL: to the
-- end; `hi_k`: the attempt, its row in `audit_attempts`, where that is the trader's own next
-- assignment). Only the segments in which the trader could take an order at all are kept: registered,
-- online, not blocked, under capacity.
WITH ratings AS (
    SELECT aggregate_id AS trader_id, pos, event_id, score
    FROM {{ typed_of("trader_rating", "trader_rating.published") }}
),
sv AS (  -- what the policy reads of each trader, changed by these events (few)
    SELECT t.trader_id, t.pos, p.event_id,
           CASE WHEN t.kind = 'trader.registered'
                THEN {'fiat': t.state.fiat_currency, 'settle': t.state.settlement_currency, 'reward': p.reward_bps::BIGINT} END AS reg,
           CASE WHEN t.kind IN ('trader.registered', 'trader.limits_changed') THEN {
               'min_amount': t.state.min_amount::BIGINT, 'max_amount': t.state.max_amount::BIGINT,
               'cap': t.state.max_active_orders::BIGINT} END AS lim,
           CASE t.kind WHEN 'trader.went_online' THEN TRUE WHEN 'trader.went_offline' THEN FALSE END AS online,
           CASE t.kind WHEN 'trader.blocked' THEN TRUE WHEN 'trader.unblocked' THEN FALSE END AS blocked,
           NULL::DECIMAL(18, 6) AS score, NULL AS rated_by
    FROM (SELECT * FROM audit_trader_events WHERE kind IN ({{ names(TRADER_STATE) }})) t
    JOIN payload_trader p ON p.rowid = t.row
    UNION ALL
    SELECT trader_id, pos, event_id, NULL, NULL, NULL, NULL, score, event_id FROM ratings
),
st AS (  -- the state after each of them: its `v`-th
    SELECT trader_id, row_number() OVER w AS v,
           last_value(reg IGNORE NULLS) OVER w AS reg, last_value(lim IGNORE NULLS) OVER w AS lim,
           last_value(online IGNORE NULLS) OVER w AS online,
           last_value(blocked IGNORE NULLS) OVER w AS blocked,
           last_value(score IGNORE NULLS) OVER w AS score,
           last_value(rated_by IGNORE NULLS) OVER w AS rated_by
    FROM sv
    WINDOW w AS (PARTITION BY trader_id ORDER BY pos, event_id ROWS UNBOUNDED PRECEDING)
),
tl AS (  -- every event that changes what the policy reads of a trader: its state, or its load
    SELECT trader_id, pos, event_id, 1 AS s, 0 AS d, NULL::BIGINT AS k FROM sv
    UNION ALL
    SELECT trader_id, assigned_pos, assigned_event_id, 0, 1, rowid FROM audit_attempts WHERE trader_id IS NOT NULL
    UNION ALL  -- an attempt ended by the order's next assignment ends at that event
    SELECT trader_id, end_pos, end_event_id, 0, -1, NULL FROM audit_attempts WHERE trader_id IS NOT NULL AND end_pos IS NOT NULL
),
seg AS (  -- a running count of the state events (the state's `v`) and of the load, cheap to sum;
    -- at one event, an assignment before the end of an attempt it supersedes (the trader's
    -- segment that ends there ends at its assignment: `hi_k`)
    SELECT trader_id, pos AS lo_pos, event_id AS lo_id,
           lead(pos) OVER w AS hi_pos, lead(event_id) OVER w AS hi_id, lead(k) OVER w AS hi_k,
           sum(s) OVER w AS v, sum(d) OVER w AS active
    FROM tl
    WINDOW w AS (PARTITION BY trader_id ORDER BY pos, event_id, d DESC ROWS UNBOUNDED PRECEDING)
),
avail AS (  -- the segments in which the trader could take an order at all
    SELECT g.trader_id, g.lo_pos, g.lo_id, g.hi_pos, g.hi_id, g.hi_k, s.reg.fiat AS fiat, s.reg.settle AS settle_cur,
           s.reg.reward AS reward_bps, s.lim.min_amount, s.lim.max_amount,
           coalesce(s.score, {{ DEFAULT_SCORE }}) AS score, s.rated_by, g.active
    FROM seg g JOIN st s USING (trader_id, v)
    WHERE s.reg.fiat IS NOT NULL AND s.online AND NOT coalesce(s.blocked, FALSE) AND g.active < s.lim.cap
      AND (g.hi_pos IS NULL OR g.hi_pos > g.lo_pos OR g.hi_id > g.lo_id)
)
SELECT * FROM avail
