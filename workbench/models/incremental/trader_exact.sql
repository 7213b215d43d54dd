-- produces: trader_exact
-- reads: batch_new, payload_trader, scope, traders
-- The exact deposit balance before the batch of the traders it touches whose row holds NULL
-- because it is past int64 (none, on real data), from their stored money events.
SELECT aggregate_id AS trader_id, sum({{ D_BALANCE }}) AS balance
FROM (
    SELECT aggregate_id, kind, amount::HUGEINT AS amount
    FROM payload_trader
    WHERE aggregate_id IN (
            SELECT trader_id FROM traders
            WHERE deposit_balance IS NULL
                AND trader_id IN (SELECT aggregate_id FROM scope WHERE stream = 'trader'))
        AND kind IN ({{ MONEY_KINDS }})
        AND event_id NOT IN (SELECT event_id FROM batch_new)
)
GROUP BY aggregate_id
