-- check: REVIEW_SKIPPED
-- severity: high
-- reads: order_reviews, payload_payment_order, payload_receipt, payment_orders, receipts
-- An order completed although a receipt of it was doubtful and the order was never in review
-- between that receipt's analysis and the completion (catalog 4: a receipt with `confidence`
-- below `REVIEW_CONFIDENCE`, or whose amount or currency, or extracted amount, differs from the
-- order's, sends the order to `in_review`; the domain's `review_reason`). The order counts as
-- reviewed if a review of it (`order_reviews`) started after the analysis, or was open at it. An
-- analysis is judged at the order's first completion after it. Offending event: the `completed`;
-- then each doubtful `receipt.analyzed` and its `receipt.uploaded`. `amount_delta` is the order's
-- amount: the money paid out on a proof nobody checked.
WITH a AS (  -- every analysis, with why it made a review due, tested first without words
    SELECT p.event_id, p.pos, rc.receipt_id, rc.order_id, p.confidence, p.extracted_amount,
           rc.amount AS receipt_amount, rc.currency AS receipt_currency,
           o.amount AS order_amount, o.currency AS order_currency
    FROM {{ typed_of("receipt", "receipt.analyzed") }} p
    JOIN receipts rc ON rc.receipt_id = p.aggregate_id
    LEFT JOIN payment_orders o ON o.order_id = rc.order_id
    WHERE p.confidence < {{ REVIEW_CONFIDENCE }}
       OR rc.amount <> o.amount OR rc.currency <> o.currency OR p.extracted_amount <> o.amount
),
doubt AS (  -- the few doubtful analyses, with their upload and the reason in words
    SELECT a.event_id, a.pos, a.order_id, up.uploaded_event_id,
           CASE WHEN a.confidence < {{ REVIEW_CONFIDENCE }}
                THEN format('confidence {} < {}', regexp_replace(a.confidence::VARCHAR, '\.?0+$', ''),
                            regexp_replace(({{ REVIEW_CONFIDENCE }})::VARCHAR, '\.?0+$', ''))
                WHEN a.receipt_amount <> a.order_amount OR a.receipt_currency <> a.order_currency
                THEN format('receipt amount {} ≠ order {}', {{ money.text("a.receipt_amount", "a.receipt_currency") }},
                            {{ money.text("a.order_amount", "a.order_currency") }})
                ELSE format('extracted amount {} ≠ order {}', {{ money.text("a.extracted_amount", "a.order_currency") }},
                            {{ money.text("a.order_amount", "a.order_currency") }})
           END AS why,
           'receipt ' || a.receipt_id || ': ' AS what
    FROM a
    LEFT JOIN (SELECT aggregate_id AS receipt_id, arg_min(event_id, pos) AS uploaded_event_id
               FROM {{ typed_of("receipt", "receipt.uploaded") }}
               WHERE aggregate_id IN (SELECT receipt_id FROM a) GROUP BY ALL) up USING (receipt_id)
),
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
        SELECT 1 FROM order_reviews v
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
