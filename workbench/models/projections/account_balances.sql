-- produces: account_balances
-- reads: ledger_postings
-- The account book: holding a batch adds each posting's amount to its `from` account's held;
-- ending it takes that back, and a commit moves `own` from `from` to `to`. So the accounts are
-- every `from` of a held posting (zero or not) and every `to` of a committed one, and the
-- figures follow from the batch's final status. Sums are exact (HUGEINT); a figure past int64
-- is NULL (the violations say which and why).
SELECT account, currency,
       TRY_CAST(own AS BIGINT) AS own,
       TRY_CAST(held AS BIGINT) AS held,
       TRY_CAST(own - held AS BIGINT) AS available
FROM ({% include 'account_sums.sql' %})
