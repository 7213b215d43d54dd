-- produces: audit_policy_judged
-- reads: audit_attempts, audit_policy_assignments, audit_policy_candidates, audit_policy_segments, audit_trader_deposit, ledger_plans, ledger_postings, payload_ledger_plan
-- The production policy's pick for the assignments that broke no scheduler rule (catalog
-- section 4, judged in `audit_assignment_rules`) where it is not their own trader: one row per
-- such assignment (`k`: its row in `audit_attempts`) with the assigned trader's rank key and the
-- pick's (`pick_id` NULL: nobody is eligible), so POLICY_DEVIATION reports the rows with a pick,
-- and the analysts' shares count them. The full build judges every assignment and stores the
-- rows (`policy_judgments`, up to `policy_judged`); the audit judges only the assignments after
-- that (`policy_from`, `judged_after`: in `audit_policy_assignments` and
-- `audit_policy_segments`) and reads both (`audit_policy_pick`). Every other assignment of `audit_policy_assignments` went
-- to the pick (its own trader passes its money rule and nobody better is eligible); the
-- assignments whose trader fails it at the formula's pricing (`self_ok` false) are all here
-- (`workbench.audit.policy.policy_deviation_shares`). The pick is the domain's
-- `production_choice(eligible(world, order, rate))` just before the `assigned` event, at the
-- assignment's own `rate`: among the traders every rule allows (each priced at its settlement
-- currency, the client's fee and its own reward in force), the highest latest published score
-- (55.00 before any), then the fewest active orders, then the smallest `trader_id`.
-- `tests/audit/test_policy_differential.py` holds it to the domain on whole histories.
--
-- Joining every assignment with every trader would cost assignments x traders. Instead:
--
-- * `audit_policy_segments`: each trader's life is cut into segments at each event that changes
--   what the policy reads of it (its state events, its ratings, the start and end of each of
--   its attempts), in the fold's `(position, event_id)` order; a segment holds the state after
--   its first event until the next one. Only the segments where the trader could take an order
--   at all are kept (registered, online, not blocked, under capacity).
-- * `audit_policy_sequence`, `audit_policy_hits`: the segments open at an assignment, in its
--   currency, that outrank its trader (a better key). Every segment's worst assigned key while
--   it was open is a range maximum over the assignments numbered in order (runs of 2^l
--   assignments, blocks of 64): only the segments open while a worse key was assigned are
--   suspects, and only they are paired with the assignments they cover. On a correct history
--   few are (6,039 pairs at a million events, 29,916 at ten million).
-- * `audit_policy_candidates`: of those pairs, the traders within their amount limits and not
--   tried on the order before. Those are few: a correct scheduler leaves none that passes the
--   money rules. Each is priced as the domain prices it (`money.settlement` at the
--   assignment's rate into the candidate's settlement currency, the client's fee, the
--   candidate's reward), in a temp table of its own (few rows).
-- * Here, each candidate's money rule: for a payin its available deposit (`audit_trader_deposit`,
--   the series the scheduler's rules read, after its last money event before the assignment)
--   covers settlement less reward;
--   for a payout the client's available balance in its settlement currency covers settlement
--   plus fee (the assignment's own figure where the currency is the assigned trader's, else
--   the sum of `client_moves` before it).
-- * The pick is the best of those, else the assigned trader. If the assigned trader itself
--   fails its money rule at the formula's pricing (its recorded pricing passed: the pricing is
--   FX_MISMATCH's or FEE_MISMATCH's), the domain picks among everyone else, so for those few
--   assignments every candidate is kept, not only the better ones (`self_ok`).
WITH payin AS (  -- the payin candidates' deposits before the assignment, in the fold's order
    SELECT c.k, c.trader_id, arg_max(t.available, {'pos': t.pos, 'event_id': t.event_id}) AS available
    FROM (SELECT * FROM audit_policy_candidates WHERE direction = 'payin') c
    JOIN audit_trader_deposit t
      ON t.trader_id = c.trader_id AND (t.pos < c.pos OR t.pos = c.pos AND t.event_id < c.event_id)
    GROUP BY c.k, c.trader_id
),
payout AS (  -- a payout's client balance in another settlement currency than its trader's
    SELECT c.k, c.settle_cur, t.available
    FROM (SELECT DISTINCT k, 'client:' || client_id AS account, settle_cur, pos, event_id FROM audit_policy_candidates
          WHERE direction = 'payout' AND settle_cur IS DISTINCT FROM own_cur) c
    ASOF JOIN (
        SELECT account, currency, {'pos': pos, 'event_id': event_id} AS key,
               sum(d) OVER (PARTITION BY account, currency ORDER BY pos, event_id) AS available
        FROM {{ client_moves("SELECT 'client:' || client_id FROM audit_policy_candidates WHERE direction = 'payout' AND settle_cur IS DISTINCT FROM own_cur") }}) t
      ON t.account = c.account AND t.currency = c.settle_cur AND {'pos': c.pos, 'event_id': c.event_id} > t.key
),
eligible AS (
    SELECT p.* FROM audit_policy_candidates p
    LEFT JOIN payin i USING (k, trader_id)
    LEFT JOIN payout o USING (k, settle_cur)
    WHERE p.settle IS NOT NULL AND p.fee_bps IS NOT NULL AND p.reward_bps IS NOT NULL
      AND CASE p.direction
              WHEN 'payin' THEN coalesce(i.available, 0) >= p.settle - p.reward
              WHEN 'payout' THEN CASE WHEN p.settle_cur = p.own_cur THEN p.client_available
                                      ELSE coalesce(o.available, 0) END >= p.settle + p.fee
              ELSE TRUE END
),
best AS (
    SELECT k, arg_min({'trader_id': trader_id, 'score': score, 'active': active, 'rated_by': rated_by},
                      {'neg': -score, 'active': active, 'trader_id': trader_id}) AS b
    FROM eligible GROUP BY k
),
judged AS (  -- the assignments with a better eligible trader, and those whose own trader fails
    -- its money rule at the formula's pricing; with their trader's key (its segment's, the one
    -- that ends at the assignment)
    SELECT m.*, a.order_id, a.attempt, s.score, s.rated_by
    FROM (SELECT * FROM audit_policy_assignments WHERE NOT self_ok OR k IN (SELECT k FROM best)) m
    JOIN (SELECT rowid AS k, order_id, attempt FROM audit_attempts) a USING (k)
    LEFT JOIN audit_policy_segments s ON s.trader_id = m.trader_id AND s.hi_pos = m.pos AND s.hi_id = m.event_id
)
SELECT m.k, m.order_id, m.attempt, m.event_id, m.pos, m.trader_id, m.score, m.active, m.rated_by,
       m.self_ok, b.b.trader_id AS pick_id, b.b.score AS pick_score, b.b.active AS pick_active,
       b.b.rated_by AS pick_rated_by
FROM judged m LEFT JOIN best b USING (k)
