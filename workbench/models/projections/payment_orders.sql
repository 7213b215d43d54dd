-- produces: payment_orders
-- reads: ev, order_assigned, payload_payment_order
-- One row per payment order, as the fold (`domain/payment_order.py`) leaves it. An order's
-- fields are those of the last event of each kind: the `ord` of that event is found with
-- integer aggregates and its typed payload fetched by `ord`, after the aggregation (aggregating
-- strings or structs is several times slower). The
-- accepted attempt is the last acceptance inside the latest attempt while it was open.
{%- set enders = "'payment_order.assignment_declined', 'payment_order.assignment_expired', 'payment_order.cancelled', 'payment_order.completed'" %}
{%- macro lookup(name, kind, value, key) -%}
LEFT JOIN (SELECT ord, occurred_at, {{ value }} AS j FROM {{ typed("payment_order") }} WHERE kind = '{{ kind }}') {{ name }}
    ON {{ name }}.ord = g.{{ key }}
{%- endmacro %}
WITH a AS (
    SELECT
        aggregate_id,
        max(ord) FILTER (WHERE kind = 'payment_order.created') AS created_ord,
        max(ord) FILTER (WHERE kind = 'payment_order.assigned') AS assigned_ord,
        count(*) FILTER (WHERE kind = 'payment_order.assigned') AS attempts,
        list(ord) FILTER (WHERE kind IN ({{ enders }})) AS ender_ords,
        list(ord) FILTER (WHERE kind = 'payment_order.accepted') AS accepted_ords,
        max(ord) FILTER (WHERE kind = 'payment_order.review_started') AS review_ord,
        max(ord) FILTER (WHERE kind = 'payment_order.completed') AS completed_ord,
        max(ord) FILTER (WHERE kind = 'payment_order.cancelled') AS cancelled_ord,
        max(ord) FILTER (WHERE kind = 'payment_order.disputed') AS disputed_ord,
        max(ord) FILTER (WHERE kind = 'payment_order.dispute_resolved') AS resolved_ord,
        -- the status is set by every kind but receipt_attached
        max(ord) FILTER (WHERE kind <> 'payment_order.receipt_attached') AS status_ord,
        arg_max(occurred_at, ord) AS updated_at,
        max(seq) AS version
    FROM ev
    WHERE stream = 'payment_order'
    GROUP BY aggregate_id
),
g AS (
    SELECT *,
        list_max(list_filter(accepted_ords, lambda x: x > assigned_ord AND x < coalesce(
            list_min(list_filter(ender_ords, lambda y: y > assigned_ord)), {{ NEVER }}
        ))) AS accepted_ord
    FROM a
),
r AS (
    SELECT aggregate_id, list(receipt_id ORDER BY ord) AS receipt_ids
    FROM (
        SELECT aggregate_id, ord, receipt_id
        FROM {{ typed("payment_order") }}
        WHERE kind = 'payment_order.receipt_attached'
    )
    GROUP BY aggregate_id
)
SELECT
    g.aggregate_id AS order_id,
    {{ order_figures("cr.j") }},
    cr.j.client_ref,
    CASE WHEN cr.schema_version = 1 THEN 'card' ELSE cr.j.channel END AS channel,
    CASE
        WHEN g.status_ord IS NULL THEN NULL
        WHEN g.status_ord = g.created_ord THEN 'pending'
        WHEN g.status_ord = g.assigned_ord THEN 'assigned'
        WHEN g.status_ord = list_max(g.accepted_ords) THEN 'in_progress'
        WHEN g.status_ord = g.review_ord THEN 'in_review'
        WHEN g.status_ord = g.completed_ord THEN 'completed'
        WHEN g.status_ord = g.cancelled_ord THEN 'cancelled'
        WHEN g.status_ord = g.disputed_ord THEN 'disputed'
        WHEN g.status_ord = g.resolved_ord THEN
            CASE WHEN res.j = 'upheld' THEN 'completed' ELSE 'cancelled' END
        ELSE 'pending'  -- assignment_declined, assignment_expired
    END AS status,
    g.attempts::INTEGER AS attempts,
    asg.attempt::INTEGER AS attempt,
    asg.trader_id,
    asg.rate,
    asg.settlement_currency,
    asg.settlement_amount::BIGINT AS settlement_amount,
    asg.platform_fee::BIGINT AS platform_fee,
    asg.trader_reward::BIGINT AS trader_reward,
    cr.j.expires_at::TIMESTAMPTZ AS expires_at,
    asg.accept_by::TIMESTAMPTZ AS accept_by,
    acc.j::TIMESTAMPTZ AS complete_by,
    cr.occurred_at AS created_at,
    asg.occurred_at AS assigned_at,
    acc.occurred_at AS accepted_at,
    rev.occurred_at AS review_started_at,
    rev.j AS review_reason,
    com.occurred_at AS completed_at,
    com.j.trader_id AS completed_by,
    com.j.paid_amount::BIGINT AS paid_amount,
    can.occurred_at AS cancelled_at,
    can.j AS cancel_reason,
    dis.occurred_at AS disputed_at,
    dis.j AS dispute_reason,
    res.occurred_at AS resolved_at,
    res.j AS dispute_outcome,
    coalesce(r.receipt_ids, []::VARCHAR[]) AS receipt_ids,
    g.updated_at,
    g.version::INTEGER AS version
FROM g
LEFT JOIN r ON r.aggregate_id = g.aggregate_id
LEFT JOIN (
    SELECT ord, occurred_at, schema_version, j
    FROM {{ typed("payment_order") }}
    WHERE kind = 'payment_order.created'
) cr ON cr.ord = g.created_ord
LEFT JOIN order_assigned asg ON asg.ord = g.assigned_ord
{{ lookup("acc", "payment_order.accepted", "complete_by", "accepted_ord") }}
{{ lookup("rev", "payment_order.review_started", "reason", "review_ord") }}
{{ lookup("com", "payment_order.completed", "{'trader_id': trader_id, 'paid_amount': paid_amount}", "completed_ord") }}
{{ lookup("can", "payment_order.cancelled", "reason", "cancelled_ord") }}
{{ lookup("dis", "payment_order.disputed", "reason", "disputed_ord") }}
{{ lookup("res", "payment_order.dispute_resolved", "outcome", "resolved_ord") }}
