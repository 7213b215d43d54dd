-- produces: ledger_ends
-- reads: ledger_events
-- Every plan end (commit or rollback) with the batches it lists.
SELECT plan_id, ord, event_id, kind, is_commit, outcome, batch_ids, fresh
FROM ledger_events
WHERE NOT is_held
