-- produces: violations
-- reads: clock_violations, conflict_violations, hold_violations, negative_violations, overflow_violations, plan_violations, sequence_violations
-- Every rule the fold judges event by event (`domain/violations.py`), as the union (a set, as
-- the fold records them) of the rule families in `models/violations/`.
SELECT * FROM sequence_violations
UNION SELECT * FROM hold_violations
UNION SELECT * FROM clock_violations
UNION SELECT * FROM plan_violations
UNION SELECT * FROM negative_violations
UNION SELECT * FROM overflow_violations
UNION SELECT * FROM conflict_violations
