-- produces: audit_policy_candidates
-- reads: audit_assignment_rules, audit_attempt_pricing, audit_attempts, audit_policy_assignments, audit_policy_hits, audit_policy_segments
-- POLICY_DEVIATION's candidates (`audit_policy_judged` says what it is for): for every assignment
-- that broke no scheduler rule, the traders open at it (registered, online, not blocked, under
-- capacity, in its currency, within their amount limits, not tried on the order before) that
-- outrank its trader (all of them where its own trader fails its money rule at the formula's
-- pricing, `self_ok` false), each priced as the domain prices it (`money.settlement` at the
-- assignment's rate into the candidate's settlement currency, the client's fee, the candidate's
-- reward). Their money rules are judged in `audit_policy_judged`. A temp table of its own, few rows
-- (199 at a million events): the money rules' lookups (a deposit or a client balance per
-- candidate) are then `ASOF` joins of this small table with running series, which DuckDB plans
-- as sort-merges; read from a CTE of the same query they were planned as nested loops and the
-- audit did not finish at a million events.
WITH seg_at AS (  -- each pair's segment: the trader's state at the assignment
    SELECT h.k, s.* FROM audit_policy_hits h JOIN (SELECT rowid AS sid, * FROM audit_policy_segments) s USING (sid)
),
m AS (  -- the assignments in those pairs, with the figures the money rules read
    SELECT m.k, m.trader_id, m.pos, m.event_id, m.currency, a.order_id, a.rate, r.amount,
           r.direction, r.client_id, r.settlement_currency, r.client_available, p.fee_bps
    FROM (SELECT * FROM audit_policy_assignments WHERE k IN (SELECT k FROM audit_policy_hits)) m
    JOIN (SELECT rowid AS k, order_id, rate FROM audit_attempts) a USING (k)
    JOIN audit_assignment_rules r USING (k)
    JOIN audit_attempt_pricing p USING (k)
),
cand AS (  -- open at the assignment, outranking its trader (`audit_policy_hits`), within limits
    SELECT m.k, m.order_id, m.pos, m.event_id, m.amount, m.currency, m.rate, m.direction,
           m.client_id, m.fee_bps, m.settlement_currency AS own_cur, m.client_available,
           s.trader_id, s.settle_cur, s.reward_bps, s.score, s.active, s.rated_by
    FROM seg_at s JOIN m USING (k)
    WHERE (s.hi_pos IS NULL OR m.pos < s.hi_pos OR m.pos = s.hi_pos AND m.event_id <= s.hi_id)
      AND s.trader_id <> m.trader_id AND s.fiat = m.currency
      AND m.amount BETWEEN s.min_amount AND s.max_amount
),
untried AS (  -- not assigned this order before
    SELECT c.* FROM cand c
    ANTI JOIN audit_attempts t
      ON t.order_id = c.order_id AND t.trader_id = c.trader_id
     AND (t.assigned_pos < c.pos OR t.assigned_pos = c.pos AND t.assigned_event_id < c.event_id)
),
priced AS ({{ money.with_half_even(
    "(SELECT * EXCLUDE (expected), expected AS settle FROM (" ~ money.settlement("amount", "currency", "rate", "settle_cur", "untried") ~ "))",
    fee=money.bps_share_of("settle", "fee_bps"),
    reward=money.bps_share_of("settle", "reward_bps"),
) }})
SELECT * FROM priced
