-- produces: batch_end
-- reads: ledger_ends, ledger_held
-- How each held batch ended: at the first end after it, in the same plan, that lists its
-- batch_id, whatever the plan's status (a batch held after the plan ended stays held unless a
-- later end lists it). No row: the batch is still held. The postings' status, the account
-- book and the running balances all read this one rule.
SELECT h.ord AS held_ord, min(x.ord) AS end_ord, arg_min(x.is_commit, x.ord) AS is_commit,
    arg_min(x.outcome, x.ord) AS outcome, arg_min(x.fresh, x.ord) AS end_fresh
FROM ledger_held h
JOIN ledger_ends x
    ON x.plan_id = h.plan_id AND x.ord > h.ord AND list_contains(x.batch_ids, h.batch_id)
GROUP BY h.ord
