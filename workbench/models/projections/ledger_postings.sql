-- produces: ledger_postings
-- reads: batch_end, ledger_posts
-- Every posting, with the status of its batch (`batch_end`: committed, rolled back, or still
-- held).
SELECT
    p.plan_id,
    p.batch_id,
    p.posting_index::INTEGER AS posting_index,
    p.from_account,
    p.to_account,
    p.amount,
    p.currency,
    p.description,
    p.occurred_at AS held_at,
    coalesce(be.outcome, 'held') AS batch_status,
    p.event_id AS held_event_id
FROM ledger_posts p
LEFT JOIN batch_end be ON be.held_ord = p.ord
