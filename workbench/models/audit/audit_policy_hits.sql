-- produces: audit_policy_hits
-- reads: audit_policy_sequence
-- POLICY_DEVIATION's search (`audit_policy_pick` says what it is for): each pair of an
-- assignment that broke no rule and a trader's segment (`audit_policy_segments`: registered,
-- online, not blocked, under capacity) that is open at it, in its currency, and outranks its
-- trader (a better key: higher score, then fewer active orders, then smaller id); for the few
-- assignments whose own trader fails its money rule at the formula's pricing (`self_ok` false),
-- every open segment. Amount limits, earlier tries and money rules are judged on these pairs
-- only, in `audit_policy_candidates`.
--
-- Joining every assignment with every open segment would cost assignments x open traders (tens
-- of millions of pairs at 10M events: idle traders stay open for hours). Instead, with one
-- number per key (`w`: the score's rank, the active orders and the id's rank folded into a
-- HUGEINT, smaller is better) and the assignments numbered per currency in the fold's
-- `(position, event_id)` order (`n`):
--
-- * each segment's two ends are counted in the same sort, so it covers the assignments
--   `lo_n < n <= hi_n` (open after its first event, up to and including the event that ends
--   it: an assignment sees the state just before it);
-- * a window with a frame of that many assignments after the segment's start gives the worst
--   key assigned while it was open (`worst`): a segment is a suspect only if that is worse than
--   its own key. On a correct history few are (the scheduler gave the order to the best
--   eligible trader; a better open one failed its limits, a try or its money rule);
-- * only the suspects are paired with the assignments they cover, by a range join on the
--   currency and `n` folded into one number.
WITH seq AS (SELECT * FROM audit_policy_sequence WHERE k IS NOT NULL),
rng AS (  -- each segment's assignments: lo_n < n <= hi_n
    SELECT l.sid, l.ci, l.w, l.n AS lo_n, coalesce(h.n, t.n) AS hi_n
    FROM (SELECT * FROM audit_policy_sequence WHERE side = 'lo') l
    LEFT JOIN (SELECT sid, n FROM audit_policy_sequence WHERE side = 'hi') h USING (sid)
    JOIN (SELECT ci, max(n) AS n FROM seq GROUP BY ci) t USING (ci)
),
blk AS (  -- the blocks of 64 assignments (n = 64 b .. 64 b + 63), each with the worst key of the 2^l from it
    SELECT ci, b, [m, {% for l in range(1, 26) %}max(m) OVER (PARTITION BY ci ORDER BY b ROWS BETWEEN CURRENT ROW AND {{ 2 ** l - 1 }} FOLLOWING){{ ", " if not loop.last }}{% endfor %}] AS ms
    FROM (SELECT ci, n >> 6 AS b, m6 AS m FROM seq WHERE n & 63 = 0)
),
q AS MATERIALIZED (  -- each segment's range of assignments f..t (f = lo_n + 1, t = hi_n, at least one), its
    -- two runs of 2^l (l up to 6) that cover it, and past 64 the whole blocks between its first
    -- and its last 64: two runs of 2^L blocks, from bl and to br
    SELECT *, t - (1 << least(l, 6)) + 1 AS z, CASE WHEN l > 6 THEN bf END AS bl,
           CASE WHEN l > 6 THEN bt - (1 << lb) + 1 END AS br
    FROM (SELECT *, CASE WHEN bt >= bf THEN floor(log2(bt - bf + 1))::BIGINT END AS lb
          FROM (SELECT sid, ci, w, lo_n + 1 AS f, hi_n AS t, floor(log2(hi_n - lo_n))::BIGINT AS l,
                       (lo_n + 64) >> 6 AS bf, ((hi_n + 1) >> 6) - 1 AS bt
                FROM rng WHERE hi_n > lo_n))
),
worst AS (  -- the worst key assigned while each segment was open
    SELECT q.sid, q.ci, q.w, q.f, q.t,
           CASE WHEN q.l <= 6 THEN greatest([a.w, a.m1, a.m2, a.m3, a.m4, a.m5, a.m6][q.l + 1],
                                            [z.w, z.m1, z.m2, z.m3, z.m4, z.m5, z.m6][q.l + 1])
                ELSE greatest(a.m6, z.m6, bl.ms[q.lb + 1], br.ms[q.lb + 1]) END AS worst
    FROM q
    JOIN seq a ON a.ci = q.ci AND a.n = q.f
    JOIN seq z ON z.ci = q.ci AND z.n = q.z
    LEFT JOIN blk bl ON bl.ci = q.ci AND bl.b = q.bl
    LEFT JOIN blk br ON br.ci = q.ci AND br.b = q.br
),
suspect AS (SELECT * FROM worst WHERE worst > w)
SELECT s.sid, a.k
FROM (SELECT sid, ci, w, unnest(range(f, t + 1)) AS n FROM suspect) s
JOIN seq a ON a.ci = s.ci AND a.n = s.n
WHERE a.w > s.w
UNION  -- the assigned trader fails its own money rule: every segment open at it
SELECT r.sid, a.k
FROM (SELECT * FROM seq WHERE NOT self_ok) a
JOIN rng r ON r.ci = a.ci AND a.n > r.lo_n AND a.n <= r.hi_n
