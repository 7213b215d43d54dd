-- produces: prior_traders
-- reads: scope, trader_exact, traders
-- The stored rows of the traders a batch touches (its own trader events, or its orders' traders
-- before and after it), with their exact deposit balance (`trader_exact` where the row holds
-- NULL because it is past int64). A trader lives as long as the platform, so the traders model
-- and the trader rules run on from this row with the batch's events instead of reading the
-- trader's whole history. A full build runs the same models with this table empty.
SELECT t.*, coalesce(x.balance, t.deposit_balance::HUGEINT) AS exact_balance
FROM traders t
LEFT JOIN trader_exact x ON x.trader_id = t.trader_id
WHERE t.trader_id IN (SELECT aggregate_id FROM scope WHERE stream = 'trader')
