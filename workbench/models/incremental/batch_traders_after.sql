-- produces: batch_traders_after
-- reads: batch_traders, payment_orders, trader_exact, trader_holds, traders
-- The rows of the traders with events in the batch: their row before it carried forward with
-- the batch's events by the same fold as the traders projection (`partials/trader_fold.sql`).
-- Run after `trader_holds` took the batch's holds.
WITH a AS (
    SELECT aggregate_id,
{% include 'trader_fold.sql' %},
        count(*) FILTER (WHERE kind IN ('trader.registered', 'trader.limits_changed')) > 0
            AS limits_set
    FROM batch_traders
    GROUP BY aggregate_id
),
holds AS (
    SELECT trader_id, sum(amount) AS held, count(*)::INTEGER AS open_holds
    FROM trader_holds
    WHERE last_kind = 'trader.hold_placed' AND trader_id IN (SELECT aggregate_id FROM a)
    GROUP BY trader_id
),
active AS (
    SELECT trader_id, count(*)::INTEGER AS n
    FROM payment_orders
    WHERE status IN ('assigned', 'in_progress', 'in_review') AND trader_id IS NOT NULL
        AND trader_id IN (SELECT aggregate_id FROM a)
    GROUP BY trader_id
),
n AS (
    SELECT a.aggregate_id AS trader_id,
        coalesce(o.registered, false) OR a.registered AS registered,
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
        coalesce(x.balance, o.deposit_balance, 0) + coalesce(a.balance, 0) AS balance,
        coalesce(h.held, 0) AS held,
        coalesce(h.open_holds, 0) AS open_holds,
        coalesce(ac.n, 0) AS active_orders,
        CASE WHEN coalesce(o.registered, false) THEN o.registered_at ELSE a.registered_at END
            AS registered_at,
        a.updated_at,
        greatest(coalesce(o.version, a.version), a.version) AS version
    FROM a
    LEFT JOIN traders o ON o.trader_id = a.aggregate_id
    LEFT JOIN trader_exact x ON x.trader_id = a.aggregate_id
    LEFT JOIN holds h ON h.trader_id = a.aggregate_id
    LEFT JOIN active ac ON ac.trader_id = a.aggregate_id
)
SELECT trader_id, registered, name, fiat_currency, settlement_currency, country,
    min_amount::BIGINT, max_amount::BIGINT, max_active_orders::INTEGER, reward_bps::INTEGER,
    status, online, TRY_CAST(balance AS BIGINT), TRY_CAST(held AS BIGINT),
    TRY_CAST(balance - held AS BIGINT),
    open_holds::INTEGER, active_orders::INTEGER, registered_at, updated_at, version::INTEGER
FROM n
