-- produces: batch_trader_holds
-- reads: batch_traders
-- The last hold event of each (trader, ref) the batch touches: `trader_holds`' rule over the
-- batch's events, which come after every stored one.
SELECT aggregate_id AS trader_id, j.ref AS ref, arg_max(kind, ord) AS last_kind,
    arg_max_null(j.amount, ord) AS amount
FROM batch_traders
WHERE kind IN ({{ HOLD_KINDS }})
GROUP BY aggregate_id, j.ref
