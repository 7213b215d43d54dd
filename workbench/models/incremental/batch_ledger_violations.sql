-- produces: batch_ledger_violations
-- reads: account_balances, account_exact, batch_end, batch_new, ev, ledger_events, ledger_posts, violations
-- NEGATIVE_AVAILABLE and the accounts' AMOUNT_OVERFLOW for the batch's own ledger effects, run
-- on from the balances before it (`account_balances`, not yet updated; the exact figures in
-- `account_exact` where it holds NULL). `negative_violations` and `overflow_violations` run
-- the same effects from zero over the whole ledger. An account overflows once: not again if a
-- violation already says it did. Reads the staging tables built over the batch's scope.
WITH fresh AS (SELECT ev.ord FROM ev SEMI JOIN batch_new b ON b.event_id = ev.event_id),
effects AS (
    SELECT p.from_account AS account, p.currency, p.ord, 0::HUGEINT AS d_own,
        p.amount::HUGEINT AS d_held
    FROM ledger_posts p
    UNION ALL
    SELECT p.from_account, p.currency, b.end_ord,
        CASE WHEN b.is_commit THEN -(p.amount::HUGEINT) ELSE 0 END, -(p.amount::HUGEINT)
    FROM ledger_posts p JOIN batch_end b ON b.held_ord = p.ord
    UNION ALL
    SELECT p.to_account, p.currency, b.end_ord, p.amount::HUGEINT, 0
    FROM ledger_posts p JOIN batch_end b ON b.held_ord = p.ord AND b.is_commit
),
touched AS (
    SELECT account, currency, ord, sum(d_own) AS d_own, sum(d_held) AS d_held
    FROM effects
    WHERE ord IN (SELECT ord FROM fresh)
    GROUP BY account, currency, ord
),
running AS (
    SELECT t.account, t.currency, t.ord,
        coalesce(x.own, a.own, 0) + sum(t.d_own) OVER w AS own,
        coalesce(x.held, a.held, 0) + sum(t.d_held) OVER w AS held
    FROM touched t
    LEFT JOIN account_balances a ON a.account = t.account AND a.currency = t.currency
    LEFT JOIN account_exact x ON x.account = t.account AND x.currency = t.currency
    WINDOW w AS (PARTITION BY t.account, t.currency ORDER BY t.ord ROWS UNBOUNDED PRECEDING)
),
over AS (
    SELECT * FROM running r
    WHERE {{ out_of_int64("r.own", "r.held") }}
        AND NOT EXISTS (
            SELECT 1 FROM violations v
            WHERE v.code = 'AMOUNT_OVERFLOW' AND v.subject = r.account
                AND starts_with(v.detail, r.account || ' ' || r.currency || ' own '))
    QUALIFY row_number() OVER (PARTITION BY account, currency ORDER BY ord) = 1
)
SELECT 'NEGATIVE_AVAILABLE' AS code, l.event_id, r.account AS subject,
    {{ negative_detail("r.account", "r.currency", "r.own", "r.held", "l.kind", "l.plan_id") }} AS detail
FROM running r JOIN ledger_events l ON l.ord = r.ord
WHERE r.own - r.held < 0 AND (starts_with(r.account, 'client:') OR starts_with(r.account, 'trader:'))
UNION ALL
SELECT 'AMOUNT_OVERFLOW', l.event_id, o.account,
    {{ account_overflow_detail("o.account", "o.currency", "o.own", "o.held", "l.kind", "l.plan_id") }}
FROM over o JOIN ledger_events l ON l.ord = o.ord
