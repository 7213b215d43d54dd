-- produces: audit_trader_timeline
-- reads: audit_attempts, audit_trader_states
-- Each trader's life cut at every event that changes what the scheduler reads of it: its state
-- events and ratings (`audit_trader_states`), and the start and end of each of its attempts (an
-- attempt ended by the order's next assignment ends at that event), in the fold's `(position,
-- event_id)` order. One row per such event (`lo`), holding until the trader's next one (`hi`;
-- NULL: to the end), with the state after it (`v`, the row of `audit_trader_states`) and the
-- orders then active (`active`). An assignment's row (`k`: its attempt's row in `audit_attempts`)
-- has the state just before it and the load just after it; the row before ends at it (`hi_k`).
-- At one event, an assignment comes before the end of the attempt it supersedes, so that end is
-- not counted before the assignment.
--
-- The scheduler's rules read an assignment's trader here (`audit_assignment_trader`), and
-- POLICY_DEVIATION every trader's open stretches (`audit_policy_segments`): the trader's state
-- and load over time are folded once, in one sort (2.1 million rows at ten million events).
-- The sort is of all traders' rows one after the other, not one window per trader: the running
-- sums over six thousand partitions cost twice as much as over one (each trader's sums are the
-- whole's less what came before its first row, `base`).
WITH tl AS (
    SELECT trader_id, pos, event_id, 1 AS s, 0 AS d, NULL::BIGINT AS k FROM audit_trader_states
    UNION ALL
    SELECT trader_id, assigned_pos, assigned_event_id, 0, 1, rowid FROM audit_attempts WHERE trader_id IS NOT NULL
    UNION ALL
    SELECT trader_id, end_pos, end_event_id, 0, -1, NULL FROM audit_attempts WHERE trader_id IS NOT NULL AND end_pos IS NOT NULL
),
run AS (  -- every trader's rows one after the other: one sort, running sums over the whole
    SELECT trader_id, pos, event_id, k, s, d,
           lead(trader_id) OVER w AS next_trader, lead(pos) OVER w AS next_pos,
           lead(event_id) OVER w AS next_id, lead(k) OVER w AS next_k,
           sum(s) OVER (w ROWS UNBOUNDED PRECEDING) AS cs, sum(d) OVER (w ROWS UNBOUNDED PRECEDING) AS cd
    FROM tl
    WINDOW w AS (ORDER BY trader_id, pos, event_id, d DESC)
),
base AS (  -- the running sums before each trader's first row
    SELECT trader_id, coalesce(sum(ts) OVER o, 0) AS bs, coalesce(sum(td) OVER o, 0) AS bd
    FROM (SELECT trader_id, sum(s) AS ts, sum(d) AS td FROM tl GROUP BY trader_id)
    WINDOW o AS (ORDER BY trader_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT r.trader_id, r.pos AS lo_pos, r.event_id AS lo_id, r.k,
       CASE WHEN r.next_trader = r.trader_id THEN r.next_pos END AS hi_pos,
       CASE WHEN r.next_trader = r.trader_id THEN r.next_id END AS hi_id,
       CASE WHEN r.next_trader = r.trader_id THEN r.next_k END AS hi_k,
       r.cs - b.bs AS v, r.cd - b.bd AS active
FROM run r JOIN base b USING (trader_id)
