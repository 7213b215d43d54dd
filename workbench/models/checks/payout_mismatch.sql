-- check: PAYOUT_MISMATCH
-- severity: high
-- reads: events, ledger_plans, payouts
-- A payout whose plan ended the wrong way for its status (offending event: the payout's last
-- event); a cancel after confirmation with no committed `revert:` plan (the cancel); a payout
-- with the same owner, amount, currency and destination as one created at most 10 minutes before
-- (the later `payout.created`). `amount_delta` is the payout's amount.
WITH p AS (
    SELECT po.*, c.event_id AS created_event_id, c.pos AS created_pos, c.occurred_at AS created_occ,
           pl.status AS plan_status, pl.end_event_id AS plan_end_event_id,
           rv.status AS revert_status,
           x.event_id AS end_event_id
    FROM payouts po
    LEFT JOIN {{ events_of("payout.created") }} c ON c.aggregate_id = po.payout_id
    LEFT JOIN ledger_plans pl ON pl.plan_id = po.plan_id
    LEFT JOIN ledger_plans rv ON rv.plan_id = 'revert:' || po.plan_id
    LEFT JOIN (SELECT aggregate_id, arg_max(event_id, pos) AS event_id
               FROM {{ events_of("payout.confirmed", "payout.cancelled", "payout.failed", "payout.paid") }} GROUP BY ALL) x
           ON x.aggregate_id = po.payout_id
),
plan_state AS (
    SELECT 'payout:' || payout_id, coalesce(end_event_id, created_event_id),
           list_filter([end_event_id, plan_end_event_id, created_event_id], lambda v: v IS NOT NULL),
           amount, currency,
           format('payout {} but its plan {} is {}', status, plan_id, coalesce(plan_status, 'missing'))
    FROM p
    WHERE plan_status IS DISTINCT FROM 'held' AND NOT (
        (status IN ('unpaid', 'paid') AND plan_status = 'held')
        OR (status = 'confirmed' AND plan_status = 'committed')
        OR (status = 'failed' AND plan_status = 'rolled_back')
        OR (status = 'cancelled' AND cancelled_from = 'confirmed' AND plan_status = 'committed')
        OR (status = 'cancelled' AND cancelled_from IS DISTINCT FROM 'confirmed' AND plan_status = 'rolled_back'))
),
revert AS (
    SELECT 'payout:' || payout_id, end_event_id, [end_event_id, created_event_id], amount, currency,
           format('cancelled after confirmation but revert plan {} is {}', 'revert:' || plan_id,
                  coalesce(revert_status, 'missing'))
    FROM p WHERE status = 'cancelled' AND cancelled_from = 'confirmed'
      AND revert_status IS DISTINCT FROM 'committed'
),
dup AS (
    SELECT 'payout:' || b.payout_id, b.created_event_id, [b.created_event_id, a.created_event_id],
           b.amount, b.currency,
           format('same owner {}, amount {} and destination {} as payout {} created {} s earlier',
                  b.owner, {{ money.text("b.amount", "b.currency") }}, b.destination_masked, a.payout_id,
                  epoch(b.created_occ) - epoch(a.created_occ))
    FROM p a JOIN p b ON a.owner = b.owner AND a.amount = b.amount AND a.currency = b.currency
         AND a.destination_masked = b.destination_masked AND a.created_pos < b.created_pos
         AND b.created_occ - a.created_occ <= INTERVAL 10 MINUTE
    QUALIFY row_number() OVER (PARTITION BY b.payout_id ORDER BY a.created_pos DESC) = 1
)
SELECT 'PAYOUT_MISMATCH', * FROM (
    SELECT * FROM plan_state UNION ALL SELECT * FROM revert UNION ALL SELECT * FROM dup
)
