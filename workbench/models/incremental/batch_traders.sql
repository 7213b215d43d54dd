-- produces: batch_traders
-- reads: batch_new
-- The batch's trader events, numbered in log order, payloads typed as `trader_events` types
-- them (plus `hj`, the hold fields as text, read by the hold rules).
SELECT aggregate_id, event_id, seq, kind, schema_version, occurred_at, recorded_at,
    row_number() OVER (ORDER BY position, event_id) AS ord,
    json_transform(payload, '{"name": "VARCHAR", "fiat_currency": "VARCHAR", "settlement_currency": "VARCHAR", "country": "VARCHAR", "min_amount": "BIGINT", "max_amount": "BIGINT", "max_active_orders": "INTEGER", "reward_bps": "INTEGER", "limits": {"min_amount": "BIGINT", "max_amount": "BIGINT", "max_active_orders": "INTEGER"}, "ref": "VARCHAR", "amount": "BIGINT"}') AS j
FROM batch_new
WHERE stream = 'trader'
