-- produces: negative_violations
-- scope: ledger
-- reads: batch_end, ledger_events, ledger_posts, prior_balances
-- NEGATIVE_AVAILABLE: a client or trader account whose available amount (own - held) goes below
-- zero, event by event in log order (`batch_end` says when each held batch's amounts move). The
-- balances run on from `prior_balances` (empty in a full build; the stored balances when a batch
-- is appended, whose own effects, the `fresh` ones, are then all that moves them). The running
-- balances are one cumulative sum in (id, ord) order minus the sums of the accounts before (much
-- cheaper than a window partitioned by account); the accounts are numbered once (materialized)
-- so every reference sees the same numbering.
WITH accounts AS MATERIALIZED (
    SELECT account, currency, row_number() OVER () AS id
    FROM (
        SELECT from_account AS account, currency FROM ledger_posts
        UNION
        SELECT to_account, currency FROM ledger_posts
    )
    WHERE starts_with(account, 'client:') OR starts_with(account, 'trader:')
),
effects AS (
    SELECT a.id, p.ord, 0 AS d_own, p.amount AS d_held
    FROM ledger_posts p JOIN accounts a ON a.account = p.from_account AND a.currency = p.currency
    WHERE p.fresh
    UNION ALL
    SELECT a.id, b.end_ord, CASE WHEN b.is_commit THEN -(p.amount::HUGEINT) ELSE 0 END,
        -(p.amount::HUGEINT)
    FROM ledger_posts p
    JOIN batch_end b ON b.held_ord = p.ord AND b.end_fresh
    JOIN accounts a ON a.account = p.from_account AND a.currency = p.currency
    UNION ALL
    SELECT a.id, b.end_ord, p.amount, 0
    FROM ledger_posts p
    JOIN batch_end b ON b.held_ord = p.ord AND b.is_commit AND b.end_fresh
    JOIN accounts a ON a.account = p.to_account AND a.currency = p.currency
),
touched AS MATERIALIZED (
    SELECT id, ord, sum(d_own) AS d_own, sum(d_held) AS d_held
    FROM effects
    GROUP BY id, ord
),
offsets AS (
    SELECT id,
        coalesce(sum(sum(d_own)) OVER o, 0) AS own,
        coalesce(sum(sum(d_held)) OVER o, 0) AS held
    FROM touched
    GROUP BY id
    WINDOW o AS (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
running AS (
    SELECT a.account, a.currency, r.ord,
        coalesce(pb.own, 0) + r.own - o.own AS own,
        coalesce(pb.held, 0) + r.held - o.held AS held
    FROM (
        SELECT id, ord, sum(d_own) OVER w AS own, sum(d_held) OVER w AS held
        FROM touched
        WINDOW w AS (ORDER BY id, ord ROWS UNBOUNDED PRECEDING)
    ) r
    JOIN offsets o ON o.id = r.id
    JOIN accounts a ON a.id = r.id
    LEFT JOIN prior_balances pb ON pb.account = a.account AND pb.currency = a.currency
),
negative AS (
    SELECT * FROM running WHERE own - held < 0
)
SELECT 'NEGATIVE_AVAILABLE' AS code, l.event_id, n.account AS subject,
    {{ negative_detail("n.account", "n.currency", "n.own", "n.held", "l.kind", "l.plan_id") }} AS detail
FROM negative n JOIN ledger_events l ON l.ord = n.ord
