"""The daily books: an account's ledger over a day range, and the platform's revenue per day.

Which postings count is the account book's own rule, kept in one place: a posting moves money
when its batch is committed (``ledger_postings.batch_status = 'committed'``, what
``account_balances`` sums through ``models/partials/account_sums.sql``): it takes ``amount``
out of its ``from`` account and puts it into its ``to`` account. Held batches move nothing yet
(they only lower ``available``), rolled-back ones never do. So the balance this ledger runs is
``own``, and its closing balance at the end of the data is ``account_balances.own`` (a test
checks it on generated histories, for every account).

A posting is booked on the day, and at the time, of the event that committed its batch: the
first end after the batch, in its plan, that lists it (``models/staging/batch_end.sql``, the rule
the postings' status is read from, run here over the stored events rather than copied). That is
the plan's ``ended_at`` in all but odd histories (a batch held after its plan ended and committed
by a later end). Days are UTC days.

Every figure is an exact integer in minor units (``*_minor`` columns); running sums are exact
Python integers, and a balance past int64 is NULL, as ``account_balances`` stores it.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from .. import models
from ..domain.bookings import REVENUE
from ..domain.money import as_int64
from ..replay import store

#: A database path, or an open connection (``workbench.connect(db, read_only=True)``).
Source = str | Path | duckdb.DuckDBPyConnection
#: A UTC day: a date, the date of a datetime, or text like ``2026-11-01``.
Day = date | datetime | str | None

#: The ledger's events numbered in ``(position, event_id)`` order, as the build numbers all
#: events (``replay/bulk.py`` ``PRELUDE``). Only the ledger stream is numbered: the staging models
#: below compare numbers of ledger events only, and numbering a subset keeps their order.
_EV = """
SELECT e.* EXCLUDE (source, payload), row_number() OVER (ORDER BY position, event_id) AS ord,
       TRUE AS fresh
FROM events e
WHERE e.stream = 'ledger_plan'
"""

#: Each committed posting of one account with the event that committed its batch, and the order
#: or payout its plan books (plan ids as ``domain/bookings.py`` makes them, joined to the
#: projections that know them; a plan nothing knows, a top-up, has neither).
_POSTINGS = """
links AS (
    SELECT plan_id, min(order_id) AS order_id, min(payout_id) AS payout_id
    FROM (
        SELECT 'order:' || order_id || ':' || attempt AS plan_id, order_id, NULL AS payout_id
        FROM order_attempts
        UNION ALL SELECT 'reverse:order:' || order_id, order_id, NULL FROM payment_orders
        UNION ALL SELECT plan_id, NULL, payout_id FROM payouts
        UNION ALL SELECT 'revert:' || plan_id, NULL, payout_id FROM payouts
    )
    GROUP BY plan_id
)
SELECT lp.currency, x.occurred_at AS committed_at, lp.plan_id, k.order_id, k.payout_id,
       CASE WHEN lp.to_account = $account THEN lp.from_account ELSE lp.to_account END AS counterparty,
       lp.description,
       CASE WHEN lp.to_account = $account THEN lp.amount ELSE 0 END AS amount_in_minor,
       CASE WHEN lp.from_account = $account THEN lp.amount ELSE 0 END AS amount_out_minor,
       x.event_id AS commit_event_id, lp.held_event_id, lp.batch_id, lp.posting_index,
       x.position AS commit_position
FROM ledger_postings lp
LEFT JOIN ledger_held h ON h.event_id = lp.held_event_id
LEFT JOIN batch_end b ON b.held_ord = h.ord AND b.outcome = 'committed'
LEFT JOIN ev x ON x.ord = b.end_ord
LEFT JOIN links k ON k.plan_id = lp.plan_id
WHERE lp.batch_status = 'committed' AND (lp.from_account = $account OR lp.to_account = $account)
ORDER BY x.ord, h.ord, lp.posting_index
"""

#: The columns of :attr:`AccountLedger.postings` (and the posting rows of the statement).
POSTING_COLUMNS = (
    "account",
    "currency",
    "day",
    "committed_at",
    "plan_id",
    "order_id",
    "payout_id",
    "counterparty",
    "description",
    "amount_in_minor",
    "amount_out_minor",
    "balance_minor",
    "commit_event_id",
    "held_event_id",
    "batch_id",
    "posting_index",
)

#: What the platform earns from, by the kind of plan that books it (``domain/bookings.py``):
#: fees of completed orders, withdrawal fees of payouts, and the reversals of both.
REVENUE_SOURCES = (
    ("order_fees_minor", ("order:",)),
    ("payout_fees_minor", ("payout:",)),
    ("reversals_minor", ("reverse:", "revert:")),
)


class UnknownAccount(LookupError):
    """An account no posting of the database names (a usage error: exit 2)."""


class DatabaseMismatch(ValueError):
    """The stored postings and the stored events disagree (a database built by other code: bad
    input, exit 2)."""


@dataclass(frozen=True)
class AccountLedger:
    """One account's books from ``day_from`` to ``day_to`` (inclusive), per currency.

    ``postings``: every committed posting of those days, in the order they were committed, with
    the balance after it (:data:`POSTING_COLUMNS`); ``days``: one row per day and currency with
    the opening and closing balance, what came in and went out, and how many postings;
    ``balances``: the same over the whole range, one row per currency."""

    account: str
    day_from: date
    day_to: date
    postings: pl.DataFrame
    days: pl.DataFrame
    balances: pl.DataFrame

    def opening(self, currency: str) -> int | None:
        return _balance(self.balances, currency, "opening_minor")

    def closing(self, currency: str) -> int | None:
        return _balance(self.balances, currency, "closing_minor")

    def statement(self) -> pl.DataFrame:
        """The ledger as one table, the way a statement reads: per currency an ``opening`` row,
        each ``posting``, then a ``closing`` row (``entry`` says which; ``balance_minor`` is the
        balance after each). What the CSV, JSON and Parquet exports of ``workbench ledger``
        hold."""
        schema: dict[str, Any] = {"entry": pl.String, **self.postings.schema}
        parts = []
        for b in self.balances.iter_rows(named=True):
            cur = b["currency"]
            parts.append(
                _edge(schema, self.account, cur, "opening", self.day_from, b["opening_minor"])
            )
            parts.append(
                self.postings.filter(pl.col("currency") == cur)
                .with_columns(pl.lit("posting").alias("entry"))
                .select(list(schema))
            )
            parts.append(
                _edge(schema, self.account, cur, "closing", self.day_to, b["closing_minor"])
            )
        return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def _edge(
    schema: dict[str, Any], account: str, currency: str, entry: str, day: date, balance: int | None
) -> pl.DataFrame:
    row = dict.fromkeys(schema) | {
        "entry": entry,
        "account": account,
        "currency": currency,
        "day": day,
        "balance_minor": balance,
    }
    return pl.DataFrame([row], schema=schema)


def _balance(frame: pl.DataFrame, currency: str, column: str) -> int | None:
    rows = frame.filter(pl.col("currency") == currency)
    if rows.height == 0:
        raise KeyError(f"no {currency} in these books; currencies: {frame['currency'].to_list()}")
    value = rows[column][0]
    return None if value is None else int(value)


def account_ledger(
    db: Source, account: str, day_from: Day = None, day_to: Day = None
) -> AccountLedger:
    """The books of ``account`` (``client:<id>``, ``trader:<id>``, ``platform:revenue``,
    ``external:<currency>``) from ``day_from`` to ``day_to`` (UTC days, inclusive; by default
    the first and last day anything was committed). ``db`` is a database path or an open
    connection (``workbench.connect(db, read_only=True)``). Raises :class:`UnknownAccount` for an
    account no posting names, ``ValueError`` for a range that ends before it starts."""
    with _reading(db) as con:
        return _ledger(con, account, day_from, day_to)


def revenue(
    db: Source, day_from: Day = None, day_to: Day = None, *, account: str = REVENUE
) -> pl.DataFrame:
    """What the platform earned per UTC day and currency: the daily books of its revenue
    account (``platform:revenue``, catalog section 2), its net (in less out) split by what it
    was earned from (:data:`REVENUE_SOURCES`; ``other_minor`` is anything else).
    ``revenue_minor`` is the day's net, ``balance_minor`` the account's balance at the day's end
    (at the end of the data, its ``account_balances.own``), ``postings`` how many moved it."""
    with _reading(db) as con:
        books = _ledger(con, account, day_from, day_to)
    sources = [c for c, _ in REVENUE_SOURCES] + ["other_minor"]
    sums: dict[tuple[date, str], dict[str, int]] = {}
    for r in books.postings.iter_rows(named=True):
        figures = sums.setdefault((r["day"], r["currency"]), dict.fromkeys(sources, 0))
        figures[_source(r["plan_id"])] += r["amount_in_minor"] - r["amount_out_minor"]
    rows = []
    for d in books.days.iter_rows(named=True):
        figures = sums.get((d["day"], d["currency"]), dict.fromkeys(sources, 0))
        rows.append(
            {"day": d["day"], "currency": d["currency"]}
            | {k: as_int64(v) for k, v in figures.items()}
            | {
                "revenue_minor": as_int64(sum(figures.values())),
                "balance_minor": d["closing_minor"],
                "postings": d["postings"],
            }
        )
    schema = {"day": pl.Date, "currency": pl.String} | dict.fromkeys(
        [*sources, "revenue_minor", "balance_minor", "postings"], pl.Int64
    )
    return pl.DataFrame(rows, schema=schema).sort("day", "currency")


def _source(plan_id: str) -> str:
    for column, prefixes in REVENUE_SOURCES:
        if plan_id.startswith(prefixes):
            return column
    return "other_minor"


class _reading:
    """``db`` as a connection: the caller's, or a read-only one of its own closed after."""

    def __init__(self, db: Source) -> None:
        self.db = db
        self.own = not isinstance(db, duckdb.DuckDBPyConnection)

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        if isinstance(self.db, duckdb.DuckDBPyConnection):
            self.con = self.db
        else:
            self.con = store.connect(self.db, read_only=True)
        return self.con

    def __exit__(self, *exc: object) -> None:
        if self.own:
            self.con.close()


def accounts(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every account a posting names (``account_balances``), sorted."""
    rows = con.execute("SELECT DISTINCT account FROM account_balances ORDER BY account").fetchall()
    return [r[0] for r in rows]


def _check_account(con: duckdb.DuckDBPyConnection, account: str) -> list[str]:
    """The currencies of ``account``, or :class:`UnknownAccount` saying what accounts exist."""
    rows = con.execute(
        "SELECT currency FROM account_balances WHERE account = ? ORDER BY currency", [account]
    ).fetchall()
    if rows:
        return [r[0] for r in rows]
    known = accounts(con)
    if not known:
        raise UnknownAccount(f"unknown account {account!r}: the database has no ledger postings")
    close = difflib.get_close_matches(account, known, n=3, cutoff=0.5)
    close += [a for a in known if a.endswith(":" + account) and a not in close]
    hint = f"did you mean {', '.join(close[:3])}? " if close else ""
    examples = ", ".join(known[:3] + (["…"] if len(known) > 3 else []))
    raise UnknownAccount(
        f"unknown account {account!r}: no posting names it; {hint}accounts are client:<id>, "
        f"trader:<id>, platform:revenue, external:<currency> ({len(known)} here: {examples})"
    )


def _day(value: Day, name: str) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a day like 2026-11-01") from None


def _span(con: duckdb.DuckDBPyConnection) -> tuple[date | None, date | None]:
    """The first and last UTC day a ledger plan was committed (the default range); where none
    was, the first and last day of the ledger's events."""
    first, last = store.one(
        con,
        """SELECT coalesce(min(day) FILTER (WHERE committed), min(day)),
                  coalesce(max(day) FILTER (WHERE committed), max(day))
           FROM (SELECT (occurred_at AT TIME ZONE 'UTC')::DATE AS day,
                        kind = 'ledger_plan.committed' AS committed
                 FROM events WHERE stream = 'ledger_plan')""",
    )
    return first, last


@functools.cache
def _postings_sql() -> str:
    """The staging models the postings' status is read from (up to ``batch_end``), as CTEs over
    the stored ledger events, then :data:`_POSTINGS`."""
    staging = models.upstream("batch_end", layers=("staging",))
    ctes = [f"ev AS ({_EV})", *(f"{m.name} AS (\n{m.sql()})" for m in staging)]
    return "WITH " + ",\n".join(ctes) + ",\n" + _POSTINGS


def _postings(con: duckdb.DuckDBPyConnection, account: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        con.sql(_postings_sql(), params={"account": account}).to_arrow_table().to_pylist()
    )
    lost = sum(1 for r in rows if r["commit_event_id"] is None)
    if lost:
        raise DatabaseMismatch(
            f"{lost} committed posting(s) of {account} have no commit among the stored events: "
            "the database was built by other code; replay it again with --full"
        )
    return rows


def _range(con: duckdb.DuckDBPyConnection, day_from: Day, day_to: Day) -> tuple[date, date]:
    """The days asked for; a side not given is the first or last day anything was committed
    (or the other side, so that a range is never empty)."""
    start, end = _day(day_from, "--from"), _day(day_to, "--to")
    first, last = _span(con)
    if start is None:
        start = min((d for d in (first, end) if d is not None), default=None)
    if end is None:
        end = max((d for d in (last, start) if d is not None), default=None)
    if start is None or end is None:  # a ledger without events: a known account cannot be
        raise ValueError("the ledger has no events; give --from and --to")
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    return start, end


def _ledger(
    con: duckdb.DuckDBPyConnection, account: str, day_from: Day, day_to: Day
) -> AccountLedger:
    currencies = _check_account(con, account)
    start, end = _range(con, day_from, day_to)
    running = dict.fromkeys(currencies, 0)  # exact: Python integers
    opening = dict.fromkeys(currencies, 0)
    per_day: dict[tuple[date, str], tuple[int, int, int]] = {}
    kept = []
    for r in _postings(con, account):
        cur = r["currency"]
        day = r["committed_at"].astimezone(UTC).date()
        running[cur] = running.get(cur, 0) + r["amount_in_minor"] - r["amount_out_minor"]
        if day < start:
            opening[cur] = running[cur]
        elif day <= end:
            got_in, got_out, n = per_day.get((day, cur), (0, 0, 0))
            per_day[(day, cur)] = (
                got_in + r["amount_in_minor"],
                got_out + r["amount_out_minor"],
                n + 1,
            )
            kept.append(
                r | {"account": account, "day": day, "balance_minor": as_int64(running[cur])}
            )
    postings = pl.DataFrame(kept, schema=_POSTING_SCHEMA).select(POSTING_COLUMNS)
    day_rows, balance_rows = [], []
    for cur in sorted(running):
        balance = opening.get(cur, 0)
        total_in = total_out = total_n = 0
        d = start
        while d <= end:
            got_in, got_out, n = per_day.get((d, cur), (0, 0, 0))
            day_rows.append(_day_row(d, cur, balance, got_in, got_out, n))
            balance += got_in - got_out
            total_in, total_out, total_n = total_in + got_in, total_out + got_out, total_n + n
            d += timedelta(days=1)
        whole = _day_row(start, cur, opening.get(cur, 0), total_in, total_out, total_n)
        del whole["day"]
        balance_rows.append(whole)
    days = pl.DataFrame(day_rows, schema=_DAY_SCHEMA)
    balances = pl.DataFrame(
        balance_rows, schema={k: v for k, v in _DAY_SCHEMA.items() if k != "day"}
    )
    return AccountLedger(account, start, end, postings, days, balances)


def _day_row(d: date, cur: str, opening: int, got_in: int, got_out: int, n: int) -> dict[str, Any]:
    return {
        "day": d,
        "currency": cur,
        "opening_minor": as_int64(opening),
        "in_minor": as_int64(got_in),
        "out_minor": as_int64(got_out),
        "closing_minor": as_int64(opening + got_in - got_out),
        "postings": n,
    }


_DAY_SCHEMA: dict[str, Any] = {
    "day": pl.Date,
    "currency": pl.String,
    "opening_minor": pl.Int64,
    "in_minor": pl.Int64,
    "out_minor": pl.Int64,
    "closing_minor": pl.Int64,
    "postings": pl.Int64,
}


_POSTING_SCHEMA: dict[str, Any] = {
    "account": pl.String,
    "currency": pl.String,
    "day": pl.Date,
    "committed_at": pl.Datetime("us", "UTC"),
    "plan_id": pl.String,
    "order_id": pl.String,
    "payout_id": pl.String,
    "counterparty": pl.String,
    "description": pl.String,
    "amount_in_minor": pl.Int64,
    "amount_out_minor": pl.Int64,
    "balance_minor": pl.Int64,
    "commit_event_id": pl.String,
    "held_event_id": pl.String,
    "batch_id": pl.Int64,
    "posting_index": pl.Int32,
    "commit_position": pl.Int64,
}
