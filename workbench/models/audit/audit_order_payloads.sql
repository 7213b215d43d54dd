-- produces: audit_order_payloads
-- reads: payload_payment_order, payload_receipt
-- The payload fields that four checks read of order and receipt events (typed once, at ingest):
-- `what` is `created` (`expires_at`), `completed` (`a`: `trader_id`), `resolved` (a dispute;
-- `a`: `outcome`) or `uploaded` (a receipt; `a`: `order_id`, `b`: `file_sha256`); the event is
-- its `row` in its typed table (its `rowid`: `payload_receipt` for `uploaded`,
-- `payload_payment_order` for the others).
SELECT row, CASE kind WHEN 'payment_order.created' THEN 'created'
                      WHEN 'payment_order.completed' THEN 'completed'
                      ELSE 'resolved' END AS what,
       aggregate_id, pos, occurred_at,
       CASE kind WHEN 'payment_order.completed' THEN trader_id
                 WHEN 'payment_order.dispute_resolved' THEN outcome END AS a,
       NULL::VARCHAR AS b,
       CASE WHEN kind = 'payment_order.created' THEN expires_at END AS expires_at
FROM {{ typed_of("payment_order", "payment_order.created", "payment_order.completed", "payment_order.dispute_resolved") }}
UNION ALL
SELECT row, 'uploaded', aggregate_id, pos, occurred_at, order_id, file_sha256, NULL
FROM {{ typed_of("receipt", "receipt.uploaded") }}
