-- produces: account_exact
-- reads: account_balances, ledger_postings
-- The exact balances of the accounts whose row holds NULL because a figure is past int64, from
-- `ledger_postings` before the batch (so run before `ledger_postings` takes the batch).
SELECT s.account, s.currency, s.own, s.held
FROM ({% include 'account_sums.sql' %}) s
SEMI JOIN (
    SELECT account, currency FROM account_balances
    WHERE own IS NULL OR held IS NULL OR available IS NULL
) n ON n.account = s.account AND n.currency = s.currency
