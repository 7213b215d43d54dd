-- check: FEE_MISMATCH
-- severity: high
-- reads: audit_attempt_pricing, audit_attempts
-- An attempt whose platform fee or trader reward is not `round_half_even(settlement * bps /
-- 10000)` at the client's `fee_bps` and the trader's `reward_bps` in force at the assignment, or
-- whose reward is above its fee. The offending event is the `assigned` event.
--
-- The fee and reward in force come from `audit_fees_in_force`, the one place that rule is written
-- in SQL, and are priced once for every attempt in `audit_attempt_pricing`.
WITH x AS (  -- the few attempts priced otherwise (`audit_attempt_pricing` priced them all once)
    SELECT a.order_id, a.attempt, a.settlement_currency, a.settlement_amount, a.platform_fee,
           a.trader_reward, a.assigned_event_id, p.fee_bps, p.reward_bps, p.fee_expected,
           p.reward_expected
    FROM (SELECT * FROM audit_attempt_pricing WHERE NOT priced_right) p
    JOIN (SELECT rowid AS k, * FROM audit_attempts) a USING (k)
)
SELECT 'FEE_MISMATCH', 'payment_order:' || order_id, assigned_event_id, [assigned_event_id],
       TRY_CAST(CASE WHEN platform_fee IS DISTINCT FROM fee_expected
                     THEN platform_fee::HUGEINT - fee_expected
                     ELSE trader_reward::HUGEINT - reward_expected END AS BIGINT),
       settlement_currency,
       format('attempt {}: platform_fee {} (formula {} at {} bps), trader_reward {} (formula {} at {} bps) on settlement {}',
              attempt, {{ money.text("platform_fee", "settlement_currency") }},
              {{ money.text("fee_expected", "settlement_currency") }}, fee_bps,
              {{ money.text("trader_reward", "settlement_currency") }},
              {{ money.text("reward_expected", "settlement_currency") }}, reward_bps,
              {{ money.text("settlement_amount", "settlement_currency") }})
FROM x
WHERE platform_fee IS DISTINCT FROM fee_expected OR trader_reward IS DISTINCT FROM reward_expected
   OR trader_reward > platform_fee
