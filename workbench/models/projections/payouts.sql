-- produces: payouts
-- reads: ev, payload_payout
-- One row per payout. Its status is set by every event; a cancel remembers the status it came
-- from, the status set by the event just before it in the payout's own order.
WITH x AS (
    SELECT aggregate_id, ord, seq, kind, occurred_at,
        j,
        CASE kind WHEN 'payout.created' THEN 'unpaid' ELSE split_part(kind, '.', 2) END
            AS status_after
    FROM {{ typed("payout") }}
),
y AS (
    SELECT *, lag(status_after) OVER (PARTITION BY aggregate_id ORDER BY ord) AS status_before
    FROM x
)
SELECT
    aggregate_id AS payout_id,
    arg_max_null(j.owner, ord) FILTER (WHERE kind = 'payout.created') AS owner,
    coalesce(arg_max_null(j.amount, ord) FILTER (WHERE kind = 'payout.created'), 0)::BIGINT
        AS amount,
    coalesce(arg_max_null(j.fee, ord) FILTER (WHERE kind = 'payout.created'), 0)::BIGINT AS fee,
    arg_max_null(j.currency, ord) FILTER (WHERE kind = 'payout.created') AS currency,
    arg_max_null(j.destination_masked, ord) FILTER (WHERE kind = 'payout.created')
        AS destination_masked,
    arg_max_null(j.plan_id, ord) FILTER (WHERE kind = 'payout.created') AS plan_id,
    arg_max(status_after, ord) AS status,
    arg_max_null(j.bank_ref, ord) FILTER (WHERE kind = 'payout.paid') AS bank_ref,
    arg_max(occurred_at, ord) FILTER (WHERE kind = 'payout.created') AS created_at,
    arg_max(occurred_at, ord) FILTER (WHERE kind = 'payout.paid') AS paid_at,
    arg_max(occurred_at, ord) FILTER (WHERE kind = 'payout.confirmed') AS confirmed_at,
    arg_max(occurred_at, ord) FILTER (WHERE kind IN ('payout.cancelled', 'payout.failed'))
        AS ended_at,
    arg_max_null(status_before, ord) FILTER (WHERE kind = 'payout.cancelled') AS cancelled_from,
    arg_max_null(CASE kind WHEN 'payout.cancelled' THEN j.details ELSE j.error END, ord)
        FILTER (WHERE kind IN ('payout.cancelled', 'payout.failed')) AS details,
    max(seq)::INTEGER AS version
FROM y
GROUP BY aggregate_id
