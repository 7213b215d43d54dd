-- produces: audit_attempts
-- reads: payload_payment_order
-- Each assignment attempt with the events that opened, accepted and ended it (the first ender
-- after the assignment, or the next assignment, which supersedes it). Most checks read it, so the
-- audit computes it once, as a temp table.
--
-- One sorted pass over each order's events (in `(position, event_id)` order): for every
-- assignment, the first boundary (an assignment or an ender), the first acceptance and the first
-- review after it, each a `first_value(... IGNORE NULLS)` over the rows that follow; the
-- acceptance and the review count only when they come before that boundary. The three share one
-- window, so the events are sorted once (range joins per attempt cost twice as much). The
-- payload fields are the typed ones (`payload_payment_order`, decoded once at ingest).
WITH o AS (
    SELECT event_id, pos, aggregate_id, kind, occurred_at,
           kind NOT IN ('payment_order.accepted', 'payment_order.review_started') AS boundary,
           CASE WHEN kind = 'payment_order.assigned'
                THEN {'attempt': attempt, 'trader_id': trader_id, 'rate': rate,
                      'settlement_currency': settlement_currency, 'accept_by': accept_by,
                      'settlement_amount': settlement_amount, 'trader_reward': trader_reward,
                      'platform_fee': platform_fee} END AS f,
           CASE WHEN kind = 'payment_order.accepted' THEN complete_by END AS complete_by
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
nxt AS (  -- per assignment: the next boundary, acceptance and review (whenever they come)
    SELECT *,
           first_value(CASE WHEN boundary
                            THEN {'pos': pos, 'event_id': event_id, 'kind': kind, 'at': occurred_at}
                       END IGNORE NULLS) OVER w AS nb,
           first_value(CASE WHEN kind = 'payment_order.accepted'
                            THEN {'pos': pos, 'event_id': event_id, 'at': occurred_at, 'complete_by': complete_by}
                       END IGNORE NULLS) OVER w AS na,
           first_value(CASE WHEN kind = 'payment_order.review_started'
                            THEN {'pos': pos, 'event_id': event_id}
                       END IGNORE NULLS) OVER w AS nr
    FROM o
    WINDOW w AS (PARTITION BY aggregate_id ORDER BY pos, event_id
                 ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
    QUALIFY kind = 'payment_order.assigned'
),
att AS (  -- the acceptance and the review belong to this attempt only if before its end
    SELECT *, CASE WHEN na.pos < coalesce(nb.pos, {{ NEVER }}) THEN na END AS acc,
              CASE WHEN nr.pos < coalesce(nb.pos, {{ NEVER }}) THEN nr END AS rv
    FROM nxt
)
SELECT aggregate_id AS order_id, f.attempt::INTEGER AS attempt,
       f.trader_id, event_id AS assigned_event_id, pos AS assigned_pos,
       f.rate, f.settlement_currency,
       occurred_at AS assigned_at, f.accept_by,
       f.settlement_amount::BIGINT AS settlement_amount,
       f.trader_reward::BIGINT AS trader_reward,
       f.platform_fee::BIGINT AS platform_fee,
       nb.pos AS end_pos, nb.event_id AS end_event_id, nb.kind AS end_kind, nb.at AS ended_at,
       acc.event_id AS accepted_event_id, acc.at AS accepted_at, acc.complete_by AS complete_by,
       rv.event_id AS review_event_id, rv.pos AS review_pos
FROM att
