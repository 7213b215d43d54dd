-- produces: audit_assignment_trader
-- reads: audit_attempts, audit_trader_events
-- The trader's side of every assignment, for ASSIGNMENT_VIOLATION: one narrow row per attempt
-- (`k`: the attempt's row in `audit_attempts`) with the trader's state just before it, so the
-- `ASOF` joins sort a few columns, not whole attempts, and stay within the memory limit instead of
-- spilling to disk. Each piece of state the scheduler's rules read is rebuilt as a running series
-- per trader and looked up with an `ASOF` join at the assignment's position:
--
-- * `state`: registration, limits, presence and block after each of the trader's state events
--   (`TRADER_STATE`, a few per trader; `audit_trader_events.state` holds `STATE_FIELDS`), one
--   series, so one lookup instead of four;
-- * `ta`: the deposit's available amount after each trader money event (the trader stream's own
--   view; a capture moves nothing that the hold did not already take);
-- * `ended`: how many of each trader's attempts had ended by each position (the row number of the
--   last ending at that position: row numbers and ranks cost a fraction of a running sum).
--
-- Its active orders are the trader's attempts assigned before it (its rank among them) less those
-- ended before it.
WITH state_events AS (
    SELECT t.trader_id, t.pos, t.event_id,
           CASE WHEN t.kind = 'trader.registered'
                THEN {'fiat_currency': t.state[1], 'settlement_currency': t.state[2]} END AS reg,
           CASE WHEN t.kind IN ('trader.registered', 'trader.limits_changed') THEN {
               'min_amount': coalesce(t.state[3], t.state[4])::BIGINT,
               'max_amount': coalesce(t.state[5], t.state[6])::BIGINT,
               'cap': coalesce(t.state[7], t.state[8])::BIGINT}
           END AS lim,
           CASE t.kind WHEN 'trader.went_online' THEN TRUE WHEN 'trader.went_offline' THEN FALSE END AS online,
           CASE t.kind WHEN 'trader.blocked' THEN TRUE WHEN 'trader.unblocked' THEN FALSE END AS blocked
    FROM audit_trader_events t
    WHERE t.kind IN ({{ names(TRADER_STATE) }})
),
state AS (
    SELECT trader_id, pos,
           last_value(reg IGNORE NULLS) OVER w AS reg, last_value(lim IGNORE NULLS) OVER w AS lim,
           last_value(online IGNORE NULLS) OVER w AS online,
           last_value(blocked IGNORE NULLS) OVER w AS blocked
    FROM state_events
    WINDOW w AS (PARTITION BY trader_id ORDER BY pos, event_id ROWS UNBOUNDED PRECEDING)
),
ta AS (
    SELECT trader_id, pos,
           sum(CASE WHEN kind IN ('trader.deposit_topped_up', 'trader.deposit_credited', 'trader.hold_released') THEN amount
                    WHEN kind IN ('trader.deposit_debited', 'trader.hold_placed') THEN -amount END)
               OVER (PARTITION BY trader_id ORDER BY pos) AS available
    FROM audit_trader_events
    WHERE kind IN ('trader.deposit_topped_up', 'trader.deposit_credited', 'trader.hold_released',
                   'trader.deposit_debited', 'trader.hold_placed')
),
ended AS (
    SELECT trader_id, end_pos AS pos, row_number() OVER w AS ended
    FROM audit_attempts WHERE end_pos IS NOT NULL
    WINDOW w AS (PARTITION BY trader_id ORDER BY end_pos)
    QUALIFY lead(end_pos) OVER w IS DISTINCT FROM end_pos
)
SELECT a.k, s.reg, s.lim, s.online, s.blocked,
       CASE WHEN a.trader_id IS NOT NULL THEN a.started - coalesce(e.ended, 0) END AS active,
       ta.available
FROM (SELECT rowid AS k, trader_id, assigned_pos AS pos,
             rank() OVER (PARTITION BY trader_id ORDER BY assigned_pos) - 1 AS started
      FROM audit_attempts) a
ASOF LEFT JOIN state s ON s.trader_id = a.trader_id AND a.pos > s.pos
ASOF LEFT JOIN ended e ON e.trader_id = a.trader_id AND a.pos > e.pos
ASOF LEFT JOIN ta ON ta.trader_id = a.trader_id AND a.pos > ta.pos
