-- produces: policy_judgments
-- reads: audit_policy_judged
-- POLICY_DEVIATION's judgments (`audit_policy_judged`), made by the full build for every
-- assignment and stored, so the audit judges only the assignments after them (`audit_policy_pick`).
-- Kept by the full build only: an appended batch leaves them (`policy_judged` says how far they
-- reach). Not a projection of the platform's state: a cache of the audit's, exact up to that event.
SELECT event_id, order_id, attempt, pos, trader_id, score, active, rated_by, self_ok, pick_id,
       pick_score, pick_active, pick_rated_by
FROM audit_policy_judged
