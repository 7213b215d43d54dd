SELECT account, currency, sum(own) AS own, sum(held) AS held
FROM (
    SELECT from_account AS account, currency,
           CASE WHEN batch_status = 'committed' THEN -(amount::HUGEINT) ELSE 0 END AS own,
           CASE WHEN batch_status = 'held' THEN amount::HUGEINT ELSE 0 END AS held
    FROM ledger_postings
    UNION ALL
    SELECT to_account, currency, amount::HUGEINT, 0
    FROM ledger_postings
    WHERE batch_status = 'committed'
)
GROUP BY account, currency
