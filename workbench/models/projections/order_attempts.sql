-- produces: order_attempts
-- reads: ev, order_assigned, payload_payment_order
-- One row per assignment attempt (the fold's `payment_order.Attempt`). An attempt is opened by
-- each `assigned` and ended by the first `assignment_declined`, `assignment_expired`,
-- `cancelled` or `completed` after it, or superseded by the next `assigned`. An event is inside
-- the open attempt when the last of those boundary events before it is an `assigned`: that is
-- all the fold's `open_attempt` means. Inside it, the latest `accepted` gives `accepted_at` and
-- `complete_by` (each acceptance overwrites them in the fold), and the first `review_started` is
-- the attempt's review. The audit reads its attempts here too (`audit_attempts`), so the rule is
-- written once.
{%- set enders = "'payment_order.assignment_declined', 'payment_order.assignment_expired', 'payment_order.cancelled', 'payment_order.completed'" %}
{%- set inside = "('payment_order.accepted', 'payment_order.review_started')" %}
WITH w AS (
    -- the last boundary before each event, as ord * 4 + 1 (an assigned: its attempt is open)
    -- or ord * 4 + 2 (an ender): events inside an open attempt belong to that assigned's ord
    SELECT ord, kind, occurred_at, event_id, position,
        max(CASE WHEN kind = 'payment_order.assigned' THEN ord * 4 + 1
                 WHEN kind NOT IN {{ inside }} THEN ord * 4 + 2 END)
            OVER (PARTITION BY aggregate_id ORDER BY ord
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS boundary
    FROM ev
    WHERE stream = 'payment_order'
        AND kind IN ('payment_order.assigned', 'payment_order.accepted',
                     'payment_order.review_started', {{ enders }})
),
open AS (
    SELECT
        boundary // 4 AS assigned_ord,
        max(ord) FILTER (WHERE kind = 'payment_order.accepted') AS accepted_ord,
        arg_max(occurred_at, ord) FILTER (WHERE kind = 'payment_order.accepted') AS accepted_at,
        arg_max(event_id, ord) FILTER (WHERE kind = 'payment_order.accepted') AS accepted_event_id,
        arg_min(occurred_at, ord) FILTER (WHERE kind NOT IN {{ inside }}) AS ended_at,
        arg_min({{ attempt_outcome("kind") }}, ord)
            FILTER (WHERE kind NOT IN {{ inside }}) AS outcome,
        arg_min(event_id, ord) FILTER (WHERE kind NOT IN {{ inside }}) AS end_event_id,
        arg_min(position, ord) FILTER (WHERE kind NOT IN {{ inside }}) AS end_pos,
        arg_min(event_id, ord) FILTER (WHERE kind = 'payment_order.review_started') AS review_event_id,
        arg_min(position, ord) FILTER (WHERE kind = 'payment_order.review_started') AS review_pos
    FROM w
    WHERE boundary % 4 = 1
    GROUP BY boundary // 4
)
SELECT
    asg.aggregate_id AS order_id,
    asg.attempt::INTEGER AS attempt,
    asg.trader_id,
    asg.rate,
    asg.settlement_currency,
    asg.settlement_amount::BIGINT AS settlement_amount,
    asg.platform_fee::BIGINT AS platform_fee,
    asg.trader_reward::BIGINT AS trader_reward,
    asg.occurred_at AS assigned_at,
    asg.accept_by::TIMESTAMPTZ AS accept_by,
    o.accepted_at,
    acc.complete_by::TIMESTAMPTZ AS complete_by,
    o.ended_at,
    o.outcome,
    asg.event_id AS assigned_event_id,
    asg.position AS assigned_pos,
    o.accepted_event_id,
    o.end_event_id,
    o.end_pos,
    o.review_event_id,
    o.review_pos
FROM order_assigned asg
LEFT JOIN open o ON o.assigned_ord = asg.ord
LEFT JOIN (
    SELECT ord, complete_by
    FROM {{ typed("payment_order") }}
    WHERE kind = 'payment_order.accepted'
) acc ON acc.ord = o.accepted_ord
