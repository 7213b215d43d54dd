-- produces: ledger_events
-- reads: ev, payload_ledger_plan
-- The ledger_plan stream, each payload typed once: held batches with their postings, plan ends
-- (commit or rollback) with the batches they list. Every ledger projection and rule reads it.
SELECT aggregate_id AS plan_id, ord, seq, occurred_at, event_id, kind, fresh,
    kind = 'ledger_plan.batch_held' AS is_held,
    kind = 'ledger_plan.committed' AS is_commit,
    CASE kind WHEN 'ledger_plan.committed' THEN 'committed'
              WHEN 'ledger_plan.rolled_back' THEN 'rolled_back' END AS outcome,
    j.batch_id, j.batch_ids, j.postings
FROM (
    SELECT aggregate_id, ord, seq, occurred_at, event_id, kind, fresh, j
    FROM {{ typed("ledger_plan") }}
)
