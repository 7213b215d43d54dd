-- produces: trader_events
-- reads: ev, payload_trader
-- The trader stream, each payload typed once (every kind's fields in one struct `j`; fields a
-- kind does not have are null; v1 limits at top level, v2 under `limits`). The traders
-- projection, its holds and the hold rules read it.
SELECT aggregate_id, ord, seq, event_id, kind, schema_version, occurred_at, recorded_at, fresh,
    j
FROM {{ typed("trader") }}
