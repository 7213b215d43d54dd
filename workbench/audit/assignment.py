"""ASSIGNMENT_VIOLATION: every assignment checked against the scheduler's rules (catalog section 4)
as they stood just before it, in SQL.

The rule names are those of :func:`workbench.domain.scheduler.broken_rules`, which defines them
for the fold; here each piece of state the rules read (registration, presence, blocks, limits,
active orders, the trader's available deposit, the client's available balance) is rebuilt as a
running series per trader or account and looked up with an ``ASOF`` join at the assignment's
position, so ten million events cost a few sorted scans, not a fold.
"""

from __future__ import annotations

from .checks import _ev

#: The trader deposit's available amount after each trader event (the trader stream's own view).
_TRADER_AVAILABLE = f"""
SELECT aggregate_id AS trader_id, pos,
       sum(CASE WHEN kind IN ('trader.deposit_topped_up', 'trader.deposit_credited', 'trader.hold_released') THEN a
                WHEN kind IN ('trader.deposit_debited', 'trader.hold_placed') THEN -a ELSE 0 END)
           OVER (PARTITION BY aggregate_id ORDER BY pos, event_id) AS available
FROM (SELECT *, (payload->>'amount')::BIGINT AS a FROM {
    _ev(
        "trader.deposit_topped_up",
        "trader.deposit_credited",
        "trader.hold_released",
        "trader.deposit_debited",
        "trader.hold_placed",
        "trader.hold_captured",
    )
})
"""

#: A client account's available amount after each ledger event that moves it: debits leave at
#: hold, credits arrive at commit, rolled-back debits come back.
_CLIENT_AVAILABLE = f"""
WITH le AS (  -- positions of the ledger's own events (a join on them, not on every event)
    SELECT event_id, pos FROM {_ev("ledger_plan.batch_held", "ledger_plan.committed", "ledger_plan.rolled_back")}
),
lp AS (
    SELECT p.*, h.pos AS held_pos, e.pos AS end_pos, pl.status AS plan_status
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

ASSIGNMENT_VIOLATION = f"""
WITH a AS (SELECT * FROM audit_attempts),
o AS (SELECT order_id, client_id, direction, amount, currency FROM payment_orders),
x AS (
    SELECT a.order_id, a.attempt, a.trader_id, a.assigned_event_id, a.assigned_pos AS pos,
           a.settlement_amount, a.platform_fee, a.trader_reward, o.client_id, o.direction,
           o.amount, o.currency
    FROM a JOIN o USING (order_id)
),
reg AS (
    SELECT aggregate_id AS trader_id, pos, payload->>'fiat_currency' AS fiat_currency,
           payload->>'settlement_currency' AS settlement_currency
    FROM {_ev("trader.registered")}
),
limits AS (
    SELECT aggregate_id AS trader_id, pos,
           coalesce(payload->>'$.limits.min_amount', payload->>'min_amount')::BIGINT AS min_amount,
           coalesce(payload->>'$.limits.max_amount', payload->>'max_amount')::BIGINT AS max_amount,
           coalesce(payload->>'$.limits.max_active_orders', payload->>'max_active_orders')::BIGINT AS cap
    FROM {_ev("trader.registered", "trader.limits_changed")}
),
presence AS (
    SELECT aggregate_id AS trader_id, pos, kind = 'trader.went_online' AS online
    FROM {_ev("trader.went_online", "trader.went_offline")}
),
blocks AS (
    SELECT aggregate_id AS trader_id, pos, kind = 'trader.blocked' AS blocked
    FROM {_ev("trader.blocked", "trader.unblocked")}
),
active AS (  -- orders in an open attempt with each trader, after each assignment or ending
    SELECT trader_id, pos, sum(d) OVER (PARTITION BY trader_id ORDER BY pos) AS active
    FROM (
        SELECT trader_id, pos, sum(d) AS d FROM (
            SELECT trader_id, assigned_pos AS pos, 1 AS d FROM a
            UNION ALL SELECT trader_id, end_pos, -1 FROM a WHERE end_pos IS NOT NULL
        ) GROUP BY ALL
    )
),
tried AS (
    SELECT DISTINCT b.assigned_event_id FROM a b JOIN a c
      ON c.order_id = b.order_id AND c.trader_id = b.trader_id AND c.assigned_pos < b.assigned_pos
),
ta AS ({_TRADER_AVAILABLE}),
ca AS ({_CLIENT_AVAILABLE}),
judged AS (
    SELECT x.*, r.pos IS NOT NULL AS registered, coalesce(p.online, FALSE) AS online,
           coalesce(b.blocked, FALSE) AS blocked, r.fiat_currency, r.settlement_currency,
           l.min_amount, l.max_amount, l.cap, coalesce(ac.active, 0) AS active,
           x.assigned_event_id IN (SELECT assigned_event_id FROM tried) AS tried_before,
           coalesce(ta.available, 0) AS trader_available, coalesce(ca.available, 0) AS client_available
    FROM x
    ASOF LEFT JOIN reg r ON r.trader_id = x.trader_id AND x.pos > r.pos
    ASOF LEFT JOIN limits l ON l.trader_id = x.trader_id AND x.pos > l.pos
    ASOF LEFT JOIN presence p ON p.trader_id = x.trader_id AND x.pos > p.pos
    ASOF LEFT JOIN blocks b ON b.trader_id = x.trader_id AND x.pos > b.pos
    ASOF LEFT JOIN active ac ON ac.trader_id = x.trader_id AND x.pos > ac.pos
    ASOF LEFT JOIN ta ON ta.trader_id = x.trader_id AND x.pos > ta.pos
    ASOF LEFT JOIN ca ON ca.account = 'client:' || x.client_id AND ca.currency = r.settlement_currency AND x.pos > ca.pos
),
rules AS (
    SELECT *, CASE WHEN NOT registered THEN ['registered'] ELSE list_filter([
        CASE WHEN blocked THEN 'not_blocked' END,
        CASE WHEN NOT online THEN 'online' END,
        CASE WHEN currency IS DISTINCT FROM fiat_currency THEN 'currency' END,
        CASE WHEN NOT (amount BETWEEN min_amount AND max_amount) THEN 'amount_limits' END,
        CASE WHEN active >= cap THEN 'capacity' END,
        CASE WHEN tried_before THEN 'not_assigned_before' END,
        CASE WHEN direction = 'payin' AND trader_available < settlement_amount - trader_reward THEN 'trader_deposit' END,
        CASE WHEN direction = 'payout' AND client_available < settlement_amount + platform_fee THEN 'client_balance' END
    ], lambda r: r IS NOT NULL) END AS broken
    FROM judged
)
SELECT 'ASSIGNMENT_VIOLATION' AS check, 'payment_order:' || order_id AS subject,
       assigned_event_id AS event_id, [assigned_event_id] AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency,
       format('attempt {{}} assigned to {{}} breaking rule {{}} (online {{}}, blocked {{}}, active {{}} of {{}}, amount {{}} {{}} within {{}}..{{}} {{}}, deposit available {{}}, client available {{}})',
              attempt, trader_id, array_to_string(broken, ', '), online, blocked, active, cap,
              amount, currency, min_amount, max_amount, fiat_currency, trader_available, client_available) AS detail
FROM rules WHERE len(broken) > 0
"""
