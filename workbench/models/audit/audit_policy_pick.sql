-- produces: audit_policy_pick
-- reads: audit_policy_judged, policy_judgments
-- POLICY_DEVIATION's judgments of every assignment that broke no scheduler rule, where the
-- pick is not its own trader (or its own trader fails its money rule at the formula's pricing):
-- one row per such assignment, as `audit_policy_judged` judges it. The full build judges every
-- assignment and stores these rows (`policy_judgments`) with the last event they reach
-- (`policy_judged`); an appended batch or the live stream leaves them as they stand, since an
-- assignment is judged on the events before it only (the order as it stood then,
-- `audit_attempt_orders`), which a batch after it cannot change (a batch that reaches back is
-- applied by a full build: `workbench.replay.incremental`). So the audit reads the stored rows and judges only
-- the assignments after them (`policy_from`, the stored `policy_judged`: the audit's context).
-- Where it is not given (the full build, a notebook's own call), every assignment is judged here
-- and the stored rows are not read. `tests/audit/test_policy_stored.py` holds the two to each
-- other on appended histories.
SELECT event_id, order_id, attempt, pos, trader_id, score, active, rated_by, self_ok, pick_id,
       pick_score, pick_active, pick_rated_by
FROM policy_judgments WHERE {{ "TRUE" if policy_from is not none else "FALSE" }}
UNION ALL
SELECT event_id, order_id, attempt, pos, trader_id, score, active, rated_by, self_ok, pick_id,
       pick_score, pick_active, pick_rated_by
FROM audit_policy_judged
