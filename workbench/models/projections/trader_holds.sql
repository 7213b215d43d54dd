-- produces: trader_holds
-- reads: trader_events
-- The last hold event of each trader and `ref`. The catalog keeps one hold per ref ("held: sum
-- of open holds by ref"): a hold is open when the last hold event on its ref places it (placing
-- twice keeps the last amount; a release or a capture ends the ref whatever its amount). This
-- is the one definition of an open hold: the traders projection, HOLD_LEAK and the live
-- stream's carried-forward traders read it.
SELECT aggregate_id AS trader_id, j.ref AS ref,
       arg_max(kind, ord) AS last_kind,
       arg_max_null(j.amount, ord) AS amount
FROM trader_events
WHERE kind IN ({{ HOLD_KINDS }})
GROUP BY aggregate_id, j.ref
