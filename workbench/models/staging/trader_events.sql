-- produces: trader_events
-- reads: ev
-- The trader stream, each payload typed once (every kind's fields in one struct `j`; fields a
-- kind does not have are null; v1 limits at top level, v2 under `limits`). The traders
-- projection, its holds and the hold rules read it.
SELECT aggregate_id, ord, seq, event_id, kind, schema_version, occurred_at, recorded_at, fresh,
    json_transform(payload, '{"name": "VARCHAR", "fiat_currency": "VARCHAR", "settlement_currency": "VARCHAR", "country": "VARCHAR", "min_amount": "BIGINT", "max_amount": "BIGINT", "max_active_orders": "INTEGER", "reward_bps": "INTEGER", "limits": {"min_amount": "BIGINT", "max_amount": "BIGINT", "max_active_orders": "INTEGER"}, "ref": "VARCHAR", "amount": "BIGINT"}') AS j
FROM ev
WHERE stream = 'trader'
