-- produces: audit_policy_hits
-- reads: audit_policy_sequence
-- POLICY_DEVIATION's search (`audit_policy_judged` says what it is for): each pair of an
-- assignment that broke no rule and a trader's segment (`audit_policy_segments`: registered,
-- online, not blocked, under capacity) that is open at it, in its currency, and outranks its
-- trader (a better key: higher score, then fewer active orders, then smaller id); for the few
-- assignments whose own trader fails its money rule at the formula's pricing (`self_ok` false),
-- every open segment. Amount limits, earlier tries and money rules are judged on these pairs
-- only, in `audit_policy_candidates`.
--
-- Joining every assignment with every open segment would cost assignments x open traders (12
-- million pairs at 1M events: idle traders stay open for hours). Instead, with one number per
-- key (`w`: the score's rank, the active orders and the id's rank folded into a BIGINT,
-- smaller is better) and the assignments numbered per currency in the fold's `(position,
-- event_id)` order (`n`), both from `audit_policy_sequence`:
--
-- * a segment covers the assignments `lo_n < n <= hi_n` (open after its first event, up to and
--   including the event that ends it: an assignment sees the state just before it);
-- * the worst key assigned while it was open is a range maximum, exact and found by lookups
--   only: up to 127 assignments, the larger of two overlapping runs of 2^l (each assignment has
--   the worst key of the 1, 2, 4, ..., 64 from it on, `ms`); past that, the first and last 64
--   and the whole blocks of 64 between them, again two overlapping runs of 2^L blocks (`blk`,
--   the same doubling over the blocks). A segment is a suspect only if that key is worse than
--   its own. On a correct history few are (the scheduler gave the order to the best eligible
--   trader; a better open one failed its limits, a try or its money rule): 26,505 of 1.2
--   million segments at 10M events;
-- * a suspect's pairs are found by descent: its runs of 4096 assignments holding a worse key,
--   in those its blocks of 64 holding one, in those the assignments (not every assignment of
--   its range: 82 million rows at 10M, as some suspects stay open for a day).
WITH seq AS (SELECT * FROM audit_policy_sequence WHERE k IS NOT NULL),
rng AS (  -- each segment's assignments: lo_n < n <= hi_n
    SELECT l.sid, l.ci, l.w, l.n AS lo_n, coalesce(h.n, t.n) AS hi_n
    FROM (SELECT * FROM audit_policy_sequence WHERE side = 'lo') l
    LEFT JOIN (SELECT sid, n FROM audit_policy_sequence WHERE side = 'hi') h USING (sid)
    JOIN (SELECT ci, max(n) AS n FROM seq GROUP BY ci) t USING (ci)
),
blk AS (  -- the blocks of 64 assignments (b: n = 64 b .. 64 b + 63), each with the worst key of
    -- the 1, 2, 4, ... blocks from it on (`ms`)
    SELECT ci, b, [m, {% for l in range(1, 26) %}max(m) OVER (PARTITION BY ci ORDER BY b ROWS BETWEEN CURRENT ROW AND {{ 2 ** l - 1 }} FOLLOWING){{ ", " if not loop.last }}{% endfor %}] AS ms
    FROM (SELECT ci, n >> 6 AS b, max(w) AS m FROM seq GROUP BY ci, b)
),
q AS MATERIALIZED (  -- each segment's assignments f..t (f = lo_n + 1, t = hi_n; at least one): two
    -- runs of 2^l that cover them (l up to 6), else the first 64, the last 64 and the whole blocks
    -- between them (bf .. bt: two runs of 2^lb blocks, from bf and to bt)
    SELECT *, t - (1 << least(l, 6)) + 1 AS z, CASE WHEN l > 6 THEN bf END AS bl,
           CASE WHEN l > 6 THEN bt - (1 << lb) + 1 END AS br
    FROM (SELECT *, CASE WHEN bt >= bf THEN floor(log2(bt - bf + 1))::BIGINT END AS lb
          FROM (SELECT sid, ci, w, lo_n + 1 AS f, hi_n AS t, floor(log2(hi_n - lo_n))::BIGINT AS l,
                       (lo_n + 64) >> 6 AS bf, ((hi_n + 1) >> 6) - 1 AS bt
                FROM rng WHERE hi_n > lo_n))
),
suspect AS MATERIALIZED (  -- the segments open while a worse key was assigned
    SELECT q.sid, q.ci, q.w, q.f, q.t
    FROM q
    JOIN seq a ON a.ci = q.ci AND a.n = q.f
    JOIN seq z ON z.ci = q.ci AND z.n = q.z
    LEFT JOIN blk bl ON bl.ci = q.ci AND bl.b = q.bl
    LEFT JOIN blk br ON br.ci = q.ci AND br.b = q.br
    WHERE CASE WHEN q.l <= 6 THEN greatest(a.ms[q.l + 1], z.ms[q.l + 1])
               ELSE greatest(a.ms[7], z.ms[7], bl.ms[q.lb + 1], br.ms[q.lb + 1]) END > q.w
),
big AS (  -- a suspect's runs of 4096 assignments (64 blocks from 64 bb) that hold a worse key
    SELECT s.*, s.bb << 6 AS b0
    FROM (SELECT *, unnest(range(f >> 12, (t >> 12) + 1)) AS bb FROM suspect) s
    JOIN blk b ON b.ci = s.ci AND b.b = s.bb << 6
    WHERE b.ms[7] > s.w
),
small AS (  -- within those, the blocks of 64 that hold one
    SELECT s.sid, s.ci, s.w, s.f, s.t, s.b
    FROM (SELECT *, unnest(range(greatest(b0, f >> 6), least(b0 + 63, t >> 6) + 1)) AS b FROM big) s
    JOIN blk b ON b.ci = s.ci AND b.b = s.b
    WHERE b.ms[1] > s.w
)
SELECT s.sid, a.k  -- within those, the assignments
FROM (SELECT *, unnest(range(greatest(b << 6, f), least((b << 6) + 63, t) + 1)) AS n FROM small) s
JOIN seq a ON a.ci = s.ci AND a.n = s.n
WHERE a.w > s.w
UNION  -- the assigned trader fails its own money rule: every segment open at it
SELECT r.sid, a.k
FROM (SELECT * FROM seq WHERE NOT self_ok) a
JOIN rng r ON r.ci = a.ci AND a.n > r.lo_n AND a.n <= r.hi_n
