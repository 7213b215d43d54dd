-- check: REVIEW_OVERDUE
-- severity: low
-- reads: order_reviews
-- An order left in review longer than `review_overdue` (default 24 h; `--review-overdue HOURS`):
-- a review that ended later than that after it started (offending event: the event that took the
-- order out of review, then the `review_started`), or one still open at `ref_time`, the audit's
-- "now", older than that (offending event: the `review_started`). A review lasts from its
-- `review_started` to the order's next status event (`order_reviews`); exactly the threshold is
-- not overdue. Times are the events' `occurred_at`.
SELECT 'REVIEW_OVERDUE', 'payment_order:' || order_id, coalesce(end_event_id, start_event_id),
       list_filter([end_event_id, start_event_id], lambda x: x IS NOT NULL), NULL::BIGINT, NULL,
       format('review ({}) started {}, {} after {} h in review, past the {} h threshold',
              coalesce(reason, 'no reason'), strftime(started_at AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S'),
              CASE WHEN end_event_id IS NULL
                   THEN 'still open at ' || strftime({{ ref_time }} AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S')
                   ELSE 'ended by ' || end_kind END,
              round(epoch(coalesce(ended_at, {{ ref_time }}) - started_at) / 3600, 1),
              round(epoch({{ review_overdue }}) / 3600, 2)::DOUBLE)
FROM order_reviews
WHERE coalesce(ended_at, {{ ref_time }}) - started_at > {{ review_overdue }}
