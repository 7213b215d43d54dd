-- produces: ledger_plans
-- reads: batch_end, ledger_events, ledger_held
-- One row per ledger plan. Its status is its first end event's outcome (even one before any
-- batch); `ended_at` / `end_event_id` are that event's only if a batch was held before it (the
-- fold ends a plan only from `held`). A batch's end is `batch_end`'s.
WITH batches AS (
    SELECT h.plan_id,
           count(*) AS batches,
           count(*) FILTER (WHERE be.outcome IS NULL) AS open_batches,
           sum(len(h.postings)) AS postings
    FROM ledger_held h
    LEFT JOIN batch_end be ON be.held_ord = h.ord
    GROUP BY h.plan_id
),
plan AS (
    SELECT
        plan_id,
        min(ord) FILTER (WHERE is_held) AS first_held,
        min(ord) FILTER (WHERE NOT is_held) AS first_end,
        arg_min(outcome, ord) FILTER (WHERE NOT is_held) AS first_outcome,
        arg_min(occurred_at, ord) FILTER (WHERE NOT is_held) AS first_end_at,
        arg_min(event_id, ord) FILTER (WHERE NOT is_held) AS first_end_event_id,
        arg_min(occurred_at, ord) FILTER (WHERE is_held) AS created_at,
        max(seq) AS version
    FROM ledger_events
    GROUP BY plan_id
)
SELECT
    plan.plan_id,
    coalesce(plan.first_outcome, 'held') AS status,
    coalesce(b.batches, 0)::INTEGER AS batches,
    coalesce(b.open_batches, 0)::INTEGER AS open_batches,
    coalesce(b.postings, 0)::INTEGER AS postings,
    plan.created_at,
    CASE WHEN plan.first_held < plan.first_end THEN plan.first_end_at END AS ended_at,
    CASE WHEN plan.first_held < plan.first_end THEN plan.first_end_event_id END AS end_event_id,
    plan.version::INTEGER AS version
FROM plan
LEFT JOIN batches b ON b.plan_id = plan.plan_id
