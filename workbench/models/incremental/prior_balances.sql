-- produces: prior_balances
-- reads: account_balances, account_exact
-- Every account's exact balances before a batch (`account_balances`; `account_exact` where a
-- figure is NULL because it is past int64): the running-balance rules run on from them with the
-- batch's own ledger effects. Empty in a full build.
SELECT a.account, a.currency, coalesce(x.own, a.own::HUGEINT) AS own,
    coalesce(x.held, a.held::HUGEINT) AS held
FROM account_balances a
LEFT JOIN account_exact x ON x.account = a.account AND x.currency = a.currency
