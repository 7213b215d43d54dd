-- produces: overflow_violations
-- scope: ledger
-- reads: batch_end, hold_events, ledger_events, ledger_posts, prior_balances, prior_holds, prior_overflows, prior_traders, trader_events
-- AMOUNT_OVERFLOW: a trader's deposit figures or a ledger account's balances left int64, once
-- per figure (`prior_overflows`: those already on record). The figures run on from the stored
-- state (`prior_traders` and `prior_holds` for deposits, `prior_balances` for accounts; all empty
-- in a full build) with the `fresh` events' effects. Only the traders and accounts whose figures
-- *could* leave int64 are followed event by event: no figure can exceed its starting figures
-- plus twice the sum of the absolute amounts that moved it, so the others (all of them, on real
-- data) are ruled out by one aggregate. A trader's `held` moves by the amount a hold event
-- leaves on its ref less what was open on the ref before (`hold_events`).
WITH tm AS MATERIALIZED (
    SELECT *, {{ D_BALANCE }} AS d_balance
    FROM (
        SELECT aggregate_id, ord, event_id, kind, j.ref AS ref, j.amount::HUGEINT AS amount
        FROM trader_events
        WHERE kind IN ({{ MONEY_KINDS }}) AND fresh
    )
),
held0 AS (
    SELECT trader_id, sum(amount::HUGEINT) AS held, sum(abs(amount::HUGEINT)) AS abs_held
    FROM prior_holds
    WHERE last_kind = 'trader.hold_placed'
    GROUP BY trader_id
),
tm_big AS (
    SELECT tm.aggregate_id
    FROM tm
    LEFT JOIN prior_traders p ON p.trader_id = tm.aggregate_id
    LEFT JOIN held0 h ON h.trader_id = tm.aggregate_id
    GROUP BY tm.aggregate_id
    HAVING 2 * sum(abs(tm.amount)) + abs(coalesce(any_value(p.exact_balance), 0))
        + 2 * coalesce(any_value(h.abs_held), 0) > {{ INT64_MAX }}
),
tm_run AS (
    SELECT t.aggregate_id, t.ord, t.event_id, t.kind, t.ref,
        coalesce(p.exact_balance, 0) + sum(t.d_balance) OVER w AS balance,
        coalesce(h.held, 0) + sum(t.d_held) OVER w AS held
    FROM (
        SELECT tm.*,
            CASE WHEN tm.kind = 'trader.hold_placed' THEN tm.amount ELSE 0 END
                - CASE WHEN he.was_open THEN he.held::HUGEINT ELSE 0 END AS d_held
        FROM tm
        LEFT JOIN hold_events he ON he.event_id = tm.event_id
        WHERE tm.aggregate_id IN (SELECT aggregate_id FROM tm_big)
    ) t
    LEFT JOIN prior_traders p ON p.trader_id = t.aggregate_id
    LEFT JOIN held0 h ON h.trader_id = t.aggregate_id
    WINDOW w AS (PARTITION BY t.aggregate_id ORDER BY t.ord ROWS UNBOUNDED PRECEDING)
),
deposit_over AS (
    SELECT * FROM tm_run r
    WHERE {{ out_of_int64("r.balance", "r.held") }}
        AND NOT EXISTS (
            SELECT 1 FROM prior_overflows v
            WHERE v.subject = 'trader:' || r.aggregate_id
                AND starts_with(v.detail, 'deposit_balance '))
    QUALIFY row_number() OVER (PARTITION BY aggregate_id ORDER BY ord) = 1
),
-- ledger accounts: the effects of every posting, as the account book applies them
acct_fx AS MATERIALIZED (
    SELECT p.from_account AS account, p.currency, p.ord, 0::HUGEINT AS d_own,
        p.amount::HUGEINT AS d_held
    FROM ledger_posts p
    WHERE p.fresh
    UNION ALL
    SELECT p.from_account, p.currency, b.end_ord,
        CASE WHEN b.is_commit THEN -(p.amount::HUGEINT) ELSE 0 END, -(p.amount::HUGEINT)
    FROM ledger_posts p
    JOIN batch_end b ON b.held_ord = p.ord AND b.end_fresh
    UNION ALL
    SELECT p.to_account, p.currency, b.end_ord, p.amount::HUGEINT, 0
    FROM ledger_posts p
    JOIN batch_end b ON b.held_ord = p.ord AND b.is_commit AND b.end_fresh
),
acct_big AS (
    SELECT f.account, f.currency
    FROM acct_fx f
    LEFT JOIN prior_balances pb ON pb.account = f.account AND pb.currency = f.currency
    GROUP BY ALL
    HAVING 2 * sum(abs(f.d_own) + abs(f.d_held)) + abs(coalesce(any_value(pb.own), 0))
        + abs(coalesce(any_value(pb.held), 0)) > {{ INT64_MAX }}
),
acct_run AS (
    SELECT x.account, x.currency, x.ord,
        coalesce(pb.own, 0) + sum(x.d_own) OVER w AS own,
        coalesce(pb.held, 0) + sum(x.d_held) OVER w AS held
    FROM (SELECT account, currency, ord, sum(d_own) AS d_own, sum(d_held) AS d_held
          FROM acct_fx SEMI JOIN acct_big USING (account, currency) GROUP BY ALL) x
    LEFT JOIN prior_balances pb ON pb.account = x.account AND pb.currency = x.currency
    WINDOW w AS (PARTITION BY x.account, x.currency ORDER BY x.ord ROWS UNBOUNDED PRECEDING)
),
acct_over AS (
    SELECT * FROM acct_run r
    WHERE {{ out_of_int64("r.own", "r.held") }}
        AND NOT EXISTS (
            SELECT 1 FROM prior_overflows v
            WHERE v.subject = r.account
                AND starts_with(v.detail, r.account || ' ' || r.currency || ' own '))
    QUALIFY row_number() OVER (PARTITION BY account, currency ORDER BY ord) = 1
)
SELECT 'AMOUNT_OVERFLOW' AS code, event_id, 'trader:' || aggregate_id AS subject,
    {{ deposit_overflow_detail("balance", "held", "kind", "ref") }} AS detail
FROM deposit_over
UNION ALL
SELECT 'AMOUNT_OVERFLOW', l.event_id, o.account,
    {{ account_overflow_detail("o.account", "o.currency", "o.own", "o.held", "l.kind", "l.plan_id") }}
FROM acct_over o JOIN ledger_events l ON l.ord = o.ord
