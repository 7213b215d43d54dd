-- check: ORDER_SETTLEMENT_MISMATCH
-- severity: high
-- reads: audit_attempts, audit_order_payloads, ledger_plans, ledger_postings, payload_payment_order, payment_orders
-- An attempt's plan (`order:<order>:<attempt>`) whose postings are not the catalog's for its
-- direction and pricing (offending event: the `batch_held`, else the assignment); an attempt
-- completed whose plan was not committed, or ended otherwise whose plan was (the event that ended
-- the attempt); a dispute reversed without a committed `reverse:order:*` plan (the resolution).
--
-- Comparing every plan's legs as sorted lists of strings was most of this check's cost, so the
-- legs are first compared as values, in two classes: the leg to `platform:revenue` and the other
-- one (the catalog has at most one of each; the other leg never goes to the platform). A plan
-- with one leg or none in each class, equal to the catalog's, posts the same legs. Only the plans
-- that differ there (or have NULLs, or more legs in a class) are formatted and compared as
-- before, which decides: equal values always format equally, so no difference can be missed.
-- The detail shows each leg as `from → to amount`, the amount in the plan's currency as people
-- read it (the compared strings keep minor units).
{%- macro shown(legs, currency) -%}
array_to_string(list_transform({{ legs }}, lambda l: replace(regexp_replace(l, ':-?[0-9]+$', ''), '>', ' → ') || ' '
    || {{ money.text("regexp_extract(l, ':(-?[0-9]+)$', 1)::HUGEINT", currency) }}), ', ')
{%- endmacro %}
WITH o AS (SELECT order_id, direction, client_id FROM payment_orders),
-- what each attempt's plan must post, by the catalog
legs AS (
    SELECT a.order_id, a.attempt, a.assigned_event_id, a.trader_id, a.settlement_amount,
           a.platform_fee, a.trader_reward, a.settlement_currency, o.direction, o.client_id,
           'order:' || a.order_id || ':' || a.attempt AS plan_id,
           CASE WHEN o.direction = 'payin' THEN 'trader:' || a.trader_id ELSE 'client:' || o.client_id END AS payer,
           CASE WHEN o.direction = 'payin' THEN 'client:' || o.client_id ELSE 'trader:' || a.trader_id END AS payee,
           CASE WHEN o.direction = 'payin' THEN a.settlement_amount - a.platform_fee
                ELSE a.settlement_amount + a.trader_reward END AS other_amount,
           a.platform_fee - a.trader_reward AS platform_amount
    FROM audit_attempts a JOIN o USING (order_id)
),
posted AS (  -- each plan's legs by class: how many, and the leg when there is one
    SELECT plan_id,
           count(*) FILTER (WHERE to_account = 'platform:revenue') AS n_platform,
           min(from_account) FILTER (WHERE to_account = 'platform:revenue') AS platform_from,
           min(amount) FILTER (WHERE to_account = 'platform:revenue') AS platform_amount,
           count(*) FILTER (WHERE to_account <> 'platform:revenue') AS n_other,
           min(from_account) FILTER (WHERE to_account <> 'platform:revenue') AS other_from,
           min(to_account) FILTER (WHERE to_account <> 'platform:revenue') AS other_to,
           min(amount) FILTER (WHERE to_account <> 'platform:revenue') AS other_amount,
           bool_or(from_account IS NULL OR to_account IS NULL OR amount IS NULL) AS has_null
    FROM ledger_postings WHERE plan_id LIKE 'order:%' GROUP BY plan_id
),
maybe AS (  -- the attempts whose plan may post other legs than the catalog's
    SELECT e.* FROM legs e LEFT JOIN posted x USING (plan_id)
    WHERE x.plan_id IS NULL OR x.has_null
       OR e.payer IS NULL OR e.payee IS NULL OR e.other_amount IS NULL OR e.platform_amount IS NULL
       OR x.n_platform <> (e.platform_amount <> 0)::INTEGER OR x.n_other <> (e.other_amount <> 0)::INTEGER
       OR (x.n_platform = 1 AND (x.platform_from <> e.payer OR x.platform_amount <> e.platform_amount))
       OR (x.n_other = 1 AND (x.other_from <> e.payer OR x.other_to <> e.payee OR x.other_amount <> e.other_amount))
),
expected AS (
    SELECT order_id, attempt, assigned_event_id, plan_id, settlement_currency,
           list_sort(list_filter(CASE WHEN direction = 'payin' THEN [
               format('{}>{}:{}', 'trader:' || trader_id, 'client:' || client_id, settlement_amount - platform_fee),
               format('{}>{}:{}', 'trader:' || trader_id, 'platform:revenue', platform_fee - trader_reward)]
           ELSE [
               format('{}>{}:{}', 'client:' || client_id, 'trader:' || trader_id, settlement_amount + trader_reward),
               format('{}>{}:{}', 'client:' || client_id, 'platform:revenue', platform_fee - trader_reward)]
           END, lambda x: NOT ends_with(x, ':0'))) AS legs,
           CASE WHEN direction = 'payin' THEN settlement_amount - platform_fee
                ELSE settlement_amount + trader_reward END AS client_leg
    FROM maybe
),
actual AS (
    SELECT plan_id, list_sort(list(format('{}>{}:{}', from_account, to_account, amount))) AS legs,
           sum(CASE WHEN from_account LIKE 'client:%' OR to_account LIKE 'client:%' THEN amount ELSE 0 END)
             FILTER (WHERE from_account LIKE 'client:%' AND to_account LIKE 'trader:%'
                        OR from_account LIKE 'trader:%' AND to_account LIKE 'client:%') AS client_leg,
           arg_min(held_event_id, batch_id) AS held_event_id, any_value(currency) AS currency
    FROM ledger_postings WHERE plan_id IN (SELECT plan_id FROM maybe) GROUP BY plan_id
),
postings AS (
    SELECT 'payment_order:' || e.order_id AS subject, coalesce(x.held_event_id, e.assigned_event_id) AS event_id,
           list_filter([x.held_event_id, e.assigned_event_id], lambda v: v IS NOT NULL) AS evidence,
           TRY_CAST(coalesce(x.client_leg, 0) - e.client_leg AS BIGINT) AS delta, x.currency,
           format('plan {} posts [{}], the catalog says [{}]', e.plan_id,
                  {{ shown("coalesce(x.legs, [])", "coalesce(x.currency, e.settlement_currency)") }},
                  {{ shown("e.legs", "coalesce(x.currency, e.settlement_currency)") }}) AS detail
    FROM expected e LEFT JOIN actual x USING (plan_id)
    WHERE x.legs IS DISTINCT FROM e.legs
),
finished AS (  -- completed attempts must be committed; other ended attempts must not be
    SELECT 'payment_order:' || a.order_id, a.end_event_id,
           list_filter([a.end_event_id, p.end_event_id, a.assigned_event_id], lambda v: v IS NOT NULL),
           NULL::BIGINT, NULL,
           format('attempt {} ended by {} but its plan {} is {}', a.attempt, a.end_kind,
                  'order:' || a.order_id || ':' || a.attempt, coalesce(p.status, 'missing'))
    FROM audit_attempts a
    LEFT JOIN (SELECT plan_id, status, end_event_id FROM ledger_plans) p
           ON p.plan_id = 'order:' || a.order_id || ':' || a.attempt
    WHERE a.end_kind IS NOT NULL AND p.status IS DISTINCT FROM 'held'
      AND ((a.end_kind = 'payment_order.completed') <> (p.status IS NOT DISTINCT FROM 'committed'))
),
reversed AS (
    SELECT 'payment_order:' || r.aggregate_id, e.event_id, [e.event_id], NULL::BIGINT, NULL,
           format('dispute reversed but plan {} is {}', 'reverse:order:' || r.aggregate_id, coalesce(p.status, 'missing'))
    FROM audit_order_payloads r
    LEFT JOIN (SELECT plan_id, status, end_event_id FROM ledger_plans) p
           ON p.plan_id = 'reverse:order:' || r.aggregate_id
    JOIN payload_payment_order e ON e.rowid = r.row
    WHERE r.what = 'resolved' AND r.a = 'reversed' AND p.status IS DISTINCT FROM 'committed'
)
SELECT 'ORDER_SETTLEMENT_MISMATCH', * FROM (
    SELECT * FROM postings UNION ALL SELECT * FROM finished UNION ALL SELECT * FROM reversed
)
