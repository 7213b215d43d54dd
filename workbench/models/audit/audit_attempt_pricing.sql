-- produces: audit_attempt_pricing
-- reads: audit_attempt_orders, audit_attempts, audit_fees_in_force
-- Each attempt priced as the catalog (section 2) prices it, once: one narrow row per attempt
-- (`k`: its row in `audit_attempts`) with the formula's settlement amount (`expected`:
-- `round_half_even(amount / 10^exp_fiat / rate * 10^exp_settle)`, `money.settlement`, NULL where
-- the rate is not a plain positive decimal), the client's `fee_bps` and the trader's
-- `reward_bps` in force (`audit_fees_in_force`), and the platform fee and trader reward those give
-- on the recorded settlement (`fee_expected`, `reward_expected`: `round_half_even(settlement * bps
-- / 10000)`). `priced_right`: the attempt's recorded settlement, fee and reward are all the
-- formula's, and the reward is not above the fee (FALSE where anything is missing). FX_MISMATCH reads the settlement, FEE_MISMATCH the fee and reward, and
-- POLICY_DEVIATION the flag: where it holds, the formula's pricing is the recorded one, which the
-- scheduler's rules already judged (`audit_assignment_rules`). The divisions are the costly part
-- of all three, so they are done here once, not three times.
WITH a AS (
    SELECT a.rowid AS k, a.rate, a.settlement_currency, a.settlement_amount, a.platform_fee,
           a.trader_reward, o.amount, o.currency, f.fee_bps, f.reward_bps
    FROM audit_attempts a
    JOIN audit_attempt_orders o ON o.k = a.rowid
    LEFT JOIN audit_fees_in_force f USING (assigned_event_id)
),
x AS ({{ money.with_half_even(
    "(" ~ money.settlement("amount", "currency", "rate", "settlement_currency", "a") ~ ")",
    fee_expected=money.bps_share_of("settlement_amount", "fee_bps"),
    reward_expected=money.bps_share_of("settlement_amount", "reward_bps"),
) }})
SELECT k, expected, fee_bps, reward_bps, fee_expected, reward_expected,
       coalesce(settlement_amount = expected AND platform_fee = fee_expected
                AND trader_reward = reward_expected AND trader_reward <= platform_fee, FALSE) AS priced_right
FROM x
