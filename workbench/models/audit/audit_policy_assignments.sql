-- produces: audit_policy_assignments
-- reads: audit_assignment_rules, audit_attempts, audit_fees_in_force
-- POLICY_DEVIATION's first step (`audit_policy_pick` says what it is for): every assignment that
-- broke no scheduler rule (`audit_assignment_rules`), its trader's active orders and whether its
-- trader passes its money rule at the formula's pricing too (`self_ok`). Its trader's score is its
-- segment's (`audit_policy_segments`: the one that ends at this assignment).
WITH asg AS (  -- the assignments that broke no rule, priced for their own trader
    SELECT a.k, a.order_id, a.attempt, a.trader_id, a.assigned_event_id AS event_id,
           a.assigned_pos AS pos, a.rate, r.client_id, r.direction, r.amount, r.currency,
           r.active, r.settlement_currency, r.trader_available, r.client_available,
           f.fee_bps, f.reward_bps
    FROM (SELECT * FROM audit_assignment_rules WHERE len(broken) = 0) r
    JOIN (SELECT rowid AS k, * FROM audit_attempts) a USING (k)
    JOIN audit_fees_in_force f USING (assigned_event_id)
),
own AS (  -- the formula's pricing for the assigned trader: does it pass its money rule there?
    SELECT *, settle IS NOT NULL AND fee_bps IS NOT NULL AND reward_bps IS NOT NULL
              AND CASE direction WHEN 'payin' THEN trader_available >= settle - reward
                                 WHEN 'payout' THEN client_available >= settle + fee
                                 ELSE TRUE END AS self_ok
    FROM ({{ money.with_half_even(
        "(SELECT * EXCLUDE (expected), expected AS settle FROM (" ~ money.settlement("amount", "currency", "rate", "settlement_currency", "asg") ~ "))",
        fee=money.bps_share_of("settle", "fee_bps"),
        reward=money.bps_share_of("settle", "reward_bps"),
    ) }})
)
SELECT * FROM own
