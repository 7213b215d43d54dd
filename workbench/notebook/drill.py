"""From a figure to what makes it up: a reconciliation row (an account on a day) to the orders,
payouts, ledger plans and postings behind it (:func:`drill`), and the rows that need it most
(:func:`largest_differences`).

Each part is read from the projections directly, row by row, with the catalog's rules
(3.3) written out again, not through :data:`workbench.audit.reconcile.RECONCILIATION`: the
parts add up to the row's figures (:meth:`Drill.totals`), and a test holds them to it, so the
drill-down and the reconciliation check each other. Money stays integer minor units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from ..domain.money import format_money
from .database import connect, read
from .scope import as_day
from .tables import Table, table

#: What the postings of a plan count as in the reconciliation, by the plan id's prefix.
PLAN_CATEGORIES: dict[str, str] = {
    "order": "orders",
    "reverse": "orders",
    "payout": "payouts",
    "revert": "payouts",
    "topup": "top_ups",
}

PLANS_SQL = """
SELECT l.plan_id, l.status, l.created_at, l.ended_at, l.batches, l.postings
FROM ledger_plans l
WHERE l.plan_id IN (SELECT plan_id FROM ledger_postings WHERE from_account = $account OR to_account = $account)
  AND (l.ended_at::DATE = $day OR (l.ended_at IS NULL AND l.created_at::DATE = $day))
ORDER BY coalesce(l.ended_at, l.created_at), l.plan_id
"""

POSTINGS_SQL = """
SELECT p.plan_id, p.batch_id, p.posting_index, p.batch_status, p.from_account, p.to_account,
       p.currency, p.amount, p.description, p.held_at
FROM ledger_postings p
WHERE (p.from_account = $account OR p.to_account = $account)
  AND p.plan_id IN (SELECT plan_id FROM plans)
ORDER BY p.plan_id, p.batch_id, p.posting_index
"""

#: The order a plan books (``order:ID:N``, ``reverse:order:ID``) or the payout
#: (``payout:ID``, ``revert:payout:ID``).
ORDER_OF_PLAN = r"^(?:reverse:)?order:([^:]+)(?::[0-9]+)?$"
PAYOUT_OF_PLAN = r"^(?:revert:)?payout:([^:]+)$"

ORDERS_SQL = f"""
WITH linked AS (
    SELECT DISTINCT regexp_extract(plan_id, '{ORDER_OF_PLAN}', 1) AS order_id FROM plans
    WHERE regexp_matches(plan_id, '{ORDER_OF_PLAN}')
),
o AS (
    SELECT o.order_id, o.direction, o.client_id, a.trader_id,
           coalesce(a.settlement_currency, o.settlement_currency) AS currency,
           a.settlement_amount AS settlement, a.platform_fee AS fee, a.trader_reward AS reward,
           o.status, o.completed_at, o.dispute_outcome, o.resolved_at
    FROM payment_orders o
    LEFT JOIN order_attempts a ON a.order_id = o.order_id AND a.outcome = 'completed'
    WHERE o.order_id IN (SELECT order_id FROM linked)
       OR ('client:' || o.client_id = $account AND o.completed_at::DATE = $day)
       OR ('client:' || o.client_id = $account AND o.resolved_at::DATE = $day)
       OR ('trader:' || a.trader_id = $account AND (o.completed_at::DATE = $day OR o.resolved_at::DATE = $day))
)
SELECT order_id, direction, status, client_id, trader_id, currency, settlement, fee, reward,
       coalesce(settlement IS NOT NULL AND completed_at::DATE = $day, false) AS completed_on_day,
       coalesce(settlement IS NOT NULL AND dispute_outcome = 'reversed'
                AND resolved_at::DATE = $day, false) AS reversed_on_day,
       completed_at, resolved_at
FROM o
ORDER BY coalesce(completed_at, resolved_at), order_id
"""

PAYOUTS_SQL = f"""
WITH linked AS (
    SELECT DISTINCT regexp_extract(plan_id, '{PAYOUT_OF_PLAN}', 1) AS payout_id FROM plans
    WHERE regexp_matches(plan_id, '{PAYOUT_OF_PLAN}')
)
SELECT payout_id, owner AS account, status, cancelled_from, currency, amount, fee,
       created_at, confirmed_at, ended_at, details
FROM payouts
WHERE payout_id IN (SELECT payout_id FROM linked)
   OR (owner = $account AND (
        confirmed_at::DATE = $day
        OR (status = 'cancelled' AND cancelled_from = 'confirmed' AND ended_at::DATE = $day)))
ORDER BY coalesce(confirmed_at, ended_at, created_at), payout_id
"""


@dataclass(frozen=True)
class Drill:
    """What makes up one reconciliation row: ``account`` on ``day`` (UTC), in ``currency``.

    * ``orders``: the orders that moved the account that day or whose ledger plans ended that
      day, each with ``settled``: what its completion (or dispute reversed) that day moves on
      the account by the catalog (3.3), ``ledger``: what its plans committed on the account
      that day, and ``difference``;
    * ``payouts``: the account's payouts confirmed that day, cancelled after confirmation that
      day, or whose payout plans ended that day, each with ``paid_out`` (amount + fee when
      confirmed that day, minus it when cancelled after confirmation that day), ``ledger``
      (what its plans took out of the account that day) and ``difference``;
    * ``plans``: the ledger plans touching the account that ended that day (or opened that day
      and are still open), each with ``category`` (orders, payouts, top_ups) and ``amount``:
      its committed effect on the account;
    * ``postings``: those plans' postings on the account, ``amount`` signed for the account
      (credit +, debit −), ``counted`` when committed (what the ledger columns sum).
    """

    account: str
    day: date
    currency: str | None
    orders: pl.DataFrame
    payouts: pl.DataFrame
    plans: pl.DataFrame
    postings: pl.DataFrame

    def totals(self) -> dict[str, int]:
        """The reconciliation row's figures: the orders' and payouts' from those parts, the
        ledger's from the postings (one currency: give :func:`drill` the row's currency when
        the account holds several)."""
        found = {
            c
            for part in (self.orders, self.payouts, self.postings)
            for c in part["currency"].drop_nulls().unique().to_list()
        }
        if len(found) > 1:
            raise ValueError(
                f"{self.account} on {self.day} moved {', '.join(sorted(found))}: "
                "drill one currency at a time (currency=...)"
            )
        counted = self.postings.filter(pl.col("counted"))

        def ledger(category: str) -> int:
            return int(counted.filter(pl.col("category") == category)["amount"].sum())

        settled, orders = int(self.orders["settled"].sum()), ledger("orders")
        paid_out, paid_out_ledger = int(self.payouts["paid_out"].sum()), -ledger("payouts")
        return {
            "orders_settled": settled,
            "ledger_orders": orders,
            "paid_out": paid_out,
            "ledger_paid_out": paid_out_ledger,
            "top_ups": ledger("top_ups"),
            "orders_difference": settled - orders,
            "payouts_difference": paid_out - paid_out_ledger,
        }

    def behind(self) -> Drill:
        """Only what does not reconcile: the orders and payouts whose own figures differ from
        what their plans committed that day, with those plans and postings."""
        orders = self.orders.filter(pl.col("difference") != 0)
        payouts = self.payouts.filter(pl.col("difference") != 0)
        order_of = pl.col("plan_id").str.extract(ORDER_OF_PLAN, 1)
        payout_of = pl.col("plan_id").str.extract(PAYOUT_OF_PLAN, 1)
        theirs = order_of.is_in(orders["order_id"].implode()).fill_null(False) | payout_of.is_in(
            payouts["payout_id"].implode()
        ).fill_null(False)
        return Drill(
            account=self.account,
            day=self.day,
            currency=self.currency,
            orders=orders,
            payouts=payouts,
            plans=self.plans.filter(theirs),
            postings=self.postings.filter(theirs),
        )

    def subjects(self) -> list[str]:
        """The audit subjects of its orders, payouts and plans (``payment_order:…``,
        ``payout:…``, ``ledger_plan:…``): to find the findings about them."""
        return sorted(
            {f"payment_order:{o}" for o in self.orders["order_id"].to_list()}
            | {f"payout:{p}" for p in self.payouts["payout_id"].to_list()}
            | {f"ledger_plan:{p}" for p in self.plans["plan_id"].to_list()}
        )

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Whether the parts add up to ``row``'s figures (a row of the reconciliation)."""
        totals = self.totals()
        return all(row.get(k) == v for k, v in totals.items())

    def tables(self, findings: pl.DataFrame | None = None) -> list[Table]:
        """Its parts as tables for reading: payouts, orders, their postings on the account, and
        (given the audit's ``findings``) the findings about them. Call it on :meth:`behind` to
        show only what does not reconcile."""
        out = [
            table(
                self.payouts.select(
                    "payout_id",
                    "status",
                    "cancelled_from",
                    "currency",
                    "paid_out",
                    "ledger",
                    "difference",
                    "confirmed_at",
                    "ended_at",
                    "details",
                ),
                money=["paid_out", "ledger", "difference"],
                title=f"Payouts ({self.payouts.height})",
                labels={"paid_out": "Paid out that day", "ledger": "Ledger paid out"},
            ),
            table(
                self.orders.select(
                    "order_id",
                    "direction",
                    "on_day",
                    "trader_id",
                    "currency",
                    "settlement",
                    "fee",
                    "reward",
                    "settled",
                    "ledger",
                    "difference",
                ),
                money=["settlement", "fee", "reward", "settled", "ledger", "difference"],
                title=f"Orders ({self.orders.height})",
                labels={"on_day": "That day", "settled": "Settled on the account"},
            ),
            table(
                self.postings.select(
                    "plan_id",
                    "batch_status",
                    "from_account",
                    "to_account",
                    "currency",
                    "amount",
                    "description",
                    "held_at",
                ),
                signed=["amount"],
                title=f"Their ledger postings on {self.account} ({self.postings.height})",
                labels={"amount": "Amount (credit +, debit −)"},
            ),
        ]
        if findings is not None:
            about = findings.filter(pl.col("subject").is_in(self.subjects()))
            out.append(
                table(
                    about.select(
                        "finding_id",
                        "check",
                        "severity",
                        "subject",
                        "amount_delta",
                        "currency",
                        "detail",
                    ),
                    title=f"The audit's findings about them ({about.height})",
                    labels={"amount_delta": "Amount at stake"},
                )
            )
        return out

    def summary(self) -> str:
        """The row in a sentence or two: what differs, by how much, and what is behind it."""
        t = self.totals()
        cur = self.currency or next(iter(self.postings["currency"].drop_nulls().to_list()), None)
        parts = []
        for name, what in (("orders_difference", "orders"), ("payouts_difference", "payouts")):
            if t[name]:
                parts.append(f"{what} {format_money(t[name], cur, signed=True)}")
        head = f"{self.account} on {self.day.isoformat()}"
        if not parts:
            return f"{head} reconciles: orders and payouts match the ledger."
        off = self.behind()
        return (
            f"{head} does not reconcile: settled or paid out minus ledger is "
            + " and ".join(parts)
            + f". Behind it: {off.orders.height} order(s) and {off.payouts.height} payout(s) "
            f"whose ledger plans ({off.plans.height}) do not match them."
        )


def drill(db: str | Path, account: str, day: date | str, currency: str | None = None) -> Drill:
    """The orders, payouts, ledger plans and postings behind the reconciliation row of
    ``account`` (e.g. ``client:cl-01``) on ``day`` (a date or ``YYYY-MM-DD``, UTC), in
    ``currency`` (default: every currency the account moved)."""
    when = as_day(day, "day")
    if when is None:
        raise ValueError("drill needs a day")
    params = {"account": account, "day": when}
    con = connect(db)
    try:
        plans = read(con, PLANS_SQL, params)
        con.register("plans", plans.select("plan_id").to_arrow())
        postings = read(con, POSTINGS_SQL, {"account": account})
        orders = read(con, ORDERS_SQL, params)
        payouts = read(con, PAYOUTS_SQL, params)
    finally:
        con.close()
    effects = _posting_effects(postings, plans, account, when)
    out = Drill(
        account=account,
        day=when,
        currency=currency,
        orders=_orders(orders, effects, account),
        payouts=_payouts(payouts, effects, when),
        plans=_plans(plans, effects),
        postings=effects,
    )
    if currency is None:
        return out
    same = pl.col("currency") == currency
    return Drill(
        account=account,
        day=when,
        currency=currency,
        orders=out.orders.filter(same),
        payouts=out.payouts.filter(same),
        plans=out.plans.filter(same | pl.col("currency").is_null()),
        postings=out.postings.filter(same),
    )


def _category() -> pl.Expr:
    prefix = pl.col("plan_id").str.split(":").list.first()
    return prefix.replace_strict(PLAN_CATEGORIES, default="other", return_dtype=pl.String)


def _ledger_by(effects: pl.DataFrame, pattern: str, key: str) -> pl.DataFrame:
    """What the counted postings of each order's (or payout's) plans moved on the account."""
    return (
        effects.filter(pl.col("counted") & pl.col("plan_id").str.contains(pattern))
        .with_columns(pl.col("plan_id").str.extract(pattern, 1).alias(key))
        .group_by(key)
        .agg(pl.col("amount").sum().cast(pl.Int64).alias("ledger"))
    )


def _orders(orders: pl.DataFrame, effects: pl.DataFrame, account: str) -> pl.DataFrame:
    """Each order's effect on ``account`` that day by the catalog (3.3): a payin credits the
    client ``settlement − fee`` and debits the trader ``settlement − reward``; a payout debits
    the client ``settlement + fee`` and credits the trader ``settlement + reward``; a dispute
    reversed takes it back. Beside it, what its plans committed on the account."""
    client = pl.lit("client:") + pl.col("client_id") == account
    trader = pl.lit("trader:") + pl.col("trader_id") == account
    payin = pl.col("direction") == "payin"
    s, fee, reward = pl.col("settlement"), pl.col("fee"), pl.col("reward")
    on_client = pl.when(payin).then(s - fee).otherwise(-(s + fee))
    on_trader = pl.when(payin).then(-(s - reward)).otherwise(s + reward)
    effect = (
        pl.when(client)
        .then(on_client)
        .when(trader.fill_null(False))
        .then(on_trader)
        .otherwise(0)
        .fill_null(0)
    )
    times = pl.col("completed_on_day").cast(pl.Int64) - pl.col("reversed_on_day").cast(pl.Int64)
    events = pl.concat_list(
        pl.when(pl.col("completed_on_day")).then(pl.lit("completed")),
        pl.when(pl.col("reversed_on_day")).then(pl.lit("dispute reversed")),
    ).list.drop_nulls()
    ledger = _ledger_by(effects, ORDER_OF_PLAN, "order_id")
    return (
        orders.with_columns(
            pl.when(events.list.len() > 0)
            .then(events.list.join(", "))
            .otherwise(pl.lit("ledger only"))
            .alias("on_day"),
            (effect * times).cast(pl.Int64).alias("settled"),
        )
        .join(ledger, on="order_id", how="left")
        .with_columns(pl.col("ledger").fill_null(0))
        .with_columns((pl.col("settled") - pl.col("ledger")).alias("difference"))
        .select(
            "order_id",
            "direction",
            "status",
            "on_day",
            "client_id",
            "trader_id",
            "currency",
            "settlement",
            "fee",
            "reward",
            "settled",
            "ledger",
            "difference",
            "completed_at",
            "resolved_at",
        )
    )


def _payouts(payouts: pl.DataFrame, effects: pl.DataFrame, day: date) -> pl.DataFrame:
    """``paid_out``: what each payout counts for on ``day`` (amount + fee when confirmed that
    day, minus it when cancelled after confirmation that day, both when both); ``ledger``: what
    its plans took out of the account that day."""
    total = pl.col("amount") + pl.col("fee")
    confirmed = (pl.col("confirmed_at").dt.date() == day).fill_null(False)
    reverted = (
        (pl.col("status") == "cancelled")
        & (pl.col("cancelled_from") == "confirmed")
        & (pl.col("ended_at").dt.date() == day)
    ).fill_null(False)
    ledger = _ledger_by(effects, PAYOUT_OF_PLAN, "payout_id").with_columns(-pl.col("ledger"))
    return (
        payouts.with_columns(
            (
                pl.when(confirmed).then(total).otherwise(0)
                - pl.when(reverted).then(total).otherwise(0)
            )
            .cast(pl.Int64)
            .alias("paid_out")
        )
        .join(ledger, on="payout_id", how="left")
        .with_columns(pl.col("ledger").fill_null(0))
        .with_columns((pl.col("paid_out") - pl.col("ledger")).alias("difference"))
        .select(
            "payout_id",
            "status",
            "cancelled_from",
            "currency",
            "amount",
            "fee",
            "paid_out",
            "ledger",
            "difference",
            "created_at",
            "confirmed_at",
            "ended_at",
            "details",
        )
    )


def _posting_effects(
    postings: pl.DataFrame, plans: pl.DataFrame, account: str, day: date
) -> pl.DataFrame:
    amount = pl.col("amount")
    into = pl.when(pl.col("to_account") == account).then(amount).otherwise(0)
    out = pl.when(pl.col("from_account") == account).then(amount).otherwise(0)
    ended = plans.select("plan_id", (pl.col("ended_at").dt.date() == day).alias("_ended"))
    counted = (pl.col("batch_status") == "committed") & pl.col("_ended").fill_null(False)
    return (
        postings.join(ended, on="plan_id", how="left")
        .with_columns(
            _category().alias("category"),
            (into - out).cast(pl.Int64).alias("amount"),
            counted.alias("counted"),
        )
        .select(
            "plan_id",
            "category",
            "batch_id",
            "posting_index",
            "batch_status",
            "counted",
            "from_account",
            "to_account",
            "currency",
            "amount",
            "description",
            "held_at",
        )
    )


def _plans(plans: pl.DataFrame, effects: pl.DataFrame) -> pl.DataFrame:
    committed = effects.group_by("plan_id").agg(
        pl.col("currency").drop_nulls().first(),
        pl.col("amount").filter(pl.col("counted")).sum().cast(pl.Int64).alias("amount"),
    )
    return (
        plans.join(committed, on="plan_id", how="left")
        .with_columns(_category().alias("category"), pl.col("amount").fill_null(0))
        .select(
            "plan_id",
            "category",
            "status",
            "currency",
            "amount",
            "created_at",
            "ended_at",
            "batches",
            "postings",
        )
    )


def largest_differences(reconciliation: pl.DataFrame, n: int = 1) -> pl.DataFrame:
    """The ``n`` reconciliation rows (account, currency, day) furthest from reconciling:
    the largest ``|orders_difference| + |payouts_difference|`` per currency's minor units, then
    account and day (amounts of different currencies are compared only to pick a row)."""
    off = reconciliation.with_columns(
        (pl.col("orders_difference").abs() + pl.col("payouts_difference").abs()).alias("_off")
    ).filter(pl.col("_off") > 0)
    return (
        off.sort(["_off", "account", "day"], descending=[True, False, False]).head(n).drop("_off")
    )
