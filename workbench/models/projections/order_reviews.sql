-- produces: order_reviews
-- reads: payload_payment_order
-- Every stay of an order in review (catalog 4; the fold's `payment_order.Review`): the
-- `review_started` that put it in `in_review`, and the event that took it out, the order's next
-- event that sets a status (every kind of the order but `receipt_attached`; `completed`,
-- `cancelled` or any other). A second `review_started` while in review starts nothing.
--
-- One sorted pass over the status events of each order that was ever reviewed, in the fold's
-- `(position, event_id)` order: a `review_started` starts a review unless the status event
-- before it was one too, and its end is the first status event after it that is not a
-- `review_started`. Only the orders reviewed are sorted (a small share). It reads the orders'
-- typed events (`payload_payment_order`, which an incremental apply narrows to the scope's
-- orders, all their events), not `ev`: the scan is of one stream's rows, not every event's.
WITH s AS (
    SELECT event_id, position AS pos, aggregate_id, kind, occurred_at, reason,
           lag(kind) OVER w AS before_kind,
           first_value(CASE WHEN kind <> 'payment_order.review_started'
                            THEN {'pos': position, 'event_id': event_id, 'kind': kind, 'at': occurred_at}
                       END IGNORE NULLS) OVER later AS nxt
    FROM payload_payment_order
    WHERE kind <> 'payment_order.receipt_attached'
      AND aggregate_id IN (SELECT aggregate_id FROM payload_payment_order
                           WHERE kind = 'payment_order.review_started')
    WINDOW w AS (PARTITION BY aggregate_id ORDER BY position, event_id),
           later AS (PARTITION BY aggregate_id ORDER BY position, event_id
                     ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
    QUALIFY kind = 'payment_order.review_started'
        AND before_kind IS DISTINCT FROM 'payment_order.review_started'
)
SELECT aggregate_id AS order_id, reason, event_id AS start_event_id, pos AS start_pos,
       occurred_at AS started_at, nxt.event_id AS end_event_id, nxt.kind AS end_kind,
       nxt.pos AS end_pos, nxt.at AS ended_at
FROM s
