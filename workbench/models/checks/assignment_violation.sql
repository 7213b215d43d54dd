-- check: ASSIGNMENT_VIOLATION
-- severity: medium
-- reads: audit_assignment_rules, audit_attempts
-- An assignment that broke a rule of the scheduler (catalog section 4) as things stood just
-- before it: registered, not blocked, online, currency, amount limits, capacity, not assigned
-- before, trader deposit (payin), client balance (payout); the rules broken are named as
-- `workbench.domain.scheduler.broken_rules` names them for the fold. The offending event is the
-- `assigned` event. The rules are judged once, in `audit_assignment_rules` (POLICY_DEVIATION
-- reads the assignments that broke none there); the wide columns (ids) come from the attempt's
-- row `k` for the breaking assignments only. A figure the detail cannot show (no registration,
-- no order) is `missing` (`m`: DuckDB's `format()` is NULL if an argument is).
{%- macro m(x) -%}coalesce({{ x }}::VARCHAR, 'missing'){%- endmacro %}
SELECT 'ASSIGNMENT_VIOLATION' AS check, 'payment_order:' || a.order_id AS subject,
       a.assigned_event_id AS event_id, [a.assigned_event_id] AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency,
       format('attempt {} assigned to {} breaking rule {} (online {}, blocked {}, active {} of {}, amount {} within {}..{}, deposit available {}, client available {})',
              {{ m("a.attempt") }}, {{ m("a.trader_id") }}, array_to_string(r.broken, ', '), r.online, r.blocked, r.active,
              {{ m("r.cap") }}, {{ m(money.text("r.amount", "r.currency")) }},
              {{ m(money.text("r.min_amount", "r.fiat_currency")) }}, {{ m(money.text("r.max_amount", "r.fiat_currency")) }},
              {{ m(money.text("r.trader_available", "r.settlement_currency")) }},
              {{ m(money.text("r.client_available", "r.settlement_currency")) }}) AS detail
FROM (SELECT * FROM audit_assignment_rules WHERE len(broken) > 0) r
JOIN (SELECT rowid AS k, * FROM audit_attempts) a USING (k)
