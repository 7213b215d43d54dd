-- produces: ledger_held
-- reads: ledger_events
-- Every batch held (one `ledger_plan.batch_held` event), identified by its event's `ord`.
SELECT plan_id, ord, occurred_at, event_id, batch_id, postings, fresh
FROM ledger_events
WHERE is_held
