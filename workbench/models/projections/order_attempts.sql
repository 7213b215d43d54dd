-- produces: order_attempts
-- reads: payload_payment_order
-- One row per assignment attempt (the fold's `payment_order.Attempt`). An attempt is opened by
-- each `assigned` and ended by the first `assignment_declined`, `assignment_expired`,
-- `cancelled` or `completed` after it, or superseded by the next `assigned`. An event is inside
-- the open attempt when the last of those boundary events before it is an `assigned`: that is
-- all the fold's `open_attempt` means. Inside it, the latest `accepted` gives `accepted_at` and
-- `complete_by` (each acceptance overwrites them in the fold), and the first `review_started` is
-- the attempt's review.
--
-- The audit reads its attempts here too (`audit_attempts`), so the rule is written once. One
-- sorted pass over the orders' typed events (`payload_payment_order`, which an incremental apply
-- narrows to the scope's orders, all their events), in the fold's `(position, event_id)` order:
-- each event is given the last boundary before it, and the events after an `assigned` are
-- grouped by it.
{%- set ACCEPTED = "'payment_order.accepted'" %}
{%- set REVIEW = "'payment_order.review_started'" %}
WITH o AS (
    SELECT event_id, pos, aggregate_id, kind, occurred_at, complete_by, attempt, trader_id, rate,
           settlement_currency, settlement_amount, platform_fee, trader_reward, accept_by
    FROM {{ typed_of(
        "payment_order",
        "payment_order.assigned",
        "payment_order.accepted",
        "payment_order.assignment_declined",
        "payment_order.assignment_expired",
        "payment_order.cancelled",
        "payment_order.completed",
        "payment_order.review_started",
    ) }}
),
w AS (  -- each event with the last boundary before it
    SELECT event_id, pos, kind, occurred_at, complete_by,
           last_value(CASE WHEN kind NOT IN ({{ ACCEPTED }}, {{ REVIEW }})
                           THEN {'event_id': event_id, 'open': kind = 'payment_order.assigned'} END
                      IGNORE NULLS)
               OVER (PARTITION BY aggregate_id ORDER BY pos, event_id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS b
    FROM o
),
g AS (  -- the events inside each attempt, by its `assigned`
    SELECT b.event_id AS assigned_event_id,
           arg_max({'event_id': event_id, 'at': occurred_at, 'complete_by': complete_by},
                   {'pos': pos, 'event_id': event_id}) FILTER (WHERE kind = {{ ACCEPTED }}) AS acc,
           arg_min({'event_id': event_id, 'pos': pos, 'kind': kind, 'at': occurred_at},
                   {'pos': pos, 'event_id': event_id})
               FILTER (WHERE kind NOT IN ({{ ACCEPTED }}, {{ REVIEW }})) AS fin,
           arg_min({'event_id': event_id, 'pos': pos}, {'pos': pos, 'event_id': event_id})
               FILTER (WHERE kind = {{ REVIEW }}) AS rv
    FROM w
    WHERE b.open
    GROUP BY b.event_id
)
SELECT
    a.aggregate_id AS order_id,
    a.attempt::INTEGER AS attempt,
    a.trader_id,
    a.rate,
    a.settlement_currency,
    a.settlement_amount::BIGINT AS settlement_amount,
    a.platform_fee::BIGINT AS platform_fee,
    a.trader_reward::BIGINT AS trader_reward,
    a.occurred_at AS assigned_at,
    a.accept_by::TIMESTAMPTZ AS accept_by,
    g.acc.at AS accepted_at,
    g.acc.complete_by::TIMESTAMPTZ AS complete_by,
    g.fin.at AS ended_at,
    CASE g.fin.kind
        WHEN 'payment_order.assignment_declined' THEN 'declined'
        WHEN 'payment_order.assignment_expired' THEN 'expired'
        WHEN 'payment_order.cancelled' THEN 'cancelled'
        WHEN 'payment_order.completed' THEN 'completed'
        WHEN 'payment_order.assigned' THEN 'superseded'
    END AS outcome,
    a.event_id AS assigned_event_id,
    a.pos AS assigned_pos,
    g.acc.event_id AS accepted_event_id,
    g.fin.event_id AS end_event_id,
    g.fin.pos AS end_pos,
    g.rv.event_id AS review_event_id,
    g.rv.pos AS review_pos
FROM (SELECT * FROM o WHERE kind = 'payment_order.assigned') a
LEFT JOIN g ON g.assigned_event_id = a.event_id
