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
WITH tl AS (
    SELECT trader_id, pos, event_id, 1 AS s, 0 AS d, NULL::BIGINT AS k FROM audit_trader_states
    UNION ALL
    SELECT trader_id, assigned_pos, assigned_event_id, 0, 1, rowid FROM audit_attempts WHERE trader_id IS NOT NULL
    UNION ALL
    SELECT trader_id, end_pos, end_event_id, 0, -1, NULL FROM audit_attempts WHERE trader_id IS NOT NULL AND end_pos IS NOT NULL
)
SELECT trader_id, pos AS lo_pos, event_id AS lo_id, k,
       lead(pos) OVER w AS hi_pos, lead(event_id) OVER w AS hi_id, lead(k) OVER w AS hi_k,
       sum(s) OVER w AS v, sum(d) OVER w AS active
FROM tl
WINDOW w AS (PARTITION BY trader_id ORDER BY pos, event_id, d DESC ROWS UNBOUNDED PRECEDING)
