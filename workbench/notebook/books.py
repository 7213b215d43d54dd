"""The daily books in a notebook: the platform's revenue per day and currency, and one
account's ledger over a day range checked against ``account_balances``
(:mod:`workbench.audit.books` computes them; this shapes them for :func:`.tables.table`)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..audit.books import AccountLedger
from ..domain.money import format_money
from ..replay import store

#: Revenue's money columns, renamed for reading (the values stay integer minor units).
REVENUE_COLUMNS = {
    "order_fees_minor": "order_fees",
    "payout_fees_minor": "payout_fees",
    "reversals_minor": "reversals",
    "other_minor": "other",
    "revenue_minor": "revenue",
    "balance_minor": "balance",
}

#: The ledger statement's money columns, renamed for reading.
LEDGER_COLUMNS = {
    "amount_in_minor": "money_in",
    "amount_out_minor": "money_out",
    "balance_minor": "balance",
}


def revenue_table(frame: pl.DataFrame) -> pl.DataFrame:
    """:func:`workbench.audit.revenue` with its money columns named without ``_minor`` (for
    ``nb.table(..., money=list(REVENUE_COLUMNS.values()))``); drops ``other`` when it is all
    zero."""
    out = frame.rename(REVENUE_COLUMNS)
    if out.height and (out["other"] == 0).all():
        out = out.drop("other")
    return out


def ledger_table(books: AccountLedger) -> pl.DataFrame:
    """The account's statement (opening row, every posting, closing row per currency) with the
    columns a person reads: entry, day, time, plan, order or payout, counterparty, in, out,
    balance."""
    return (
        books.statement()
        .rename(LEDGER_COLUMNS)
        .select(
            "entry",
            "currency",
            "day",
            "committed_at",
            "plan_id",
            "order_id",
            "payout_id",
            "counterparty",
            "money_in",
            "money_out",
            "balance",
        )
    )


def default_account(account: str | None, largest: pl.DataFrame) -> str | None:
    """The ``account`` asked for, else the account of the first row of ``largest`` (the
    reconciliation's largest difference), else ``None``."""
    if account is not None:
        return account
    return str(largest["account"][0]) if largest.height else None


def balances_line(books: AccountLedger, db: str | Path) -> str:
    """Per currency, the ledger's closing balance and, when the range runs to the end of the
    data, whether it equals ``account_balances.own`` (what the projections keep)."""
    con = store.connect(db, read_only=True)
    try:
        own = dict(
            con.execute(
                "SELECT currency, own FROM account_balances WHERE account = ?", [books.account]
            ).fetchall()
        )
        last = con.execute("SELECT max(occurred_at) FROM events").fetchall()[0][0]
    finally:
        con.close()
    to_the_end = last is None or books.day_to >= last.date()
    parts = []
    for b in books.balances.iter_rows(named=True):
        cur, closing = b["currency"], b["closing_minor"]
        text = f"{books.account} closes {books.day_to} at {_money(closing, cur)}"
        if not to_the_end:
            text += " (the range ends before the data does; account_balances holds the end)"
        elif own.get(cur) == closing:
            text += ", equal to account_balances (own)"
        else:
            text += f", but account_balances (own) says {_money(own.get(cur), cur)}: they differ"
        parts.append(text)
    return "; ".join(parts) if parts else f"{books.account}: no postings in these days"


def _money(value: int | None, currency: str) -> str:
    return "n/a" if value is None else format_money(value, currency)
