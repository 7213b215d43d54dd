"""ASSIGNMENT_VIOLATION: every assignment checked against the scheduler's rules (catalog section 4)
as they stood just before it, in SQL.

The rule names are those of :func:`workbench.domain.scheduler.broken_rules`, which defines them
for the fold; here each piece of state the rules read (registration, presence, blocks, limits,
active orders, the trader's available deposit, the client's available balance) is rebuilt as a
running series per trader or account and looked up with an ``ASOF`` join at the assignment's
position, so ten million events cost a few sorted scans, not a fold.

The trader's side is looked up first, into a narrow temp table (:data:`STAGES`): one row per
assignment with only its state, so the ``ASOF`` joins sort a few columns, not whole attempts, and
stay within the memory limit instead of spilling to disk. The client's balance, the costliest
lookup, is taken only where it can matter: for payouts (the only rule that reads it) and for the
assignments that break another rule (whose detail shows it).
"""

from __future__ import annotations

from .checks import TRADER_STATE, _ev, _names

#: Registration, limits, presence and blocks as they change (a few events per trader), from the
#: trader events :func:`~.checks.prepare` parsed (``state``: :data:`~.checks.STATE_FIELDS`).
_STATE_EVENTS = f"""
SELECT t.trader_id, t.pos, t.event_id,
       CASE WHEN t.kind = 'trader.registered'
            THEN {{'fiat_currency': t.state[1], 'settlement_currency': t.state[2]}} END AS reg,
       CASE WHEN t.kind IN ('trader.registered', 'trader.limits_changed') THEN {{
           'min_amount': coalesce(t.state[3], t.state[4])::BIGINT,
           'max_amount': coalesce(t.state[5], t.state[6])::BIGINT,
           'cap': coalesce(t.state[7], t.state[8])::BIGINT}}
       END AS lim,
       CASE t.kind WHEN 'trader.went_online' THEN TRUE WHEN 'trader.went_offline' THEN FALSE END AS online,
       CASE t.kind WHEN 'trader.blocked' THEN TRUE WHEN 'trader.unblocked' THEN FALSE END AS blocked
FROM audit_trader_events t
WHERE t.kind IN ({_names(TRADER_STATE)})
"""

#: The trader's whole state after each of those events: the latest registration, limits,
#: presence and block so far (one series, so one lookup instead of four).
_TRADER_STATE = f"""
SELECT trader_id, pos,
       last_value(reg IGNORE NULLS) OVER w AS reg, last_value(lim IGNORE NULLS) OVER w AS lim,
       last_value(online IGNORE NULLS) OVER w AS online,
       last_value(blocked IGNORE NULLS) OVER w AS blocked
FROM ({_STATE_EVENTS})
WINDOW w AS (PARTITION BY trader_id ORDER BY pos, event_id ROWS UNBOUNDED PRECEDING)
"""

#: The trader deposit's available amount after each trader money event (the trader stream's own
#: view; a capture moves nothing that the hold did not already take).
_TRADER_AVAILABLE = """
SELECT trader_id, pos,
       sum(CASE WHEN kind IN ('trader.deposit_topped_up', 'trader.deposit_credited', 'trader.hold_released') THEN amount
                WHEN kind IN ('trader.deposit_debited', 'trader.hold_placed') THEN -amount END)
           OVER (PARTITION BY trader_id ORDER BY pos) AS available
FROM audit_trader_events
WHERE kind IN ('trader.deposit_topped_up', 'trader.deposit_credited', 'trader.hold_released',
               'trader.deposit_debited', 'trader.hold_placed')
"""

#: How many of each trader's attempts had ended by each position: the row number of the last
#: ending at that position (row numbers and ranks cost a fraction of a running sum).
_ENDED = """
SELECT trader_id, end_pos AS pos, row_number() OVER w AS ended
FROM audit_attempts WHERE end_pos IS NOT NULL
WINDOW w AS (PARTITION BY trader_id ORDER BY end_pos)
QUALIFY lead(end_pos) OVER w IS DISTINCT FROM end_pos
"""

#: The trader's side of every assignment (``k``: the attempt's row in ``audit_attempts``). Its
#: active orders are the trader's attempts assigned before it (its rank among them) less those
#: ended before it.
ASSIGNMENT_TRADER = f"""
WITH state AS ({_TRADER_STATE}), ta AS ({_TRADER_AVAILABLE}), ended AS ({_ENDED})
SELECT a.k, s.reg, s.lim, s.online, s.blocked,
       CASE WHEN a.trader_id IS NOT NULL THEN a.started - coalesce(e.ended, 0) END AS active,
       ta.available
FROM (SELECT rowid AS k, trader_id, assigned_pos AS pos,
             rank() OVER (PARTITION BY trader_id ORDER BY assigned_pos) - 1 AS started
      FROM audit_attempts) a
ASOF LEFT JOIN state s ON s.trader_id = a.trader_id AND a.pos > s.pos
ASOF LEFT JOIN ended e ON e.trader_id = a.trader_id AND a.pos > e.pos
ASOF LEFT JOIN ta ON ta.trader_id = a.trader_id AND a.pos > ta.pos
"""

#: Temp tables the check builds before its query (and drops after it): name -> query.
STAGES: dict[str, str] = {"audit_assignment_trader": ASSIGNMENT_TRADER}

#: A client account's available amount after each ledger event that moves it: debits leave at
#: hold, credits arrive at commit, rolled-back debits come back.
_CLIENT_AVAILABLE = f"""
WITH le AS (  -- positions of the ledger's own events (a join on them, not on every event)
    SELECT event_id, pos FROM {_ev("ledger_plan.batch_held", "ledger_plan.committed", "ledger_plan.rolled_back")}
),
lp AS (  -- only the columns used: this is materialized, once for the three kinds of move
    SELECT p.from_account, p.to_account, p.amount, p.currency, p.batch_status,
           h.pos AS held_pos, e.pos AS end_pos
    FROM ledger_postings p
    JOIN ledger_plans pl USING (plan_id)
    JOIN le h ON h.event_id = p.held_event_id
    LEFT JOIN le e ON e.event_id = pl.end_event_id
    WHERE p.from_account LIKE 'client:%' OR p.to_account LIKE 'client:%'
),
moves AS (
    SELECT from_account AS account, currency, held_pos AS pos, -amount AS d FROM lp WHERE from_account LIKE 'client:%'
    UNION ALL
    SELECT to_account, currency, end_pos, amount FROM lp
    WHERE to_account LIKE 'client:%' AND batch_status = 'committed' AND end_pos IS NOT NULL
    UNION ALL
    SELECT from_account, currency, end_pos, amount FROM lp
    WHERE from_account LIKE 'client:%' AND batch_status = 'rolled_back' AND end_pos IS NOT NULL
),
by_pos AS (SELECT account, currency, pos, sum(d) AS d FROM moves GROUP BY ALL)
SELECT account, currency, pos, sum(d) OVER (PARTITION BY account, currency ORDER BY pos) AS available
FROM by_pos
"""

#: The rules at every assignment. The wide columns (ids, the detail's figures) are carried by
#: ``k``, the attempt's row, and fetched for the breaking assignments only.
ASSIGNMENT_VIOLATION = f"""
WITH x AS (
    SELECT a.k, a.assigned_pos AS pos, a.settlement_amount, a.platform_fee, a.trader_reward,
           o.client_id, o.direction, o.amount, o.currency,
           s.reg IS NOT NULL AS registered, coalesce(s.online, FALSE) AS online,
           coalesce(s.blocked, FALSE) AS blocked, s.reg.fiat_currency, s.reg.settlement_currency,
           s.lim.min_amount, s.lim.max_amount, s.lim.cap, coalesce(s.active, 0) AS active,
           coalesce(s.available, 0) AS trader_available
    FROM (SELECT rowid AS k, * FROM audit_attempts) a
    JOIN payment_orders o USING (order_id)
    LEFT JOIN audit_assignment_trader s USING (k)
),
tried AS (
    SELECT DISTINCT b.rowid AS k FROM audit_attempts b JOIN audit_attempts c
      ON c.order_id = b.order_id AND c.trader_id = b.trader_id AND c.assigned_pos < b.assigned_pos
),
trader_rules AS (  -- every rule but the client's balance
    SELECT *, CASE WHEN NOT registered THEN ['registered'] ELSE list_filter([
        CASE WHEN blocked THEN 'not_blocked' END,
        CASE WHEN NOT online THEN 'online' END,
        CASE WHEN currency IS DISTINCT FROM fiat_currency THEN 'currency' END,
        CASE WHEN NOT (amount BETWEEN min_amount AND max_amount) THEN 'amount_limits' END,
        CASE WHEN active >= cap THEN 'capacity' END,
        CASE WHEN tried_before THEN 'not_assigned_before' END,
        CASE WHEN direction = 'payin' AND trader_available < settlement_amount - trader_reward THEN 'trader_deposit' END
    ], lambda r: r IS NOT NULL) END AS trader_broken
    FROM (SELECT *, k IN (SELECT k FROM tried) AS tried_before FROM x)
),
ca AS ({_CLIENT_AVAILABLE}),
judged AS (  -- a payin breaks no client rule, so it needs the balance only if it breaks another
    SELECT r.*, coalesce(ca.available, 0) AS client_available
    FROM (SELECT * FROM trader_rules WHERE direction = 'payout' OR len(trader_broken) > 0) r
    ASOF LEFT JOIN ca ON ca.account = 'client:' || r.client_id AND ca.currency = r.settlement_currency AND r.pos > ca.pos
),
rules AS (
    SELECT *, CASE WHEN NOT registered THEN trader_broken ELSE list_concat(trader_broken, list_filter([
        CASE WHEN direction = 'payout' AND client_available < settlement_amount + platform_fee THEN 'client_balance' END
    ], lambda r: r IS NOT NULL)) END AS broken
    FROM judged
)
SELECT 'ASSIGNMENT_VIOLATION' AS check, 'payment_order:' || a.order_id AS subject,
       a.assigned_event_id AS event_id, [a.assigned_event_id] AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency,
       format('attempt {{}} assigned to {{}} breaking rule {{}} (online {{}}, blocked {{}}, active {{}} of {{}}, amount {{}} {{}} within {{}}..{{}} {{}}, deposit available {{}}, client available {{}})',
              a.attempt, a.trader_id, array_to_string(r.broken, ', '), r.online, r.blocked, r.active, r.cap,
              r.amount, r.currency, r.min_amount, r.max_amount, r.fiat_currency, r.trader_available,
              r.client_available) AS detail
FROM rules r JOIN (SELECT rowid AS k, * FROM audit_attempts) a USING (k)
WHERE len(r.broken) > 0
"""
