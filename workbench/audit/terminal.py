"""How the reconciliation, the ratings and the books read in a terminal (``--format table``).

Each is a :mod:`workbench.text_table` of at most 120 columns: money in major units with the
currency's decimals, long ids cut with an ellipsis, a ``!`` before each row that does not match.
The other formats keep the frames as the Python functions return them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl

from .. import text_table as tt
from ..domain.money import format_money
from .books import AccountLedger

#: The mark of a row that does not match.
MARK = "!"


def reconciliation(frame: pl.DataFrame) -> str:
    """``reconcile_payouts()`` as text: one block per account and currency, a line per day."""
    differs = (pl.col("orders_difference") != 0) | (pl.col("payouts_difference") != 0)
    columns = [
        tt.Col("", lambda r: MARK if r["_differs"] else ""),
        tt.when("day", "day", "%Y-%m-%d"),
        tt.money("orders\nsettled", "orders_settled"),
        tt.money("ledger\norders", "ledger_orders"),
        tt.money("orders\ndifference", "orders_difference", signed=True),
        tt.money("paid\nout", "paid_out"),
        tt.money("ledger\npaid out", "ledger_paid_out"),
        tt.money("payouts\ndifference", "payouts_difference", signed=True),
        tt.money("top-ups", "top_ups", drop=1),
    ]
    if frame.height == 0:
        return "no rows"
    marked = frame.with_columns(differs.fill_null(True).alias("_differs"))
    counts = marked.group_by(["account", "currency"]).agg(
        pl.len().alias("_days"), pl.col("_differs").sum().alias("_bad")
    )
    marked = marked.join(counts, on=["account", "currency"], how="left", maintain_order="left")

    def title(r: tt.Row) -> str:
        return f"{r['account']} · {r['currency']} · {r['_days']} day(s), {r['_bad']} not matching"

    return "\n".join(tt.render(marked.iter_rows(named=True), columns, group=title))


def ratings(frame: pl.DataFrame) -> str:
    """``recompute_ratings()`` as text: a published figure that the formula does not give reads
    ``published≠formula``."""

    def figure(name: str) -> tt.Col:
        def cell(r: tt.Row) -> str:
            mine, theirs = _figure(r[name]), _figure(r[f"{name}_recomputed"])
            return mine if r[name] == r[f"{name}_recomputed"] else f"{mine}≠{theirs}"

        return tt.Col(name.replace("_", " "), cell, right=True)

    columns = [
        tt.Col("", lambda r: "" if r["matches"] else MARK),
        tt.text("trader", "trader_id", shorten=14),
        tt.number("seq", "seq"),
        tt.when("as of", "as_of", "%Y-%m-%d %H:%M"),
        tt.Col("window", lambda r: f"{r['window_days']}d", right=True),
        figure("assignments"),
        figure("completed"),
        figure("on_time"),
        figure("disputed"),
        figure("score"),
        tt.text("event", "event_id", shorten=10, drop=1),
    ]
    if frame.height == 0:
        return "no ratings"
    return "\n".join(tt.render(frame.iter_rows(named=True), columns))


def ledger(books: AccountLedger, *, daily: bool = False) -> str:
    """An account's books as text: per currency the opening balance, every posting (or, with
    ``daily``, every day) with the balance after it, and the closing balance."""
    span = (
        f"{books.day_from} … {books.day_to}"
        if books.day_from != books.day_to
        else f"{books.day_from}"
    )
    lines = [
        tt.line(f"{books.account} · {span} (UTC days) · committed postings, money in major units")
    ]
    for b in books.balances.iter_rows(named=True):
        cur = b["currency"]
        lines += [
            "",
            tt.line(f"{cur} opening balance {books.day_from}: {_money(b['opening_minor'], cur)}"),
        ]
        if daily:
            rows = books.days.filter(pl.col("currency") == cur)
            lines += tt.render(rows.iter_rows(named=True), _DAY_COLUMNS)
        else:
            rows = books.postings.filter(pl.col("currency") == cur)
            if rows.height:
                lines += tt.render(rows.iter_rows(named=True), _POSTING_COLUMNS)
            else:
                lines.append("no postings in these days")
        lines.append(
            tt.line(
                f"{cur} closing balance {books.day_to}: {_money(b['closing_minor'], cur)}"
                f" (in {_money(b['in_minor'], cur)}, out {_money(b['out_minor'], cur)},"
                f" {b['postings']:,} posting(s))"
            )
        )
    return "\n".join(lines)


def revenue(frame: pl.DataFrame) -> str:
    """``revenue()`` as text: a line per day and currency."""
    if frame.height == 0:
        return "no revenue"
    columns = [
        tt.when("day", "day", "%Y-%m-%d"),
        tt.text("currency", "currency"),
        tt.money("order\nfees", "order_fees_minor"),
        tt.money("payout\nfees", "payout_fees_minor"),
        tt.money("reversals", "reversals_minor", signed=True),
        tt.money("other", "other_minor", drop=2),
        tt.money("revenue\n(net)", "revenue_minor"),
        tt.money("balance at\nday's end", "balance_minor", drop=1),
        tt.number("postings", "postings", drop=3),
    ]
    title = tt.line("platform revenue per UTC day · money in major units")
    return "\n".join([title, "", *tt.render(frame.iter_rows(named=True), columns)])


def _figure(value: Any) -> str:
    """A count as it is; a score with its trailing zeros past two decimals dropped (the formula
    rounds to two; a published score with more shows them all)."""
    if isinstance(value, Decimal):
        text = f"{value:f}"
        whole, _, frac = text.partition(".")
        return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"
    return "" if value is None else str(value)


def _money(minor: int | None, currency: str) -> str:
    return tt.PAST_INT64 if minor is None else format_money(minor, currency)


_POSTING_COLUMNS = [
    tt.when("committed", "committed_at"),
    tt.text("plan", "plan_id", shorten=28),
    tt.text("counterparty", "counterparty", shorten=18),
    tt.money("in", "amount_in_minor", blank_zero=True),
    tt.money("out", "amount_out_minor", blank_zero=True),
    tt.money("balance", "balance_minor"),
    tt.text("event", "commit_event_id", shorten=9, drop=1),
    tt.Col("order/payout", lambda r: r["order_id"] or r["payout_id"] or "", shorten=14, drop=2),
    tt.text("description", "description", shorten=30, drop=3),
]

_DAY_COLUMNS = [
    tt.when("day", "day", "%Y-%m-%d"),
    tt.money("opening", "opening_minor"),
    tt.money("in", "in_minor"),
    tt.money("out", "out_minor"),
    tt.money("closing", "closing_minor"),
    tt.number("postings", "postings"),
]
