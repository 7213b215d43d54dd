-- produces: audit_trader_states
-- reads: audit_trader_events, payload_trader, payload_trader_rating
-- What the scheduler reads of each trader, after each event that changes it: its registration
-- (fiat and settlement currencies, reward), its limits, its presence, its block and its latest
-- published score (`rated_by`: that rating's event; NULL before any). One row per such event (a
-- few per trader), numbered per trader in the fold's `(position, event_id)` order (`v`: the state
-- after the `v`-th). The scheduler's rules (`audit_assignment_trader`) and the policy's traders
-- (`audit_policy_segments`) read a trader's state here, at the `v` its timeline gives
-- (`audit_trader_timeline`), so the state is folded once.
WITH ratings AS (
    SELECT aggregate_id AS trader_id, pos, event_id, score
    FROM {{ typed_of("trader_rating", "trader_rating.published") }}
),
sv AS (  -- what the scheduler reads of each trader, changed by these events
    SELECT t.trader_id, t.pos, p.event_id,
           CASE WHEN t.kind = 'trader.registered'
                THEN {'fiat_currency': t.state.fiat_currency, 'settlement_currency': t.state.settlement_currency,
                      'reward_bps': p.reward_bps::BIGINT} END AS reg,
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
)
SELECT trader_id, pos, event_id, row_number() OVER w AS v,
       last_value(reg IGNORE NULLS) OVER w AS reg, last_value(lim IGNORE NULLS) OVER w AS lim,
       last_value(online IGNORE NULLS) OVER w AS online,
       last_value(blocked IGNORE NULLS) OVER w AS blocked,
       last_value(score IGNORE NULLS) OVER w AS score,
       last_value(rated_by IGNORE NULLS) OVER w AS rated_by
FROM sv
WINDOW w AS (PARTITION BY trader_id ORDER BY pos, event_id ROWS UNBOUNDED PRECEDING)
