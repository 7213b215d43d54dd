-- produces: order_attempts
-- reads: ev, order_assigned, payload_payment_order
-- One row per assignment attempt. An attempt is opened by each `assigned` and ended by the
-- first `assignment_declined`, `assignment_expired`, `cancelled` or `completed` after it, or
-- superseded by the next `assigned`. An event is inside the open attempt when the last of those
-- boundary events before it is an `assigned`: that is all the fold's `open_attempt` means.
{%- set enders = "'payment_order.assignment_declined', 'payment_order.assignment_expired', 'payment_order.cancelled', 'payment_order.completed'" %}
WITH w AS (
    -- the last boundary before each event, as ord * 4 + 1 (an assigned: its attempt is open)
    -- or ord * 4 + 2 (an ender): events inside an open attempt belong to that assigned's ord
    SELECT ord, kind, occurred_at,
        max(CASE WHEN kind = 'payment_order.assigned' THEN ord * 4 + 1
                 WHEN kind <> 'payment_order.accepted' THEN ord * 4 + 2 END)
            OVER (PARTITION BY aggregate_id ORDER BY ord
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS boundary
    FROM ev
    WHERE stream = 'payment_order'
        AND kind IN ('payment_order.assigned', 'payment_order.accepted', {{ enders }})
),
open AS (
    SELECT
        boundary // 4 AS assigned_ord,
        max(ord) FILTER (WHERE kind = 'payment_order.accepted') AS accepted_ord,
        arg_max(occurred_at, ord) FILTER (WHERE kind = 'payment_order.accepted') AS accepted_at,
        arg_min(occurred_at, ord) FILTER (WHERE kind <> 'payment_order.accepted') AS ended_at,
        arg_min(CASE kind
            WHEN 'payment_order.assignment_declined' THEN 'declined'
            WHEN 'payment_order.assignment_expired' THEN 'expired'
            WHEN 'payment_order.cancelled' THEN 'cancelled'
            WHEN 'payment_order.completed' THEN 'completed'
            WHEN 'payment_order.assigned' THEN 'superseded'
        END, ord) FILTER (WHERE kind <> 'payment_order.accepted') AS outcome
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
    asg.event_id AS assigned_event_id
FROM order_assigned asg
LEFT JOIN open o ON o.assigned_ord = asg.ord
LEFT JOIN (
    SELECT ord, complete_by
    FROM {{ typed("payment_order") }}
    WHERE kind = 'payment_order.accepted'
) acc ON acc.ord = o.accepted_ord
