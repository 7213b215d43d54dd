-- check: RECEIPT_REUSED
-- severity: high
-- reads: audit_order_payloads, payload_receipt
-- One receipt file (`file_sha256`) used for a second order. The offending event is the later
-- `receipt.uploaded`, then the first upload of that file.
WITH u AS (
    SELECT row, pos, aggregate_id AS receipt_id, a AS order_id, b AS sha
    FROM audit_order_payloads WHERE what = 'uploaded'
),
first AS (SELECT sha, arg_min(row, pos) AS first_row, arg_min(order_id, pos) AS first_order FROM u GROUP BY sha),
reused AS (
    SELECT u.*, f.first_row, f.first_order FROM u JOIN first f USING (sha)
    WHERE u.order_id <> f.first_order AND u.row <> f.first_row
),
ids AS (  -- the ids of the few events involved
    SELECT rowid AS row, event_id FROM payload_receipt
    WHERE rowid IN (SELECT row FROM reused UNION ALL SELECT first_row FROM reused)
)
SELECT 'RECEIPT_REUSED', 'receipt:' || r.receipt_id, e.event_id, [e.event_id, f.event_id],
       NULL::BIGINT, NULL,
       format('file {} already proved order {}; used again for order {}', r.sha, r.first_order, r.order_id)
FROM reused r JOIN ids e ON e.row = r.row JOIN ids f ON f.row = r.first_row
