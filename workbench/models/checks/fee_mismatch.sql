-- check: FEE_MISMATCH
-- severity: high
-- reads: audit_attempts, events, payment_orders
-- An attempt whose platform fee or trader reward is not `round_half_even(settlement * bps /
-- 10000)` at the client's `fee_bps` and the trader's `reward_bps` in force at the assignment, or
-- whose reward is above its fee. The offending event is the `assigned` event.
--
-- The fee and reward in force are the latest before the assignment. There are a few fee and
-- registration events per client and trader, so each is given the positions until which it holds
-- and joined by key (an `ASOF` join would sort every assignment, twice).
{% set fees %}
WITH a AS (
    SELECT a.order_id, a.attempt, a.trader_id, a.rate, a.settlement_currency, a.settlement_amount,
           a.platform_fee, a.trader_reward, a.assigned_event_id, a.assigned_pos AS pos,
           o.client_id, o.amount, o.currency, o.direction
    FROM audit_attempts a
    JOIN payment_orders o USING (order_id)
),
fees AS (
    SELECT aggregate_id AS client_id, pos, (payload->>'fee_bps')::BIGINT AS fee_bps,
           lead(pos) OVER (PARTITION BY aggregate_id ORDER BY pos, event_id) AS until
    FROM {{ events_of("client.registered", "client.fee_changed") }}
),
rewards AS (
    SELECT aggregate_id AS trader_id, pos, (payload->>'reward_bps')::BIGINT AS reward_bps,
           lead(pos) OVER (PARTITION BY aggregate_id ORDER BY pos, event_id) AS until
    FROM {{ events_of("trader.registered") }}
)
SELECT a.*, f.fee_bps, r.reward_bps
FROM a
LEFT JOIN fees f ON f.client_id = a.client_id AND a.pos > f.pos AND a.pos <= coalesce(f.until, {{ NEVER }})
LEFT JOIN rewards r ON r.trader_id = a.trader_id AND a.pos > r.pos AND a.pos <= coalesce(r.until, {{ NEVER }})
{% endset %}
WITH x AS ({{ money.with_half_even(
    "(" ~ fees ~ ")",
    fee_expected=money.bps_share_of("settlement_amount", "fee_bps"),
    reward_expected=money.bps_share_of("settlement_amount", "reward_bps"),
) }})
SELECT 'FEE_MISMATCH', 'payment_order:' || order_id, assigned_event_id, [assigned_event_id],
       TRY_CAST(CASE WHEN platform_fee IS DISTINCT FROM fee_expected
                     THEN platform_fee::HUGEINT - fee_expected
                     ELSE trader_reward::HUGEINT - reward_expected END AS BIGINT),
       settlement_currency,
       format('attempt {}: platform_fee {} (formula {} at {} bps), trader_reward {} (formula {} at {} bps) on settlement {}',
              attempt, platform_fee, fee_expected, fee_bps, trader_reward, reward_expected,
              reward_bps, settlement_amount)
FROM x
WHERE platform_fee IS DISTINCT FROM fee_expected OR trader_reward IS DISTINCT FROM reward_expected
   OR trader_reward > platform_fee
