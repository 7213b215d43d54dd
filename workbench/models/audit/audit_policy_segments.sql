-- produces: audit_policy_segments
-- reads: audit_trader_states, audit_trader_timeline
-- POLICY_DEVIATION's traders (`audit_policy_judged` says what it is for): the stretches of each
-- trader's timeline (`audit_trader_timeline`: cut at each event that changes what the policy
-- reads of it, its state events, its ratings, the start and end of each of its attempts, in the
-- fold's `(position, event_id)` order) in which it could take an order at all: registered,
-- online, not blocked, under capacity. A segment holds the state after its first event until the
-- next one (`hi`, NULL: to the end; `hi_k`: the attempt, its row in `audit_attempts`, where that
-- is the trader's own next assignment), with what the policy ranks it by (its score, 55.00
-- before any rating, its active orders) and what its rules read. Only the segments open at an
-- assignment not judged already (`judged_after`, as `audit_policy_assignments`): those that end
-- after the stored judgments' last event, or never.
SELECT g.trader_id, g.lo_pos, g.lo_id, g.hi_pos, g.hi_id, g.hi_k, s.reg.fiat_currency AS fiat,
       s.reg.settlement_currency AS settle_cur, s.reg.reward_bps AS reward_bps,
       s.lim.min_amount, s.lim.max_amount, coalesce(s.score, {{ DEFAULT_SCORE }}) AS score,
       s.rated_by, g.active
FROM audit_trader_timeline g JOIN audit_trader_states s USING (trader_id, v)
WHERE s.reg.fiat_currency IS NOT NULL AND s.online AND NOT coalesce(s.blocked, FALSE)
  AND g.active < s.lim.cap
  AND (g.hi_pos IS NULL OR g.hi_pos > g.lo_pos OR g.hi_id > g.lo_id)
  AND (g.hi_pos IS NULL OR {{ judged_after("g.hi_pos", "g.hi_id", policy_from) }})
