-- produces: audit_order_payloads
-- reads: events
-- The payload fields that four checks read of order and receipt events, parsed in one scan:
-- `what` is `created` (`a`: `expires_at`), `completed` (`a`: `trader_id`), `resolved` (a
-- dispute; `a`: `outcome`) or `uploaded` (a receipt; `a`: `order_id`, `b`: `file_sha256`); the
-- event is its `row` in `events` (its `rowid`).
SELECT row, what, aggregate_id, pos, occurred_at, f[1] AS a, f[2] AS b
FROM (
    SELECT row, aggregate_id, pos, occurred_at,
           CASE kind WHEN 'payment_order.created' THEN 'created'
                     WHEN 'payment_order.completed' THEN 'completed'
                     WHEN 'payment_order.dispute_resolved' THEN 'resolved' ELSE 'uploaded' END AS what,
           CASE kind WHEN 'payment_order.created' THEN [payload->>'expires_at']
                     WHEN 'payment_order.completed' THEN [payload->>'trader_id']
                     WHEN 'payment_order.dispute_resolved' THEN [payload->>'outcome']
                     ELSE json_extract_string(payload, ['$.order_id', '$.file_sha256']) END AS f
    FROM {{ events_of(
        "payment_order.created",
        "payment_order.completed",
        "payment_order.dispute_resolved",
        "receipt.uploaded",
    ) }}
)
