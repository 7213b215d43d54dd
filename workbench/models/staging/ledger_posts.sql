-- produces: ledger_posts
-- reads: ledger_held
-- Every posting of every held batch, numbered within its batch from 0.
SELECT plan_id, batch_id, ord, occurred_at, event_id, fresh,
    posting_index, post."from" AS from_account, post."to" AS to_account,
    post.amount AS amount, post.currency AS currency, post.description AS description
FROM (
    SELECT plan_id, batch_id, ord, occurred_at, event_id, fresh,
        unnest(postings) AS post, generate_subscripts(postings, 1) - 1 AS posting_index
    FROM ledger_held
)
