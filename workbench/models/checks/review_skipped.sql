-- check: REVIEW_SKIPPED
-- severity: high
-- reads: audit_reviews, payload_payment_order, payload_receipt, payment_orders, receipts
-- An order completed although a receipt of it was doubtful and the order was never in review
-- between that receipt's analysis and the completion (catalog 4: a receipt with `confidence`
-- below `REVIEW_CONFIDENCE`, or whose amount or currency, or extracted amount, differs from the
-- order's, sends the order to `in_review`; the domain's `review_reason`). The order counts as
-- reviewed if a review of it (`audit_reviews`) started after the analysis, or was open at it. An
-- analysis is judged at the order's first completion after it. Offending event: the `completed`;
-- then each doubtful `receipt.analyzed` and its `receipt.uploaded`. `amount_delta` is the order's
-- amount: the money paid out on a proof nobody checked.
WITH r AS (
    SELECT kind, event_id, pos, aggregate_id AS receipt_id, confidence, extracted_amount
    FROM {{ typed_of("receipt", "receipt.uploaded", "receipt.analyzed") }}
),
up AS (
    SELECT receipt_id, arg_min(event_id, pos) AS uploaded_event_id
    FROM r WHERE kind = 'receipt.uploaded' GROUP BY receipt_id
),
judged AS (  -- each analysis, with why it made a review due (NULL: it did not)
    SELECT a.event_id, a.pos, rc.order_id, up.uploaded_event_id,
           CASE WHEN a.confidence < {{ REVIEW_CONFIDENCE }}
                THEN format('confidence {} < {}', regexp_replace(a.confidence::VARCHAR, '\.?0+$', ''),
                            regexp_replace(({{ REVIEW_CONFIDENCE }})::VARCHAR, '\.?0+$', ''))
                WHEN rc.amount <> o.amount OR rc.currency <> o.currency
                THEN format('receipt amount {} ≠ order {}', {{ money.text("rc.amount", "rc.currency") }},
                            {{ money.text("o.amount", "o.currency") }})
                WHEN a.extracted_amount <> o.amount
                THEN format('extracted amount {} ≠ order {}', {{ money.text("a.extracted_amount", "o.currency") }},
                            {{ money.text("o.amount", "o.currency") }})
           END AS why,
           'receipt ' || rc.receipt_id || ': ' AS what
    FROM r a
    JOIN receipts rc ON rc.receipt_id = a.receipt_id
    LEFT JOIN payment_orders o ON o.order_id = rc.order_id
    LEFT JOIN up ON up.receipt_id = a.receipt_id
    WHERE a.kind = 'receipt.analyzed'
),
doubt AS (SELECT * FROM judged WHERE why IS NOT NULL),
c AS (  -- each completion, with the order's completion before it
    SELECT event_id, pos, aggregate_id AS order_id,
           lag(pos) OVER (PARTITION BY aggregate_id ORDER BY pos, event_id) AS prev_pos
    FROM {{ typed_of("payment_order", "payment_order.completed") }}
    WHERE aggregate_id IN (SELECT order_id FROM doubt)
),
skipped AS (
    SELECT c.event_id AS completed_event_id, c.order_id, d.pos, d.event_id AS analyzed_event_id,
           d.uploaded_event_id, d.what || d.why AS why
    FROM c JOIN doubt d ON d.order_id = c.order_id AND d.pos < c.pos
                       AND d.pos > coalesce(c.prev_pos, -1)
    WHERE NOT EXISTS (
        SELECT 1 FROM audit_reviews v
        WHERE v.order_id = c.order_id AND v.start_pos < c.pos
          AND coalesce(v.end_pos, {{ NEVER }}) > d.pos
    )
)
SELECT 'REVIEW_SKIPPED', 'payment_order:' || s.order_id, s.completed_event_id,
       [s.completed_event_id] || list_filter(flatten(list([s.analyzed_event_id, s.uploaded_event_id] ORDER BY s.pos)),
                                             lambda x: x IS NOT NULL),
       any_value(o.amount), any_value(o.currency),
       'completed with no review after ' || string_agg(s.why, '; ' ORDER BY s.pos)
FROM skipped s LEFT JOIN payment_orders o ON o.order_id = s.order_id
GROUP BY s.completed_event_id, s.order_id
