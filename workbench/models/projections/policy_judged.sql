-- produces: policy_judged
-- reads: ev
-- The last event of the log the full build judged POLICY_DEVIATION through (`policy_judgments`):
-- the audit judges only the assignments after it. One row; none where the log is empty (the
-- audit then judges every assignment). `judged_by`: the
-- fingerprint of the models that judged them (`workbench.models.fingerprint`, given by the
-- build): an audit whose models' differs judges every assignment itself.
SELECT position, event_id, '{{ judged_by }}' AS judged_by FROM ev ORDER BY ord DESC LIMIT 1
