-- produces: clients
-- reads: ev, payload_client
-- One row per client: its registration and the fee in force now (the last `client.registered`
-- or `client.fee_changed`), as the fold (`domain/client.py`) leaves it.
SELECT
    aggregate_id AS client_id,
    count(*) FILTER (WHERE kind = 'client.registered') > 0 AS registered,
    arg_max_null(name, ord) FILTER (WHERE kind = 'client.registered') AS name,
    arg_max_null(settlement_currency, ord) FILTER (WHERE kind = 'client.registered')
        AS settlement_currency,
    arg_max_null(fee_bps, ord)
        FILTER (WHERE kind IN ('client.registered', 'client.fee_changed')) AS fee_bps,
    arg_min(occurred_at, ord) FILTER (WHERE kind = 'client.registered') AS registered_at,
    arg_max(occurred_at, ord) AS updated_at,
    max(seq)::INTEGER AS version
FROM {{ typed("client") }}
GROUP BY aggregate_id
