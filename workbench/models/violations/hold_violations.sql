-- produces: hold_violations
-- scope: aggregate
-- reads: hold_events
-- Holds by ref (`hold_events`): placing a hold on a ref already open, or releasing or
-- capturing one with no open hold (INVALID_TRANSITION); ending a hold for another amount than
-- was held (TRADER_LEDGER_DRIFT).
SELECT 'INVALID_TRANSITION' AS code, event_id, 'trader:' || aggregate_id AS subject,
    CASE WHEN kind = 'trader.hold_placed' THEN 'a hold on ' || ref || ' is already open'
        ELSE verb || ' of ' || ref || ', which has no open hold'
    END AS detail
FROM hold_events
WHERE was_open = (kind = 'trader.hold_placed')
UNION ALL
SELECT 'TRADER_LEDGER_DRIFT', event_id, 'trader:' || aggregate_id,
    verb || ' ' || amount || ' of ' || ref || ', but ' || held || ' was held'
FROM hold_events
WHERE kind <> 'trader.hold_placed' AND was_open AND held <> amount
