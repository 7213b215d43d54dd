-- produces: prior_holds
-- reads: scope, trader_holds
-- Every stored hold ref (`trader_holds`) of the traders a batch touches: the hold rules and the
-- open holds run on from them. Empty in a full build.
SELECT * FROM trader_holds
WHERE trader_id IN (SELECT aggregate_id FROM scope WHERE stream = 'trader')
