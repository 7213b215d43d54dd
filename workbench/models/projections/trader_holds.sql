-- produces: trader_holds
-- reads: prior_holds, trader_events
-- The last hold event of each trader and `ref`. The catalog keeps one hold per ref ("held: sum
-- of open holds by ref"): a hold is open when the last hold event on its ref places it (placing
-- twice keeps the last amount; a release or a capture ends the ref whatever its amount). This
-- is the one definition of an open hold: the traders projection and HOLD_LEAK read it. Runs
-- on from `prior_holds` (empty in a full build; a batch's traders' stored refs when the live
-- stream appends), which come before every event.
SELECT trader_id, ref, arg_max(last_kind, ord) AS last_kind, arg_max_null(amount, ord) AS amount
FROM (
    SELECT trader_id, ref, last_kind, amount, 0 AS ord FROM prior_holds
    UNION ALL
    SELECT aggregate_id, j.ref, kind, j.amount, ord
    FROM trader_events
    WHERE kind IN ({{ HOLD_KINDS }})
)
GROUP BY trader_id, ref
