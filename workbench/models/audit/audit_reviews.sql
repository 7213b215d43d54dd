-- produces: audit_reviews
-- reads: payload_payment_order
-- Every review of an order: the `review_started` that put it in `in_review`, and the event that
-- took it out (the order's next event that sets a status: `completed`, `cancelled`, or any
-- other; a `receipt_attached` keeps it in review, and a second `review_started` while in review
-- starts nothing). `end_*` is NULL for a review still open. REVIEW_OVERDUE, REVIEW_SKIPPED and
-- `workbench.audit.review_times` read it, so "in review" is defined once.
--
-- One sorted pass over the status events of each order that was ever reviewed in `(position, event_id)` order: a
-- `review_started` starts a review unless the status event before it was one too, and its end is
-- the first status event after it that is not a `review_started`.
WITH s AS (
    SELECT event_id, pos, aggregate_id, kind, occurred_at, reason,
           lag(kind) OVER w AS before_kind,
           first_value(CASE WHEN kind <> 'payment_order.review_started'
                            THEN {'pos': pos, 'event_id': event_id, 'kind': kind, 'at': occurred_at}
                       END IGNORE NULLS) OVER later AS nxt
    FROM {{ typed_of(
        "payment_order",
        "payment_order.created",
        "payment_order.assigned",
        "payment_order.accepted",
        "payment_order.assignment_declined",
        "payment_order.assignment_expired",
        "payment_order.review_started",
        "payment_order.completed",
        "payment_order.cancelled",
        "payment_order.disputed",
        "payment_order.dispute_resolved",
    ) }}
    WHERE aggregate_id IN (  -- only orders ever reviewed: a small share, so the sort is small
        SELECT aggregate_id FROM {{ typed_of("payment_order", "payment_order.review_started") }}
    )
    WINDOW w AS (PARTITION BY aggregate_id ORDER BY pos, event_id),
           later AS (PARTITION BY aggregate_id ORDER BY pos, event_id
                     ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
    QUALIFY kind = 'payment_order.review_started'
        AND before_kind IS DISTINCT FROM 'payment_order.review_started'
)
SELECT aggregate_id AS order_id, reason, event_id AS start_event_id, pos AS start_pos,
       occurred_at AS started_at, nxt.event_id AS end_event_id, nxt.kind AS end_kind,
       nxt.pos AS end_pos, nxt.at AS ended_at
FROM s
