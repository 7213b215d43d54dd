-- produces: audit_policy_segments
-- reads: audit_attempts, audit_trader_events, payload_trader, payload_trader_rating
-- POLICY_DEVIATION's traders (`audit_policy_pick` says what it is for): each trader's life cut
-- into segments at each event that changes what the policy reads of it (its state events, its
-- ratings, the start and end of each of its attempts), in the fold's `(position, event_id)`
-- order; a segment holds the state after its first event until the next one (`hi`, NULL: to the
-- end). Only the segments in which the trader could take an order at all are kept: registered,
-- online, not blocked, under capacity.
WITH ratings AS (
    SELECT aggregate_id AS trader_id, pos, event_id, score
    FROM {{ typed_of("trader_rating", "trader_rating.published") }}
),
tl AS (  -- what the policy reads of each trader, changed by these events
    SELECT t.trader_id, t.pos, p.event_id,
           CASE WHEN t.kind = 'trader.registered'
                THEN {'fiat': t.state.fiat_currency, 'settle': t.state.settlement_currency, 'reward': p.reward_bps::BIGINT} END AS reg,
           CASE WHEN t.kind IN ('trader.registered', 'trader.limits_changed') THEN {
               'min_amount': t.state.min_amount::BIGINT, 'max_amount': t.state.max_amount::BIGINT,
               'cap': t.state.max_active_orders::BIGINT} END AS lim,
           CASE t.kind WHEN 'trader.went_online' THEN TRUE WHEN 'trader.went_offline' THEN FALSE END AS online,
           CASE t.kind WHEN 'trader.blocked' THEN TRUE WHEN 'trader.unblocked' THEN FALSE END AS blocked,
           NULL::DECIMAL(18, 6) AS score, NULL AS rated_by, 0 AS d
    FROM (SELECT * FROM audit_trader_events WHERE kind IN ({{ names(TRADER_STATE) }})) t
    JOIN payload_trader p ON p.rowid = t.row
    UNION ALL
    SELECT trader_id, pos, event_id, NULL, NULL, NULL, NULL, score, event_id, 0 FROM ratings
    UNION ALL
    SELECT trader_id, assigned_pos, assigned_event_id, NULL, NULL, NULL, NULL, NULL, NULL, 1
    FROM audit_attempts WHERE trader_id IS NOT NULL
    UNION ALL  -- an attempt ended by the order's next assignment ends at that event
    SELECT trader_id, end_pos, end_event_id, NULL, NULL, NULL, NULL, NULL, NULL, -1
    FROM audit_attempts WHERE trader_id IS NOT NULL AND end_pos IS NOT NULL
),
seg AS (
    SELECT trader_id, pos AS lo_pos, event_id AS lo_id,
           lead(pos) OVER w AS hi_pos, lead(event_id) OVER w AS hi_id,
           last_value(reg IGNORE NULLS) OVER w AS reg, last_value(lim IGNORE NULLS) OVER w AS lim,
           last_value(online IGNORE NULLS) OVER w AS online,
           last_value(blocked IGNORE NULLS) OVER w AS blocked,
           last_value(score IGNORE NULLS) OVER w AS score,
           last_value(rated_by IGNORE NULLS) OVER w AS rated_by,
           sum(d) OVER w AS active
    FROM tl
    WINDOW w AS (PARTITION BY trader_id ORDER BY pos, event_id ROWS UNBOUNDED PRECEDING)
),
avail AS (  -- the segments in which the trader could take an order at all
    SELECT trader_id, lo_pos, lo_id, hi_pos, hi_id, reg.fiat AS fiat, reg.settle AS settle_cur,
           reg.reward AS reward_bps, lim.min_amount, lim.max_amount,
           coalesce(score, {{ DEFAULT_SCORE }}) AS score, rated_by, active
    FROM seg
    WHERE reg.fiat IS NOT NULL AND online AND NOT coalesce(blocked, FALSE) AND active < lim.cap
      AND (hi_pos IS NULL OR hi_pos > lo_pos OR hi_id > lo_id)
)
SELECT * FROM avail
