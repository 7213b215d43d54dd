        count(*) FILTER (WHERE kind = 'trader.registered') > 0 AS registered,
        arg_max_null(j.name, ord) FILTER (WHERE kind = 'trader.registered') AS name,
        arg_max_null(j.fiat_currency, ord) FILTER (WHERE kind = 'trader.registered')
            AS fiat_currency,
        arg_max_null(j.settlement_currency, ord) FILTER (WHERE kind = 'trader.registered')
            AS settlement_currency,
        -- v1 registrations have no country (upcast to null)
        arg_max_null(CASE WHEN schema_version >= 2 THEN j.country END, ord)
            FILTER (WHERE kind = 'trader.registered') AS country,
        arg_max_null(
            CASE WHEN kind = 'trader.registered' AND schema_version >= 2
                 THEN j.limits.min_amount ELSE j.min_amount END, ord)
            FILTER (WHERE kind IN ('trader.registered', 'trader.limits_changed')) AS min_amount,
        arg_max_null(
            CASE WHEN kind = 'trader.registered' AND schema_version >= 2
                 THEN j.limits.max_amount ELSE j.max_amount END, ord)
            FILTER (WHERE kind IN ('trader.registered', 'trader.limits_changed')) AS max_amount,
        arg_max_null(
            CASE WHEN kind = 'trader.registered' AND schema_version >= 2
                 THEN j.limits.max_active_orders ELSE j.max_active_orders END, ord)
            FILTER (WHERE kind IN ('trader.registered', 'trader.limits_changed'))
            AS max_active_orders,
        arg_max_null(j.reward_bps, ord) FILTER (WHERE kind = 'trader.registered') AS reward_bps,
        arg_max(kind, ord) FILTER (WHERE kind IN ('trader.blocked', 'trader.unblocked'))
            AS last_block,
        arg_max(kind, ord) FILTER (WHERE kind IN ('trader.went_online', 'trader.went_offline'))
            AS last_presence,
        sum(CASE WHEN kind IN ({{ CREDITS }}) THEN j.amount::HUGEINT
                 WHEN kind IN ({{ DEBITS }}) THEN -(j.amount::HUGEINT)
                 ELSE 0 END) AS balance,
        arg_min(occurred_at, ord) FILTER (WHERE kind = 'trader.registered') AS registered_at,
        arg_max(occurred_at, ord) AS updated_at,
        max(seq) AS version
