-- produces: prior_holds
-- reads: payload_trader, scope, trader_holds
-- The stored hold refs (`trader_holds`) of the traders a batch touches that it can change or
-- that count: the open ones (their sum is the trader's held figure) and those its hold events
-- name (`payload_trader` holds the scope's typed trader events here: the batch's own). The hold
-- rules and the open holds run on from them; a closed ref the batch does not name keeps its
-- stored row, which a run from it would only write again. Empty in a full build.
SELECT * FROM trader_holds
WHERE trader_id IN (SELECT aggregate_id FROM scope WHERE stream = 'trader')
    AND (last_kind = 'trader.hold_placed'
        OR ref IN (SELECT ref FROM payload_trader WHERE kind IN ({{ HOLD_KINDS }})))
