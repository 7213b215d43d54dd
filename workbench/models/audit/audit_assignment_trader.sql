-- produces: audit_assignment_trader
-- reads: audit_attempts, audit_trader_events, events, payload_trader
-- The trader's side of every assignment, for ASSIGNMENT_VIOLATION: one narrow row per attempt
-- (`k`: the attempt's row in `audit_attempts`) with the trader's state just before it, so the
-- `ASOF` joins sort a few columns, not whole attempts, and stay within the memory limit instead of
-- spilling to disk. Each piece of state the scheduler's rules read is rebuilt as a running series
-- per trader and looked up with an `ASOF` join at the assignment:
--
-- * `state`: registration, limits, presence and block after each of the trader's state events
--   (`TRADER_STATE`, a few per trader; `audit_trader_events.state` holds their fields), one
--   series, so one lookup instead of four;
-- * `ta`: the deposit's available amount after each trader money event, as the catalog (3.2) and
--   the fold define it: the balance (top-ups and credits in; debits and captures out) less the
--   open holds by `ref`. One hold per ref: a hold event changes what is held by its placed amount
--   (none for a release or a capture) less what was open on the ref before it (the amount of the
--   ref's previous hold event if that placed it), so a release or capture ends whatever the ref
--   held, and a ref placed twice holds the last amount (as `trader_holds` and `hold_events` say);
-- * `ended`: how many of each trader's attempts had ended by each event (the row number of the
--   attempt it ended: an event ends one attempt at most; row numbers cost a fraction of a running
--   sum).
--
-- Its active orders are the trader's attempts assigned before it (its row number among them) less
-- those ended before it.
--
-- "Before" is in the fold's order, `(position, event_id)`. Positions are unique in a valid log
-- (strictly increasing, says the catalog), so the series are ordered by position alone, on
-- integers (`by_pos`), but for the traders with an event at a position another event shares
-- (`tied`, from `shared`: one count of the positions, none shared in a valid log): their series
-- are built again apart, ordered by `(position, event_id)` (`by_pos_and_id`), their events' ids
-- fetched by row. An attempt ended by the order's next assignment ends at that assignment's own
-- event, counted once, and not before it. `shared` is also the check's: whether an assignment
-- shares its position with one of these events or with a ledger event (whose moves on the
-- client's account the check then orders by `event_id`).
{%- set LEDGER_MOVES = ("ledger_plan.batch_held", "ledger_plan.committed", "ledger_plan.rolled_back") %}
{%- macro by_pos(pos, event_id) -%}{{ pos }}{%- endmacro %}
{%- macro by_pos_and_id(pos, event_id) -%}{'pos': {{ pos }}, 'event_id': {{ event_id }}}{%- endmacro %}
{%- macro side(key, trader_events, attempts) -%}
(WITH state_events AS (
    SELECT trader_id, {{ key("pos", "event_id") }} AS key,
           CASE WHEN kind = 'trader.registered'
                THEN {'fiat_currency': state.fiat_currency, 'settlement_currency': state.settlement_currency} END AS reg,
           CASE WHEN kind IN ('trader.registered', 'trader.limits_changed') THEN {
               'min_amount': state.min_amount::BIGINT,
               'max_amount': state.max_amount::BIGINT,
               'cap': state.max_active_orders::BIGINT}
           END AS lim,
           CASE kind WHEN 'trader.went_online' THEN TRUE WHEN 'trader.went_offline' THEN FALSE END AS online,
           CASE kind WHEN 'trader.blocked' THEN TRUE WHEN 'trader.unblocked' THEN FALSE END AS blocked
    FROM {{ trader_events }}
    WHERE kind IN ({{ names(TRADER_STATE) }})
),
state AS (
    SELECT trader_id, key,
           last_value(reg IGNORE NULLS) OVER w AS reg, last_value(lim IGNORE NULLS) OVER w AS lim,
           last_value(online IGNORE NULLS) OVER w AS online,
           last_value(blocked IGNORE NULLS) OVER w AS blocked
    FROM state_events
    WINDOW w AS (PARTITION BY trader_id ORDER BY key ROWS UNBOUNDED PRECEDING)
),
ta AS (
    SELECT trader_id, key, sum(d) OVER (PARTITION BY trader_id ORDER BY key) AS available
    FROM ({{ deposit_moves(trader_events, key("pos", "event_id")) }})
),
ended AS (
    SELECT trader_id, key, row_number() OVER (PARTITION BY trader_id ORDER BY key) AS ended
    FROM (SELECT trader_id, {{ key("end_pos", "end_event_id") }} AS key FROM {{ attempts }} WHERE end_pos IS NOT NULL)
)
SELECT a.k, s.reg, s.lim, s.online, s.blocked,
       CASE WHEN a.trader_id IS NOT NULL THEN a.started - coalesce(e.ended, 0) END AS active,
       ta.available, a.shared
FROM (SELECT *, row_number() OVER (PARTITION BY trader_id ORDER BY key) - 1 AS started
      FROM (SELECT k, trader_id, {{ key("assigned_pos", "assigned_event_id") }} AS key, shared FROM {{ attempts }})) a
ASOF LEFT JOIN state s ON s.trader_id = a.trader_id AND a.key > s.key
ASOF LEFT JOIN ended e ON e.trader_id = a.trader_id AND a.key > e.key
ASOF LEFT JOIN ta ON ta.trader_id = a.trader_id AND a.key > ta.key)
{%- endmacro %}
WITH shared AS (  -- the positions two of these events share, or an assignment and a ledger event
    SELECT pos
    FROM (SELECT assigned_pos AS pos FROM audit_attempts
          UNION ALL  -- an attempt ended by the next assignment: that event is counted once, above
          SELECT end_pos FROM audit_attempts WHERE end_kind <> 'payment_order.assigned'
          UNION ALL
          SELECT pos FROM audit_trader_events)
    GROUP BY pos HAVING count(*) > 1
    UNION
    (SELECT assigned_pos FROM audit_attempts INTERSECT SELECT pos FROM {{ events_of(*LEDGER_MOVES) }})
),
tied AS (  -- the traders with an event at a shared position
    SELECT trader_id FROM audit_attempts
    WHERE assigned_pos IN (SELECT pos FROM shared) OR end_pos IN (SELECT pos FROM shared)
    UNION
    SELECT trader_id FROM audit_trader_events WHERE pos IN (SELECT pos FROM shared)
)
SELECT f.* FROM {{ side(by_pos, "audit_trader_events", "(SELECT rowid AS k, *, assigned_pos IN (SELECT pos FROM shared) AS shared FROM audit_attempts)") }} f
ANTI JOIN (SELECT a.rowid AS k FROM audit_attempts a SEMI JOIN tied USING (trader_id)) USING (k)
UNION ALL
SELECT * FROM {{ side(by_pos_and_id,
                      "(SELECT t.*, e.event_id FROM audit_trader_events t SEMI JOIN tied USING (trader_id) JOIN payload_trader e ON e.rowid = t.row)",
                      "(SELECT a.rowid AS k, a.*, a.assigned_pos IN (SELECT pos FROM shared) AS shared FROM audit_attempts a SEMI JOIN tied USING (trader_id))") }}
