-- produces: audit_policy_keys
-- reads: , audit_policy_assignments, audit_policy_segments
-- POLICY_DEVIATION's search (`audit_policy_pick` says what it is for), both sides of one range
-- join in one narrow table: `side` 's' the searched (a segment under its class, the same score
-- and active orders; a run of segments at one score under each score block that holds it, one
-- per level), 'p' the probes (each assignment under the classes and blocks that outrank its
-- trader: the same score and no more active orders; the blocks that make up the scores above
-- its own, one a level at most), keyed by class and position folded into one HUGEINT, so the
-- join is an IEJoin on two inequalities (`lo <= x <= hi`) that finds only the traders that
-- outrank the assigned one (and, in a tie of score and load, the larger ids).
WITH cur AS (  -- a number per currency
    SELECT c, row_number() OVER (ORDER BY c) AS i
    FROM (SELECT DISTINCT fiat AS c FROM audit_policy_segments UNION SELECT DISTINCT currency FROM audit_policy_assignments)
),
sr AS (  -- a number per score, the highest first
    SELECT s, row_number() OVER (ORDER BY s DESC) - 1 AS r
    FROM (SELECT DISTINCT score AS s FROM audit_policy_segments UNION SELECT DISTINCT score FROM audit_policy_assignments)
),
bits AS (SELECT floor(log2(count(*) + 1))::BIGINT + 2 AS b FROM sr),  -- 2^(b-1) > every number
runs AS (  -- each trader's stretches of segments in a row at one score (active orders apart)
    SELECT trader_id, fiat, score, min(lo_pos) AS lo_pos, max(coalesce(hi_pos, {{ NEVER }})) AS hi_pos
    FROM (SELECT *, sum(brk::INTEGER) OVER (PARTITION BY trader_id ORDER BY lo_pos, lo_id) AS run
          FROM (SELECT *, (lag(hi_pos) OVER w IS DISTINCT FROM lo_pos OR lag(hi_id) OVER w IS DISTINCT FROM lo_id
                           OR lag(score) OVER w <> score) AS brk
                FROM audit_policy_segments WINDOW w AS (PARTITION BY trader_id ORDER BY lo_pos, lo_id)))
    GROUP BY trader_id, fiat, score, run
),
keyed AS (  -- what is searched, each under a class folded with its positions into one key
    SELECT s.trader_id, s.active, s.lo_pos, coalesce(s.hi_pos, {{ NEVER }}) AS hi_pos,
           ((c.i * 2)::HUGEINT * 67108864 + q.r) * 67108864 + (s.active + 33554432) AS cls
    FROM audit_policy_segments s JOIN cur c ON c.c = s.fiat JOIN sr q ON q.s = s.score
    UNION ALL  -- a run under the score block that holds its score, at every level
    SELECT u.trader_id, NULL, u.lo_pos, u.hi_pos,
           ((c.i * 2 + 1)::HUGEINT * 67108864 + l) * 67108864 + (q.r >> l)
    FROM runs u JOIN cur c ON c.c = u.fiat JOIN sr q ON q.s = u.score, range(0, (SELECT b FROM bits)) AS g(l)
),
probe AS (  -- what each assignment looks for, in the same classes
    SELECT m.k, m.pos, m.active, m.trader_id, ((c.i * 2)::HUGEINT * 67108864 + q.r) * 67108864 + (v.active + 33554432) AS cls
    FROM audit_policy_assignments m JOIN cur c ON c.c = m.currency JOIN sr q ON q.s = m.score
    JOIN (SELECT DISTINCT active FROM audit_policy_segments) v ON v.active <= m.active
    WHERE m.self_ok  -- the same score and no more active orders
    UNION ALL  -- a higher score: the blocks that make up the scores above it, one a level at most
    SELECT m.k, m.pos, m.active, m.trader_id, ((c.i * 2 + 1)::HUGEINT * 67108864 + l) * 67108864 + ((t.r >> l) - 1)
    FROM (SELECT m.*, CASE WHEN m.self_ok THEN q.r ELSE 1 << ((SELECT b FROM bits) - 1) END AS r
          FROM audit_policy_assignments m JOIN sr q ON q.s = m.score) t
    JOIN audit_policy_assignments m USING (k) JOIN cur c ON c.c = m.currency, range(0, (SELECT b FROM bits)) AS g(l)
    WHERE (t.r >> l) & 1 = 1
)
SELECT 's' AS side, NULL::BIGINT AS k, trader_id, active, NULL::VARCHAR AS own_id, NULL::BIGINT AS own_active,
       cls * 18446744073709551616 + lo_pos + 9223372036854775808 AS lo,
       cls * 18446744073709551616 + hi_pos + 9223372036854775808 AS hi
FROM keyed
UNION ALL
SELECT 'p', k, NULL, NULL, trader_id, active, cls * 18446744073709551616 + pos + 9223372036854775808 AS x, NULL
FROM probe
