-- produces: traders
-- reads: payment_orders, trader_events, trader_holds
-- One row per trader: registration, limits, block and presence (the last event of each kind),
-- the deposit (exact sums: HUGEINT, NULL where past int64, as the fold does), its open holds
-- (`trader_holds`) and the count of its active orders (`payment_orders`: the latest attempt's
-- trader).
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
{% include 'trader_fold.sql' %}
    FROM trader_events
    GROUP BY aggregate_id
)
SELECT
    a.aggregate_id AS trader_id,
    a.registered,
    a.name,
    a.fiat_currency,
    a.settlement_currency,
    a.country,
    coalesce(a.min_amount, 0)::BIGINT AS min_amount,
    coalesce(a.max_amount, 0)::BIGINT AS max_amount,
    coalesce(a.max_active_orders, 0)::INTEGER AS max_active_orders,
    coalesce(a.reward_bps, 0)::INTEGER AS reward_bps,
    CASE WHEN a.last_block = 'trader.blocked' THEN 'blocked' ELSE 'active' END AS status,
    coalesce(a.last_presence = 'trader.went_online', false) AS online,
    TRY_CAST(a.balance AS BIGINT) AS deposit_balance,
    TRY_CAST(coalesce(h.held, 0) AS BIGINT) AS held,
    TRY_CAST(a.balance - coalesce(h.held, 0) AS BIGINT) AS available,
    coalesce(h.open_holds, 0)::INTEGER AS open_holds,
    coalesce(ac.n, 0)::INTEGER AS active_orders,
    a.registered_at,
    a.updated_at,
    a.version::INTEGER AS version
FROM a
LEFT JOIN holds h ON h.trader_id = a.aggregate_id
LEFT JOIN active ac ON ac.trader_id = a.aggregate_id
