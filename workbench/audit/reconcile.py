"""Payout reconciliation: per account and per day, what the orders settled, what the ledger
committed, what was paid out, and the differences (which must be zero; there is no tolerance).

* ``orders_settled``: what the catalog says completed orders move on the account that day (3.3):
  a payin credits the client ``settlement - fee`` and debits the trader ``settlement - reward``;
  a payout debits the client ``settlement + fee`` and credits the trader ``settlement + reward``;
  a dispute reversed takes it back on the day it is resolved.
* ``ledger_orders``: the committed postings of order plans (``order:*``, ``reverse:order:*``) on
  the account, by the day the plan was committed.
* ``paid_out``: payouts confirmed that day (``amount + fee`` leaving the account), less the ones
  cancelled after confirmation (reverted) that day.
* ``ledger_paid_out``: what the payout plans (``payout:*``, ``revert:payout:*``) committed out of
  the account that day.
* ``top_ups``: money that entered the account from outside (``topup:*`` plans), for the balance.

Each figure is an exact sum; one past int64 (the audit's ``AMOUNT_OVERFLOW``) is NULL here.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from ..replay import store

RECONCILIATION = """
WITH done AS (
    SELECT o.order_id, o.direction, o.client_id, a.trader_id, a.settlement_currency AS currency,
           a.settlement_amount AS s, a.platform_fee AS fee, a.trader_reward AS reward,
           o.completed_at, o.dispute_outcome, o.resolved_at
    FROM payment_orders o
    JOIN order_attempts a ON a.order_id = o.order_id AND a.outcome = 'completed'
),
orders AS (
    SELECT 'client:' || client_id AS account, currency, completed_at::DATE AS day,
           CASE direction WHEN 'payin' THEN s - fee ELSE -(s + fee) END AS amount FROM done
    UNION ALL
    SELECT 'trader:' || trader_id, currency, completed_at::DATE,
           CASE direction WHEN 'payin' THEN -(s - reward) ELSE s + reward END FROM done
    UNION ALL
    SELECT 'client:' || client_id, currency, resolved_at::DATE,
           CASE direction WHEN 'payin' THEN -(s - fee) ELSE s + fee END
    FROM done WHERE dispute_outcome = 'reversed'
    UNION ALL
    SELECT 'trader:' || trader_id, currency, resolved_at::DATE,
           CASE direction WHEN 'payin' THEN s - reward ELSE -(s + reward) END
    FROM done WHERE dispute_outcome = 'reversed'
),
posted AS (
    SELECT lp.plan_id, acct AS account, lp.currency, pl.ended_at::DATE AS day, amt
    FROM (
        SELECT plan_id, currency, batch_status, from_account AS acct, -amount AS amt FROM ledger_postings
        UNION ALL SELECT plan_id, currency, batch_status, to_account, amount FROM ledger_postings
    ) lp
    JOIN ledger_plans pl USING (plan_id)
    WHERE lp.batch_status = 'committed' AND (acct LIKE 'client:%' OR acct LIKE 'trader:%')
),
paid AS (
    SELECT owner AS account, currency, confirmed_at::DATE AS day, amount + fee AS amount
    FROM payouts WHERE confirmed_at IS NOT NULL
    UNION ALL
    SELECT owner, currency, ended_at::DATE, -(amount + fee)
    FROM payouts WHERE status = 'cancelled' AND cancelled_from = 'confirmed'
),
keys AS (
    SELECT account, currency, day FROM orders UNION SELECT account, currency, day FROM posted
    UNION SELECT account, currency, day FROM paid
)
SELECT k.account, k.currency, k.day,
       TRY_CAST(coalesce((SELECT sum(amount) FROM orders o WHERE o.account = k.account AND o.currency = k.currency AND o.day = k.day), 0) AS BIGINT) AS orders_settled,
       TRY_CAST(coalesce((SELECT sum(amt) FROM posted p WHERE p.account = k.account AND p.currency = k.currency AND p.day = k.day
                 AND (p.plan_id LIKE 'order:%' OR p.plan_id LIKE 'reverse:order:%')), 0) AS BIGINT) AS ledger_orders,
       TRY_CAST(coalesce((SELECT sum(amount) FROM paid x WHERE x.account = k.account AND x.currency = k.currency AND x.day = k.day), 0) AS BIGINT) AS paid_out,
       TRY_CAST(coalesce((SELECT -sum(amt) FROM posted p WHERE p.account = k.account AND p.currency = k.currency AND p.day = k.day
                 AND (p.plan_id LIKE 'payout:%' OR p.plan_id LIKE 'revert:payout:%')), 0) AS BIGINT) AS ledger_paid_out,
       TRY_CAST(coalesce((SELECT sum(amt) FROM posted p WHERE p.account = k.account AND p.currency = k.currency AND p.day = k.day
                 AND p.plan_id LIKE 'topup:%'), 0) AS BIGINT) AS top_ups
FROM keys k
WHERE k.day IS NOT NULL
ORDER BY k.account, k.currency, k.day
"""


def reconcile_payouts(db: str | Path | duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The reconciliation table (see the module doc), with ``orders_difference`` and
    ``payouts_difference`` columns; a row with a non-zero difference needs an explanation."""
    con = db if isinstance(db, duckdb.DuckDBPyConnection) else store.connect(db, read_only=True)
    try:
        frame = pl.from_arrow(con.sql(RECONCILIATION).to_arrow_table())
    finally:
        if con is not db:
            con.close()
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(
        (pl.col("orders_settled") - pl.col("ledger_orders")).alias("orders_difference"),
        (pl.col("paid_out") - pl.col("ledger_paid_out")).alias("payouts_difference"),
    )
