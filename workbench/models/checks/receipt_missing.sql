-- check: RECEIPT_MISSING
-- severity: high
-- reads: events, payment_orders, receipts
-- A payout order completed with no receipt approved before it. The offending event is the
-- `completed` event.
WITH c AS (
    SELECT e.event_id, e.pos, e.aggregate_id AS order_id
    FROM {{ events_of("payment_order.completed") }} e
    JOIN payment_orders o ON o.order_id = e.aggregate_id AND o.direction = 'payout'
),
approved AS (  -- every approved receipt, with its approval
    SELECT r.*, e.event_id AS approved_event_id, e.pos AS approved_pos, u.event_id AS uploaded_event_id
    FROM receipts r
    JOIN {{ events_of("receipt.approved") }} e ON e.aggregate_id = r.receipt_id
    LEFT JOIN {{ events_of("receipt.uploaded") }} u ON u.aggregate_id = r.receipt_id
),
ok AS (
    SELECT DISTINCT c.event_id FROM c JOIN approved r ON r.order_id = c.order_id AND r.approved_pos < c.pos
)
SELECT 'RECEIPT_MISSING', 'payment_order:' || order_id, event_id, [event_id], NULL::BIGINT, NULL,
       'payout order completed with no approved receipt before it'
FROM c WHERE event_id NOT IN (SELECT event_id FROM ok)
