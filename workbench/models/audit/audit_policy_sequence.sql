-- produces: audit_policy_sequence
-- reads: audit_policy_assignments, audit_policy_segments
-- POLICY_DEVIATION's search, first half (`audit_policy_hits` says what it is for): the
-- assignments that broke no rule numbered per currency in the fold's `(position, event_id)`
-- order (`n`), each with its key folded into one number (`w`: the score's rank, the active
-- orders and the id's rank, smaller is better) and the worst key of the 1, 2, 4, ..., 64
-- assignments from it on (`ms`); and each open segment's two ends counted in the same
-- sort (`side` 'lo' / 'hi', `n`: the assignments of its currency up to that event), with the
-- segment's key (a segment that ends at its trader's own assignment takes that assignment's
-- `n`, and gives it its key: `own`). A table of its own: `audit_policy_hits` joins it with itself
-- by `(ci, n)`, which DuckDB planned as a join on the currency alone when it was a CTE of the same
-- query.
WITH cur AS (  -- a number per currency
    SELECT c, row_number() OVER (ORDER BY c) AS ci
    FROM (SELECT DISTINCT currency AS c FROM audit_policy_assignments WHERE currency IS NOT NULL)
),
sr AS (  -- a rank per score, the highest first
    SELECT s, dense_rank() OVER (ORDER BY s DESC) AS r FROM (SELECT DISTINCT score AS s FROM audit_policy_segments)
),
tr AS (  -- a rank per trader, the smallest id first
    SELECT t, dense_rank() OVER (ORDER BY t) AS r FROM (SELECT DISTINCT trader_id AS t FROM audit_policy_segments)
),
bits AS (  -- the bits each part of the key takes (`log2` can only overstate them) and whether
    -- the three fit one BIGINT: always on real data (thousands of scores and traders, a few
    -- active orders), where the window maxima and comparisons are cheaper than on a HUGEINT
    -- (`key_bits`: a test's, to take the other path)
    SELECT a, t, s + a + t <= {{ key_bits | default(62) }} AND lo >= 0 AS fits
    FROM (SELECT (SELECT floor(log2(max(r) + 1))::INTEGER + 1 FROM sr) AS s,
                 floor(log2(greatest(max(active), 0) + 1))::INTEGER + 1 AS a, min(active) AS lo,
                 (SELECT floor(log2(max(r) + 1))::INTEGER + 1 FROM tr) AS t
          FROM audit_policy_segments)
),
kr AS (  -- else a rank per key, the best first (exact whatever the data; costlier)
    SELECT score, active, trader_id, dense_rank() OVER (ORDER BY score DESC, active, trader_id) AS w
    FROM (SELECT DISTINCT score, active, trader_id FROM audit_policy_segments
          WHERE NOT (SELECT fits FROM bits))
),
asg AS (
    SELECT m.k, c.ci, m.pos, m.event_id, m.self_ok
    FROM audit_policy_assignments m JOIN cur c ON c.c = m.currency
),
seg AS (
    SELECT s.rowid AS sid, c.ci, s.lo_pos, s.lo_id, s.hi_pos, s.hi_id, s.hi_k,
           (q.r::BIGINT << (b.a + b.t)) + (s.active::BIGINT << b.t) + t.r AS w
    FROM audit_policy_segments s
    JOIN cur c ON c.c = s.fiat JOIN sr q ON q.s = s.score JOIN tr t ON t.t = s.trader_id
    JOIN bits b ON b.fits
    UNION ALL
    SELECT s.rowid, c.ci, s.lo_pos, s.lo_id, s.hi_pos, s.hi_id, s.hi_k, k.w
    FROM audit_policy_segments s
    JOIN cur c ON c.c = s.fiat JOIN kr k USING (score, active, trader_id)
),
own AS (  -- the segments that end at their trader's own assignment, one that broke no rule: an
    -- assignment's key is that segment's (the trader was open, as the assignment broke no rule),
    -- and the segment's end is counted with the assignment, not sorted again (most segments end so)
    SELECT s.sid, s.hi_k AS k, s.w FROM seg s SEMI JOIN asg a ON a.k = s.hi_k
),
counted AS MATERIALIZED (  -- the assignments before each row, in its currency (itself included)
    SELECT k, sid, side, ci, w, self_ok, count(k) OVER (PARTITION BY ci ORDER BY pos, event_id, tie, side ROWS UNBOUNDED PRECEDING) AS n
    FROM (SELECT a.k, NULL::BIGINT AS sid, NULL AS side, a.ci, a.pos, a.event_id, 0 AS tie, o.w, a.self_ok
          FROM asg a LEFT JOIN own o USING (k)
          UNION ALL  -- a segment's ends after an assignment that is the same event
          SELECT NULL, sid, 'lo', ci, lo_pos, lo_id, 1, w, NULL FROM seg
          UNION ALL
          SELECT NULL, sid, 'hi', ci, hi_pos, hi_id, 1, w, NULL FROM seg
          WHERE hi_pos IS NOT NULL AND sid NOT IN (SELECT sid FROM own))
),
seq AS (  -- each assignment with the worst key of the 1, 2, 4, ..., 64 from it on
    SELECT k, ci, n, w, self_ok, [w, {% for l in range(1, 7) %}max(w) OVER (PARTITION BY ci ORDER BY n ROWS BETWEEN CURRENT ROW AND {{ 2 ** l - 1 }} FOLLOWING){{ ", " if not loop.last }}{% endfor %}] AS ms
    FROM counted WHERE k IS NOT NULL
)
SELECT k, NULL::BIGINT AS sid, NULL AS side, ci, n, w, self_ok, ms FROM seq
UNION ALL
SELECT NULL, sid, side, ci, n, w, NULL, NULL FROM counted WHERE sid IS NOT NULL
UNION ALL  -- the ends counted with their assignment
SELECT NULL, o.sid, 'hi', q.ci, q.n, o.w, NULL, NULL FROM own o JOIN seq q USING (k)
