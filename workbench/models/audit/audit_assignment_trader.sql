-- produces: audit_assignment_trader
-- reads: audit_attempts, audit_trader_events, audit_trader_states, audit_trader_timeline, events, payload_trader
-- The trader's side of every assignment, for ASSIGNMENT_VIOLATION: one narrow row per attempt
-- (`k`: the attempt's row in `audit_attempts`) with the trader's state just before it:
--
-- * its registration, limits, presence and block, and its active orders: its row of its
--   timeline (`audit_trader_timeline`, the trader's state and load folded once, in the fold's
--   `(position, event_id)` order; POLICY_DEVIATION reads the same) and the state there
--   (`audit_trader_states`). The assignment's row has the load just after it: one less before.
-- * `available`: the deposit's available amount, as the catalog (3.2) and the fold define it: the
--   balance (top-ups and credits in; debits and captures out) less the open holds by `ref`. One
--   hold per ref: a hold event changes what is held by its placed amount (none for a release or
--   a capture) less what was open on the ref before it (the amount of the ref's previous hold
--   event if that placed it), so a release or capture ends whatever the ref held, and a ref
--   placed twice holds the last amount (as `trader_holds` and `hold_events` say). A running
--   series per trader, looked up with an `ASOF` join at the assignment.
--
-- "Before" is in the fold's order, `(position, event_id)`. Positions are unique in a valid log
-- (strictly increasing, says the catalog), so the deposit's series is ordered by position alone,
-- on integers (`by_pos`), but for the traders with an event at a position another event shares
-- (`tied`, from `shared`: one count of the positions, none shared in a valid log): their series
-- are built again apart, ordered by `(position, event_id)` (`by_pos_and_id`), their events' ids
-- fetched by row. `shared` is also the check's: whether an assignment shares its position with
-- one of these events or with a ledger event (whose moves on the client's account the check then
-- orders by `event_id`).
{%- set LEDGER_MOVES = ("ledger_plan.batch_held", "ledger_plan.committed", "ledger_plan.rolled_back") %}
{%- macro by_pos(pos, event_id) -%}{{ pos }}{%- endmacro %}
{%- macro by_pos_and_id(pos, event_id) -%}{'pos': {{ pos }}, 'event_id': {{ event_id }}}{%- endmacro %}
{%- macro available(key, trader_events, attempts) -%}
(WITH ta AS (
    SELECT trader_id, key, sum(d) OVER (PARTITION BY trader_id ORDER BY key) AS available
    FROM ({{ deposit_moves(trader_events, key("pos", "event_id")) }})
)
SELECT a.k, ta.available
FROM (SELECT k, trader_id, {{ key("assigned_pos", "assigned_event_id") }} AS key FROM {{ attempts }}) a
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
),
deposit AS (
    SELECT f.* FROM {{ available(by_pos, "audit_trader_events", "(SELECT rowid AS k, * FROM audit_attempts)") }} f
    ANTI JOIN (SELECT a.rowid AS k FROM audit_attempts a SEMI JOIN tied USING (trader_id)) USING (k)
    UNION ALL
    SELECT * FROM {{ available(by_pos_and_id,
                               "(SELECT t.*, e.event_id FROM audit_trader_events t SEMI JOIN tied USING (trader_id) JOIN payload_trader e ON e.rowid = t.row)",
                               "(SELECT a.rowid AS k, a.* FROM audit_attempts a SEMI JOIN tied USING (trader_id))") }}
),
own_row AS (  -- each assignment's row of its trader's timeline
    SELECT k, v, active - 1 AS active FROM audit_trader_timeline WHERE k IS NOT NULL
)
SELECT a.k, CASE WHEN s.reg IS NOT NULL
                 THEN {'fiat_currency': s.reg.fiat_currency, 'settlement_currency': s.reg.settlement_currency} END AS reg,
       s.lim, s.online, s.blocked, CASE WHEN a.trader_id IS NOT NULL THEN coalesce(t.active, 0) END AS active,
       d.available, a.assigned_pos IN (SELECT pos FROM shared) AS shared
FROM (SELECT rowid AS k, trader_id, assigned_pos FROM audit_attempts) a
LEFT JOIN own_row t USING (k)
LEFT JOIN audit_trader_states s ON s.trader_id = a.trader_id AND s.v = t.v
LEFT JOIN deposit d USING (k)
