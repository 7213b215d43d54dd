-- produces: traders
-- reads: payment_orders, prior_traders, trader_events, trader_holds
-- One row per trader: registration, limits, block and presence (the last event of each kind),
-- the deposit (exact sums: HUGEINT, NULL where past int64, as the fold does), its open holds
-- (`trader_holds`) and the count of its active orders (`payment_orders`: the latest attempt's
-- trader). Runs on from `prior_traders`: empty in a full build; when a batch is appended, the
-- stored rows of the traders it touches, which its events (all after them) update. A trader
-- with no new event keeps its row, its holds and active orders recounted.
WITH holds AS (
    SELECT trader_id, sum(amount) AS held, count(*)::INTEGER AS open_holds
    FROM trader_holds
    WHERE last_kind = 'trader.hold_placed'
    GROUP BY trader_id
),
active AS (
    SELECT trader_id, count(*)::INTEGER AS n
    FROM payment_orders
    WHERE status IN ('assigned', 'in_progress', 'in_review') AND trader_id IS NOT NULL
    GROUP BY trader_id
),
a AS (
    SELECT
        aggregate_id,
{% include 'trader_fold.sql' %},
        count(*) FILTER (WHERE kind IN ('trader.registered', 'trader.limits_changed')) > 0
            AS limits_set
    FROM trader_events
    GROUP BY aggregate_id
),
n AS (
    SELECT coalesce(a.aggregate_id, o.trader_id) AS trader_id,
        coalesce(o.registered, false) OR coalesce(a.registered, false) AS registered,
        CASE WHEN a.registered THEN a.name ELSE o.name END AS name,
        CASE WHEN a.registered THEN a.fiat_currency ELSE o.fiat_currency END AS fiat_currency,
        CASE WHEN a.registered THEN a.settlement_currency ELSE o.settlement_currency END
            AS settlement_currency,
        CASE WHEN a.registered THEN a.country ELSE o.country END AS country,
        CASE WHEN a.limits_set THEN coalesce(a.min_amount, 0) ELSE coalesce(o.min_amount, 0) END
            AS min_amount,
        CASE WHEN a.limits_set THEN coalesce(a.max_amount, 0) ELSE coalesce(o.max_amount, 0) END
            AS max_amount,
        CASE WHEN a.limits_set THEN coalesce(a.max_active_orders, 0)
             ELSE coalesce(o.max_active_orders, 0) END AS max_active_orders,
        CASE WHEN a.registered THEN coalesce(a.reward_bps, 0) ELSE coalesce(o.reward_bps, 0) END
            AS reward_bps,
        CASE WHEN a.last_block IS NOT NULL
             THEN CASE WHEN a.last_block = 'trader.blocked' THEN 'blocked' ELSE 'active' END
             ELSE coalesce(o.status, 'active') END AS status,
        CASE WHEN a.last_presence IS NOT NULL THEN a.last_presence = 'trader.went_online'
             ELSE coalesce(o.online, false) END AS online,
        coalesce(o.exact_balance, 0) + coalesce(a.balance, 0) AS balance,
        CASE WHEN coalesce(o.registered, false) THEN o.registered_at ELSE a.registered_at END
            AS registered_at,
        coalesce(a.updated_at, o.updated_at) AS updated_at,
        greatest(coalesce(o.version, a.version), coalesce(a.version, o.version)) AS version
    FROM a
    FULL JOIN prior_traders o ON o.trader_id = a.aggregate_id
)
SELECT
    n.trader_id,
    n.registered,
    n.name,
    n.fiat_currency,
    n.settlement_currency,
    n.country,
    n.min_amount::BIGINT AS min_amount,
    n.max_amount::BIGINT AS max_amount,
    n.max_active_orders::INTEGER AS max_active_orders,
    n.reward_bps::INTEGER AS reward_bps,
    n.status,
    n.online,
    TRY_CAST(n.balance AS BIGINT) AS deposit_balance,
    TRY_CAST(coalesce(h.held, 0) AS BIGINT) AS held,
    TRY_CAST(n.balance - coalesce(h.held, 0) AS BIGINT) AS available,
    coalesce(h.open_holds, 0)::INTEGER AS open_holds,
    coalesce(ac.n, 0)::INTEGER AS active_orders,
    n.registered_at,
    n.updated_at,
    n.version::INTEGER AS version
FROM n
LEFT JOIN holds h ON h.trader_id = n.trader_id
LEFT JOIN active ac ON ac.trader_id = n.trader_id
