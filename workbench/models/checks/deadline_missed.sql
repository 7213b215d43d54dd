-- check: DEADLINE_MISSED
-- severity: low
-- reads: audit_attempts, audit_order_payloads, events, payload_payment_order
-- A deadline the platform let pass: an acceptance after `accept_by` (offending event: the late
-- acceptance; an attempt's acceptance is its latest, as the fold and `order_attempts` keep it,
-- where an illegal second one came); an attempt in progress past `complete_by` (plus the scheduler's sweep, `GRACE`)
-- with no review (the event that ended the attempt, or its acceptance); an order still pending or
-- assigned past `expires_at` plus the sweep (the event that finally took it out of
-- pending/assigned, or its creation if nothing did). Deadlines still open are judged at
-- `ref_time`, the audit's "now" (`--as-of`, or the latest `recorded_at` inside the era).
WITH late_accept AS (
    SELECT 'payment_order:' || order_id AS subject, accepted_event_id AS event_id,
           [accepted_event_id, assigned_event_id] AS evidence,
           format('attempt {} accepted at {}, after accept_by {}', attempt, accepted_at, accept_by) AS detail
    FROM audit_attempts WHERE accepted_at > accept_by
),
no_review AS (
    SELECT 'payment_order:' || order_id, coalesce(end_event_id, accepted_event_id),
           list_filter([end_event_id, accepted_event_id], lambda x: x IS NOT NULL),
           CASE WHEN end_event_id IS NULL
                THEN format('attempt {} still in progress at {}, past complete_by {}, with no review', attempt, {{ ref_time }}, complete_by)
                ELSE format('attempt {} in progress until {}, past complete_by {}, with no review', attempt, ended_at, complete_by) END
    FROM audit_attempts
    WHERE accepted_event_id IS NOT NULL AND review_event_id IS NULL AND complete_by IS NOT NULL
      AND coalesce(ended_at, {{ ref_time }}) > complete_by + {{ GRACE }}
),
o AS (
    SELECT aggregate_id AS order_id, row AS created_row, expires_at
    FROM audit_order_payloads WHERE what = 'created'
),
left_at AS (  -- the first event that took each order out of pending/assigned for good
    SELECT aggregate_id AS order_id, arg_min(event_id, pos) AS event_id, min(occurred_at) AS at
    FROM {{ events_of("payment_order.accepted", "payment_order.cancelled") }}
    GROUP BY aggregate_id
),
late AS (
    SELECT o.*, l.event_id AS left_event_id, l.at FROM o LEFT JOIN left_at l USING (order_id)
    WHERE coalesce(l.at, {{ ref_time }}) > o.expires_at + {{ GRACE }}
),
expiry AS (
    SELECT 'payment_order:' || o.order_id, coalesce(o.left_event_id, c.event_id),
           list_filter([o.left_event_id, c.event_id], lambda x: x IS NOT NULL),
           CASE WHEN o.left_event_id IS NULL
                THEN format('still pending or assigned at {}, past expires_at {}', {{ ref_time }}, o.expires_at)
                ELSE format('left pending or assigned only at {}, past expires_at {}', o.at, o.expires_at) END
    FROM late o JOIN payload_payment_order c ON c.rowid = o.created_row
)
SELECT 'DEADLINE_MISSED', subject, event_id, evidence, NULL::BIGINT, NULL, detail FROM (
    SELECT subject, event_id, evidence, detail FROM late_accept
    UNION ALL SELECT * FROM no_review
    UNION ALL SELECT * FROM expiry
) AS t(subject, event_id, evidence, detail)
