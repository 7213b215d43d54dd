-- check: NEGATIVE_AVAILABLE
-- severity: high
-- reads: events, ledger_plans, ledger_postings, violations
-- A `client:*` or `trader:*` account whose available amount went below zero (raised by the
-- violations projection, workbench/models/violations/), proven by the event that made it negative
-- and the open holds that were debiting the account at that moment (largest first, at most
-- three): the reason it went below zero. `amount_delta` is the available amount.
WITH n AS (
    SELECT x.subject, x.event_id, x.detail, e.position AS pos,
           -- the sentence prints the amount with exactly the currency's decimals (format_money),
           -- so its digits without separators are the exact minor units
           TRY_CAST(replace(replace(regexp_extract(x.detail, 'available (-?[0-9,.]+) ([A-Z]+)', 1), ',', ''), '.', '')
                    AS BIGINT) AS available,
           regexp_extract(x.detail, 'available (-?[0-9,.]+) ([A-Z]+)', 2) AS currency
    FROM violations x JOIN events e USING (event_id)
    WHERE x.code = 'NEGATIVE_AVAILABLE'
),
holds AS (
    SELECT n.event_id, lp.held_event_id, lp.amount
    FROM n
    JOIN ledger_postings lp ON lp.from_account = n.subject AND lp.currency = n.currency
    JOIN events h ON h.event_id = lp.held_event_id AND h.position <= n.pos
    JOIN ledger_plans pl ON pl.plan_id = lp.plan_id
    LEFT JOIN events e ON e.event_id = pl.end_event_id
    WHERE (e.position IS NULL OR e.position >= n.pos) AND lp.held_event_id <> n.event_id
    QUALIFY row_number() OVER (PARTITION BY n.event_id ORDER BY lp.amount DESC, lp.held_event_id) <= 3
)
SELECT 'NEGATIVE_AVAILABLE', n.subject, n.event_id,
       list_concat([n.event_id], coalesce((SELECT list(h.held_event_id ORDER BY h.amount DESC, h.held_event_id)
                                           FROM holds h WHERE h.event_id = n.event_id), [])),
       n.available, n.currency, n.detail
FROM n
