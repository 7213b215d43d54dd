-- produces: overflow_violations
-- scope: ledger
-- reads: batch_end, ledger_events, ledger_posts, trader_events
-- AMOUNT_OVERFLOW: a trader's deposit figures or a ledger account's balances left int64. Only
-- the traders and accounts whose figures *could* leave it are followed event by event: no
-- figure can exceed twice the sum of the absolute amounts that ever moved it, so the others
-- (all of them, on real data) are ruled out by one aggregate. A trader's `held` moves by the
-- amount a hold event leaves on its ref less what the ref's previous hold event left there.
WITH tm AS MATERIALIZED (
    SELECT aggregate_id, ord, event_id, kind, j.ref AS ref, j.amount::HUGEINT AS amount
    FROM trader_events
    WHERE kind IN ({{ MONEY_KINDS }})
),
tm_big AS (
    SELECT aggregate_id FROM tm GROUP BY aggregate_id HAVING 2 * sum(abs(amount)) > {{ INT64_MAX }}
),
tm_run AS (
    SELECT aggregate_id, ord, event_id, kind, ref,
        sum(d_balance) OVER w AS balance, sum(d_held) OVER w AS held
    FROM (
        SELECT *, {{ D_BALANCE }} AS d_balance,
            CASE WHEN kind IN ({{ HOLD_KINDS }})
                THEN placed - coalesce(lag(placed) OVER (
                    PARTITION BY aggregate_id, ref, kind IN ({{ HOLD_KINDS }}) ORDER BY ord), 0)
                ELSE 0 END AS d_held
        FROM (
            SELECT *, CASE WHEN kind = 'trader.hold_placed' THEN amount ELSE 0 END AS placed
            FROM tm
            WHERE aggregate_id IN (SELECT aggregate_id FROM tm_big)
        )
    )
    WINDOW w AS (PARTITION BY aggregate_id ORDER BY ord ROWS UNBOUNDED PRECEDING)
),
deposit_over AS (
    SELECT * FROM tm_run
    WHERE {{ out_of_int64("balance", "held") }}
    QUALIFY row_number() OVER (PARTITION BY aggregate_id ORDER BY ord) = 1
),
-- ledger accounts: the effects of every posting, as the account book applies them
acct_big AS (
    SELECT account, currency
    FROM (
        SELECT from_account AS account, currency, abs(amount::HUGEINT) AS a FROM ledger_posts
        UNION ALL
        SELECT to_account, currency, abs(amount::HUGEINT) FROM ledger_posts
    )
    GROUP BY ALL
    HAVING 2 * sum(a) > {{ INT64_MAX }}
),
acct_fx AS (
    SELECT p.from_account AS account, p.currency, p.ord, 0::HUGEINT AS d_own,
        p.amount::HUGEINT AS d_held
    FROM ledger_posts p
    SEMI JOIN acct_big g ON g.account = p.from_account AND g.currency = p.currency
    UNION ALL
    SELECT p.from_account, p.currency, b.end_ord,
        CASE WHEN b.is_commit THEN -(p.amount::HUGEINT) ELSE 0 END, -(p.amount::HUGEINT)
    FROM ledger_posts p
    SEMI JOIN acct_big g ON g.account = p.from_account AND g.currency = p.currency
    JOIN batch_end b ON b.held_ord = p.ord
    UNION ALL
    SELECT p.to_account, p.currency, b.end_ord, p.amount::HUGEINT, 0
    FROM ledger_posts p
    SEMI JOIN acct_big g ON g.account = p.to_account AND g.currency = p.currency
    JOIN batch_end b ON b.held_ord = p.ord AND b.is_commit
),
acct_run AS (
    SELECT account, currency, ord, sum(d_own) OVER w AS own, sum(d_held) OVER w AS held
    FROM (SELECT account, currency, ord, sum(d_own) AS d_own, sum(d_held) AS d_held
          FROM acct_fx GROUP BY ALL)
    WINDOW w AS (PARTITION BY account, currency ORDER BY ord ROWS UNBOUNDED PRECEDING)
),
acct_over AS (
    SELECT * FROM acct_run
    WHERE {{ out_of_int64("own", "held") }}
    QUALIFY row_number() OVER (PARTITION BY account, currency ORDER BY ord) = 1
)
SELECT 'AMOUNT_OVERFLOW' AS code, event_id, 'trader:' || aggregate_id AS subject,
    {{ deposit_overflow_detail("balance", "held", "kind", "ref") }} AS detail
FROM deposit_over
UNION ALL
SELECT 'AMOUNT_OVERFLOW', l.event_id, o.account,
    {{ account_overflow_detail("o.account", "o.currency", "o.own", "o.held", "l.kind", "l.plan_id") }}
FROM acct_over o JOIN ledger_events l ON l.ord = o.ord
