-- produces: receipts
-- reads: ev, payload_receipt
-- One row per receipt: its upload, the analysis and the decision (the last event of each kind;
-- every receipt event sets the status named by its kind). `confidence` is exact for the
-- catalog's values: the decoder admits at most six decimals and DECIMAL(18,6) holds them.
WITH r AS (
    SELECT aggregate_id, ord, seq, kind, occurred_at,
        j
    FROM {{ typed("receipt") }}
)
SELECT
    aggregate_id AS receipt_id,
    arg_max_null(j.order_id, ord) FILTER (WHERE kind = 'receipt.uploaded') AS order_id,
    arg_max_null(j.trader_id, ord) FILTER (WHERE kind = 'receipt.uploaded') AS trader_id,
    coalesce(arg_max_null(j.amount, ord) FILTER (WHERE kind = 'receipt.uploaded'), 0)::BIGINT
        AS amount,
    arg_max_null(j.currency, ord) FILTER (WHERE kind = 'receipt.uploaded') AS currency,
    (arg_max_null(j.paid_at, ord) FILTER (WHERE kind = 'receipt.uploaded'))::TIMESTAMPTZ
        AS paid_at,
    arg_max_null(j.bank, ord) FILTER (WHERE kind = 'receipt.uploaded') AS bank,
    arg_max_null(j.file_sha256, ord) FILTER (WHERE kind = 'receipt.uploaded') AS file_sha256,
    split_part(arg_max(kind, ord), '.', 2) AS status,
    arg_max(occurred_at, ord) FILTER (WHERE kind = 'receipt.uploaded') AS uploaded_at,
    arg_max_null(j.extracted_amount, ord) FILTER (WHERE kind = 'receipt.analyzed')::BIGINT
        AS extracted_amount,
    (arg_max_null(j.extracted_paid_at, ord) FILTER (WHERE kind = 'receipt.analyzed'))::TIMESTAMPTZ
        AS extracted_paid_at,
    (arg_max_null(j.confidence, ord) FILTER (WHERE kind = 'receipt.analyzed'))::DECIMAL(18, 6)
        AS confidence,
    coalesce(
        arg_max_null(j.flags, ord) FILTER (WHERE kind = 'receipt.analyzed'), []::VARCHAR[]
    ) AS flags,
    arg_max(occurred_at, ord) FILTER (WHERE kind = 'receipt.analyzed') AS analyzed_at,
    arg_max_null(j.by, ord) FILTER (WHERE kind = 'receipt.approved') AS approved_by,
    arg_max_null(j.reason, ord) FILTER (WHERE kind = 'receipt.rejected') AS reject_reason,
    arg_max(occurred_at, ord) FILTER (WHERE kind IN ('receipt.approved', 'receipt.rejected'))
        AS decided_at,
    max(seq)::INTEGER AS version
FROM r
GROUP BY aggregate_id
