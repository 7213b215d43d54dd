-- produces: audit_assignment_rules
-- reads: audit_assignment_trader, audit_attempt_orders, audit_attempts, events, ledger_plans, ledger_postings, payload_ledger_plan
-- The scheduler's rules (catalog section 4) judged for every assignment, once: one narrow row per
-- attempt (`k`: its row in `audit_attempts`) with the rules it broke (`broken`, named as
-- `workbench.domain.scheduler.broken_rules` names them, in its order) and the figures they read.
-- ASSIGNMENT_VIOLATION reports the rows that broke one; POLICY_DEVIATION asks of the rows that
-- broke none whether the trader was the policy's pick. Kept here so the rules are written once.
--
-- Rules: registered, not blocked, online, currency, amount limits, capacity, not assigned
-- before, trader deposit (payin), client balance (payout). An unregistered trader breaks
-- `registered` only; the order is as it stood just before the assignment
-- (`audit_attempt_orders`): one not created yet is the fold's empty order (amount 0, no
-- currency, no direction), so it breaks `currency`, and `amount_limits` unless the trader's
-- limits take 0. "Before" is in the fold's order,
-- `(position, event_id)`.
--
-- The trader's side of each assignment (registration, presence, blocks, limits, active orders,
-- the available deposit) is looked up first, into `audit_assignment_trader`. The client's
-- available balance, the costliest lookup, is taken only where it can matter: for payouts (the
-- only rule that reads it) and for the assignments that break another rule (whose detail shows
-- it); elsewhere `client_available` is NULL. It is a running sum per account over the ledger's
-- moves (debits leave at hold, credits arrive at commit, rolled-back debits come back), looked
-- up with an `ASOF` join before the assignment's position; an assignment that shares its
-- position with a ledger event (`audit_assignment_trader.shared`: none in a valid log, where
-- positions are unique) adds what the ledger events there that come before it by `event_id`
-- move on its account (`same`).
WITH x AS (
    SELECT a.k, a.assigned_pos AS pos, a.settlement_amount, a.platform_fee, a.trader_reward,
           o.client_id, o.direction, o.amount, o.currency,
           s.reg IS NOT NULL AS registered, coalesce(s.online, FALSE) AS online,
           coalesce(s.blocked, FALSE) AS blocked, s.reg.fiat_currency, s.reg.settlement_currency,
           s.lim.min_amount, s.lim.max_amount, s.lim.cap, coalesce(s.active, 0) AS active,
           coalesce(s.available, 0) AS trader_available
    FROM (SELECT rowid AS k, * FROM audit_attempts) a
    JOIN audit_attempt_orders o USING (k)
    LEFT JOIN audit_assignment_trader s USING (k)
),
tried AS (
    SELECT DISTINCT b.rowid AS k FROM audit_attempts b JOIN audit_attempts c
      ON c.order_id = b.order_id AND c.trader_id = b.trader_id
     AND (c.assigned_pos < b.assigned_pos OR c.assigned_pos = b.assigned_pos AND c.assigned_event_id < b.assigned_event_id)
),
trader_rules AS NOT MATERIALIZED (  -- every rule but the client's balance (read twice, each
    -- time for a part: computed again, cheaper than storing a million wide rows)
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
ca AS (  -- a client account's available amount after each ledger event that moves it
    WITH moves AS {{ client_moves() }},
    by_pos AS (SELECT account, currency, pos, sum(d) AS d FROM moves GROUP BY ALL)
    SELECT account, currency, pos, sum(d) OVER (PARTITION BY account, currency ORDER BY pos) AS available
    FROM by_pos
),
shared AS MATERIALIZED (  -- the assignments at a position another event shares (materialized, so first)
    SELECT a.rowid AS k, a.order_id, a.assigned_pos, a.assigned_event_id, s.reg.settlement_currency AS currency
    FROM audit_attempts a JOIN audit_assignment_trader s ON s.k = a.rowid AND s.shared
),
tie AS MATERIALIZED (  -- each with its client account and each ledger event before it at that position
    SELECT a.k, 'client:' || o.client_id AS account, a.currency, l.event_id
    FROM shared a
    JOIN {{ events_of("ledger_plan.batch_held", "ledger_plan.committed", "ledger_plan.rolled_back") }} l
      ON l.pos = a.assigned_pos AND l.event_id < a.assigned_event_id
    JOIN audit_attempt_orders o USING (k)
),
same AS (  -- what those ledger events move on the assignment's client account (as in `moves`)
    SELECT t.k, sum(m.d) AS d
    FROM tie t
    JOIN (SELECT held_event_id AS event_id, from_account AS account, currency, -amount AS d
          FROM ledger_postings WHERE held_event_id IN (SELECT event_id FROM tie)
          UNION ALL
          SELECT pl.end_event_id, CASE p.batch_status WHEN 'committed' THEN p.to_account ELSE p.from_account END,
                 p.currency, p.amount
          FROM (SELECT * FROM ledger_plans WHERE end_event_id IN (SELECT event_id FROM tie)) pl
          JOIN ledger_postings p USING (plan_id)
          WHERE p.batch_status IN ('committed', 'rolled_back')) m
      ON m.event_id = t.event_id AND m.account = t.account AND m.currency = t.currency
    GROUP BY t.k
),
judged AS (  -- a payin breaks no client rule, so it needs the balance only if it breaks another
    SELECT r.*, coalesce(ca.available, 0) + coalesce(same.d, 0) AS client_available
    FROM (SELECT * FROM trader_rules WHERE direction = 'payout' OR len(trader_broken) > 0) r
    ASOF LEFT JOIN ca ON ca.account = 'client:' || r.client_id AND ca.currency = r.settlement_currency AND r.pos > ca.pos
    LEFT JOIN same USING (k)
),
rules AS (
    SELECT *, CASE WHEN NOT registered THEN trader_broken ELSE list_concat(trader_broken, list_filter([
        CASE WHEN direction = 'payout' AND client_available < settlement_amount + platform_fee THEN 'client_balance' END
    ], lambda r: r IS NOT NULL)) END AS broken
    FROM judged
)
SELECT k, pos, broken, registered, online, blocked, active, cap, amount, currency, direction,
       client_id, min_amount, max_amount, fiat_currency, settlement_currency, trader_available,
       client_available
FROM rules
UNION ALL  -- the payins that break no trader rule break none (their client's balance is not read)
SELECT k, pos, [], registered, online, blocked, active, cap, amount, currency, direction,
       client_id, min_amount, max_amount, fiat_currency, settlement_currency, trader_available,
       NULL
FROM trader_rules WHERE direction IS DISTINCT FROM 'payout' AND len(trader_broken) = 0
