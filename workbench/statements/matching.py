"""Statement lines matched to payouts: :func:`match_statements`, the analysts' view of the one
matching model (``workbench/models/audit/statement_matches.sql``) that the audit's statement
checks read too, so the lines listed here are exactly the ones the findings judge.

Each line is ``matched`` (to one payout, by the rule that made the match:
:data:`.rules.RULES`), ``ambiguous`` (two payouts fit it alike, or it and another line fit one
payout alike: never guessed, its ``candidates`` listed) or ``unmatched``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from . import rules
from .readable import ensure_tables

#: The columns of every frame, in order.
COLUMNS = (
    "line_id",
    "value_date",
    "booked_at",
    "amount_minor",
    "currency",
    "reference",
    "counterparty",
    "payout_id",
    "rule",
    "status",
    "candidates",
)


@dataclass(frozen=True)
class StatementMatches:
    """Every statement line with its match (``lines``), and the same split three ways."""

    lines: pl.DataFrame
    window_days: int

    @property
    def matches(self) -> pl.DataFrame:
        """The lines matched to a payout, with the rule that matched each."""
        return self.lines.filter(pl.col("status") == "matched")

    @property
    def ambiguous(self) -> pl.DataFrame:
        """The lines several payouts (or lines) fit alike: reported, not matched."""
        return self.lines.filter(pl.col("status") == "ambiguous")

    @property
    def unmatched(self) -> pl.DataFrame:
        """The lines no rule matched."""
        return self.lines.filter(pl.col("status") == "unmatched")

    def counts(self) -> dict[str, int]:
        """Lines per status, and matches per rule (``matched:<rule>``)."""
        out = {s: int(self.lines.filter(pl.col("status") == s).height) for s in rules.STATUSES}
        for rule in rules.RULES:
            out[f"matched:{rule}"] = int(self.matches.filter(pl.col("rule") == rule).height)
        return out


def match_lines(
    con: duckdb.DuckDBPyConnection, window_days: int = rules.WINDOW_DAYS
) -> StatementMatches:
    """Match the statement lines ``con`` sees (``statement_lines``; none where the connection
    has no statement tables) to its payouts, by the statement models."""
    from ..audit import shared

    window = rules.window_days(window_days)
    ensure_tables(con)
    # computed afresh: a shared table ``con`` kept from an audit may have another window
    for name in shared.needs(["statement_matches"]):
        shared.build(con, name, statement_window_days=window)
    cols = ", ".join(COLUMNS)
    frame = pl.from_arrow(
        con.sql(
            f"SELECT {cols} FROM statement_matches ORDER BY value_date, line_id"
        ).to_arrow_table()
    )
    assert isinstance(frame, pl.DataFrame)
    for name in ("statement_matches", "statement_payouts"):
        con.execute(f"DROP TABLE IF EXISTS temp.main.{name}").fetchall()
    return StatementMatches(frame, window)


def match_statements(db: str | Path, window_days: int = rules.WINDOW_DAYS) -> StatementMatches:
    """Match the statement lines imported into ``db``'s analyst database to its payouts.

    ``window_days`` is the value-date window of the amount-and-counterparty rule (the audit's
    ``statement_window_days``). Returns a :class:`StatementMatches`: ``.lines`` (every line),
    ``.matches``, ``.ambiguous``, ``.unmatched`` (Polars frames, :data:`COLUMNS`)."""
    from ..replay import store

    rules.window_days(window_days)
    path = Path(db)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such database (run `workbench replay SOURCE --db {path}` first)"
        )
    con = store.connect(path, read_only=True)
    try:
        return match_lines(con, window_days)
    finally:
        con.close()
