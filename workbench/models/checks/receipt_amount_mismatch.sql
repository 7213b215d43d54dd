-- check: RECEIPT_AMOUNT_MISMATCH
-- severity: high
-- reads: events, payment_orders, receipts
-- An approved receipt whose amount or currency differs from its order's. The offending event is
-- the `receipt.approved` event (then the upload); `amount_delta` is the receipt's amount less the
-- order's.
WITH approved AS (  -- every approved receipt, with its approval
    SELECT r.*, e.event_id AS approved_event_id, e.pos AS approved_pos, u.event_id AS uploaded_event_id
    FROM receipts r
    JOIN {{ events_of("receipt.approved") }} e ON e.aggregate_id = r.receipt_id
    LEFT JOIN {{ events_of("receipt.uploaded") }} u ON u.aggregate_id = r.receipt_id
)
SELECT 'RECEIPT_AMOUNT_MISMATCH', 'receipt:' || r.receipt_id, r.approved_event_id,
       list_distinct([r.approved_event_id, r.uploaded_event_id]),
       TRY_CAST(r.amount::HUGEINT - o.amount AS BIGINT), o.currency,
       format('receipt approved for {} on order {} of {}',
              coalesce({{ money.text("r.amount", "r.currency") }}, 'no amount'), o.order_id,
              coalesce({{ money.text("o.amount", "o.currency") }}, 'no amount'))
FROM approved r JOIN payment_orders o ON o.order_id = r.order_id
WHERE r.amount IS DISTINCT FROM o.amount OR r.currency IS DISTINCT FROM o.currency
