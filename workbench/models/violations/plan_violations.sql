-- produces: plan_violations
-- scope: aggregate
-- reads: ledger_ends, ledger_held, ledger_posts
-- Ledger plans: a batch held after the plan ended, a batch held twice, a batch with no
-- postings, a posting to itself or of a non-positive amount (LEDGER_PLAN_MISMATCH); an end
-- with no batch held, a second end, an end that lists other batches than were held.
WITH first_end AS (
    SELECT plan_id, min(ord) AS end_ord, arg_min(is_commit, ord) AS is_commit
    FROM ledger_ends
    GROUP BY plan_id
),
held_before_end AS (
    SELECT h.plan_id, list(h.batch_id ORDER BY h.batch_id) AS batch_ids
    FROM ledger_held h JOIN first_end f ON f.plan_id = h.plan_id AND h.ord < f.end_ord
    GROUP BY h.plan_id
)
SELECT 'INVALID_TRANSITION' AS code, h.event_id, 'ledger_plan:' || h.plan_id AS subject,
    'ledger_plan.batch_held is not allowed in status '
        || CASE WHEN f.is_commit THEN 'committed' ELSE 'rolled_back' END AS detail
FROM ledger_held h JOIN first_end f ON f.plan_id = h.plan_id AND h.ord > f.end_ord
UNION ALL
SELECT 'LEDGER_PLAN_MISMATCH', h.event_id, 'ledger_plan:' || h.plan_id,
    'batch ' || h.batch_id || ' is held twice'
FROM ledger_held h
JOIN (
    SELECT plan_id, batch_id, min(ord) AS first_ord
    FROM ledger_held
    GROUP BY plan_id, batch_id
    HAVING count(*) > 1
) d ON d.plan_id = h.plan_id AND d.batch_id = h.batch_id AND h.ord > d.first_ord
UNION ALL
SELECT 'LEDGER_PLAN_MISMATCH', event_id, 'ledger_plan:' || plan_id,
    'batch ' || batch_id || ' has no postings'
FROM ledger_held
WHERE len(postings) = 0
UNION ALL
SELECT 'LEDGER_PLAN_MISMATCH', event_id, 'ledger_plan:' || plan_id,
    'posting ' || posting_index || ' moves ' || amount || ' from ' || from_account || ' to itself'
FROM ledger_posts
WHERE from_account = to_account
UNION ALL
SELECT 'LEDGER_PLAN_MISMATCH', event_id, 'ledger_plan:' || plan_id,
    'posting ' || posting_index || ' (' || from_account || ' → ' || to_account || ') has amount '
        || amount || ' <= 0'
FROM ledger_posts
WHERE amount <= 0
UNION ALL
SELECT
    CASE
        WHEN x.ord > f.end_ord OR b.plan_id IS NULL THEN 'INVALID_TRANSITION'
        ELSE 'LEDGER_PLAN_MISMATCH'
    END,
    x.event_id,
    'ledger_plan:' || x.plan_id,
    CASE
        WHEN x.ord > f.end_ord THEN
            CASE WHEN x.is_commit THEN 'commit' ELSE 'rollback' END
            || ' of a plan already '
            || CASE WHEN f.is_commit THEN 'committed' ELSE 'rolled_back' END
            || ': a plan ends once'
        WHEN b.plan_id IS NULL THEN x.kind || ' is not allowed in status no batch held'
        ELSE CASE WHEN x.is_commit THEN 'commit' ELSE 'rollback' END
            || ' lists batches ' || list_sort(x.batch_ids)::VARCHAR
            || ' but ' || b.batch_ids::VARCHAR || ' were held'
    END
FROM ledger_ends x
JOIN first_end f ON f.plan_id = x.plan_id
LEFT JOIN held_before_end b ON b.plan_id = x.plan_id
WHERE x.ord > f.end_ord OR b.plan_id IS NULL OR list_sort(x.batch_ids) <> b.batch_ids
