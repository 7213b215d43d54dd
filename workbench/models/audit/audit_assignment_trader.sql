-- produces: audit_assignment_trader
-- reads: audit_attempts, audit_shared_positions, audit_trader_deposit, audit_trader_states, audit_trader_timeline
-- The trader's side of every assignment, for ASSIGNMENT_VIOLATION: one narrow row per attempt
-- (`k`: the attempt's row in `audit_attempts`) with the trader's state just before it:
--
-- * its registration, limits, presence and block, and its active orders: its row of its
--   timeline (`audit_trader_timeline`, the trader's state and load folded once, in the fold's
--   `(position, event_id)` order; POLICY_DEVIATION reads the same) and the state there
--   (`audit_trader_states`). The assignment's row has the load just after it: one less before.
-- * `available`: the deposit's available amount (`audit_trader_deposit`, the series after each
--   money event) just before it, looked up with an `ASOF` join: on the position alone, but for
--   the traders whose series is ordered by `(position, event_id)` (those with an event at a
--   shared position, `audit_shared_positions`: none in a valid log).
-- * `shared`: whether the assignment shares its position with one of these events or with a
--   ledger event (whose moves on the client's account the check then orders by `event_id`).
WITH tied AS (SELECT DISTINCT trader_id FROM audit_trader_deposit WHERE event_id IS NOT NULL),
deposit AS (
    SELECT a.k, d.available
    FROM (SELECT rowid AS k, trader_id, assigned_pos FROM audit_attempts ANTI JOIN tied USING (trader_id)) a
    ASOF LEFT JOIN (SELECT trader_id, pos, available FROM audit_trader_deposit WHERE event_id IS NULL) d
      ON d.trader_id = a.trader_id AND a.assigned_pos > d.pos
    UNION ALL
    SELECT a.k, d.available
    FROM (SELECT rowid AS k, trader_id, {'pos': assigned_pos, 'event_id': assigned_event_id} AS key
          FROM audit_attempts SEMI JOIN tied USING (trader_id)) a
    ASOF LEFT JOIN (SELECT trader_id, {'pos': pos, 'event_id': event_id} AS key, available
                    FROM audit_trader_deposit WHERE event_id IS NOT NULL) d
      ON d.trader_id = a.trader_id AND a.key > d.key
),
own_row AS (  -- each assignment's row of its trader's timeline
    SELECT k, v, active - 1 AS active FROM audit_trader_timeline WHERE k IS NOT NULL
)
SELECT a.k, CASE WHEN s.reg IS NOT NULL
                 THEN {'fiat_currency': s.reg.fiat_currency, 'settlement_currency': s.reg.settlement_currency} END AS reg,
       s.lim, s.online, s.blocked, CASE WHEN a.trader_id IS NOT NULL THEN coalesce(t.active, 0) END AS active,
       d.available, a.assigned_pos IN (SELECT pos FROM audit_shared_positions) AS shared
FROM (SELECT rowid AS k, trader_id, assigned_pos FROM audit_attempts) a
LEFT JOIN own_row t USING (k)
LEFT JOIN audit_trader_states s ON s.trader_id = a.trader_id AND s.v = t.v
LEFT JOIN deposit d USING (k)
