-- check: POLICY_DEVIATION
-- severity: medium
-- reads: audit_policy_pick
-- An assignment that broke no scheduler rule but whose trader is not the production policy's
-- pick (catalog section 4: among the eligible traders, the highest latest published score, then
-- the fewest active orders, then the smallest `trader_id`): a scheduler that quietly favours some
-- traders, or a manual override, breaks no rule and so passes ASSIGNMENT_VIOLATION (which reports
-- the assignments that broke one: one anomaly, one finding). The pick is computed in
-- `audit_policy_pick`. The offending event is the `assigned` event; the evidence then has the
-- pick's latest `trader_rating.published` and the assigned trader's (none before a first
-- rating: the default 55.00). The detail names both traders with their keys (score, active
-- orders) and why the pick ranked first. Medium, as ASSIGNMENT_VIOLATION: no money is wrong, but
-- the platform's promise of who gets an order is broken, and repeated, it is favouritism.
{%- macro score(s) -%}
CASE WHEN {{ s }} = round({{ s }}, 2) THEN round({{ s }}, 2)::DECIMAL(18, 2)::VARCHAR ELSE {{ s }}::VARCHAR END
{%- endmacro %}
SELECT 'POLICY_DEVIATION' AS check, 'payment_order:' || order_id AS subject, event_id,
       list_filter([event_id, pick_rated_by, rated_by], lambda e: e IS NOT NULL) AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency,
       format('attempt {} assigned to {} (score {}, active {}), the policy picks {} (score {}, active {}): {}',
              attempt, trader_id, {{ score("score") }}, active, pick_id, {{ score("pick_score") }}, pick_active,
              CASE WHEN NOT self_ok
                   THEN format('{} fails its money rule at the formula''s pricing, {} ranks first of the eligible', trader_id, pick_id)
                   WHEN pick_score > score THEN format('higher score {} > {}', {{ score("pick_score") }}, {{ score("score") }})
                   WHEN pick_active < active THEN format('same score, fewer active orders {} < {}', pick_active, active)
                   ELSE format('same score and load, smaller id {} < {}', pick_id, trader_id) END) AS detail
FROM audit_policy_pick
WHERE pick_id IS NOT NULL
