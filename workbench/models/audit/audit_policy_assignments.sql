-- produces: audit_policy_assignments
-- reads: audit_assignment_rules, audit_attempt_pricing, audit_attempts
-- POLICY_DEVIATION's first step (`audit_policy_judged` says what it is for): every assignment that
-- broke no scheduler rule (`audit_assignment_rules`), its trader's active orders and whether its
-- trader passes its money rule at the formula's pricing too (`self_ok`). Its trader's score is its
-- segment's (`audit_policy_segments`: the one that ends at this assignment). Narrow (a million
-- rows at ten million events): the few assignments judged further fetch the rest by `k`.
--
-- Where the attempt is priced as the formula prices it (`audit_attempt_pricing.priced_right`,
-- almost every attempt), its money rule at the formula's pricing is the one the scheduler's rules
-- judged on its recorded pricing, and it broke none: `self_ok` holds. Only the few priced
-- otherwise (FX_MISMATCH's and FEE_MISMATCH's) are priced again here at the formula's settlement.
-- Only the assignments not judged already (`judged_after`: after the stored judgments, in the
-- audit; all of them in the full build and for any other caller).
WITH asg AS NOT MATERIALIZED (  -- the assignments that broke no rule (read twice: computed again,
    -- the second time for the few priced otherwise only, cheaper than storing a million rows)
    SELECT a.k, a.trader_id, r.currency, a.assigned_event_id AS event_id, a.assigned_pos AS pos,
           r.active, a.rate, r.direction, r.amount, r.settlement_currency, r.trader_available,
           r.client_available, p.fee_bps, p.reward_bps, p.priced_right
    FROM (SELECT * FROM audit_assignment_rules
          WHERE len(broken) = 0 AND {{ judged_after("pos", None, policy_from) }}) r
    JOIN (SELECT rowid AS k, * FROM audit_attempts
          WHERE {{ judged_after("assigned_pos", "assigned_event_id", policy_from) }}) a USING (k)
    JOIN audit_attempt_pricing p USING (k)
),
repriced AS (  -- the few priced otherwise: does the trader pass its money rule at the formula's?
    SELECT k, settle IS NOT NULL AND fee_bps IS NOT NULL AND reward_bps IS NOT NULL
              AND CASE direction WHEN 'payin' THEN trader_available >= settle - reward
                                 WHEN 'payout' THEN client_available >= settle + fee
                                 ELSE TRUE END AS self_ok
    FROM ({{ money.with_half_even(
        "(SELECT * EXCLUDE (expected), expected AS settle FROM (" ~ money.settlement("amount", "currency", "rate", "settlement_currency", "(SELECT * FROM asg WHERE NOT priced_right)") ~ "))",
        fee=money.bps_share_of("settle", "fee_bps"),
        reward=money.bps_share_of("settle", "reward_bps"),
    ) }})
)
SELECT k, trader_id, currency, event_id, pos, active,
       CASE WHEN priced_right THEN TRUE ELSE r.self_ok END AS self_ok
FROM asg LEFT JOIN repriced r USING (k)
