"""The payout provider's statements in a notebook: the statements to look at (imported from a
folder, or a small generated demo history with its statements), matched and unmatched lines by
day and currency, and a break's statement lines (:mod:`workbench.statements` does the work)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TypedDict

import polars as pl

from ..domain.violations import STATEMENT_CHECK_CODES
from ..statements.importer import ImportSummary, import_statements
from ..statements.matching import StatementMatches
from .database import open_database, out_of_date


class Demo(TypedDict):
    """The generator settings :data:`DEMO` gives (typed, so ``generate(..., **DEMO)`` checks)."""

    seed: int
    days: int
    orders_per_day: int


#: The demo history: small, so the notebook stays quick (2 days, about 100 orders a day).
DEMO: Demo = {"seed": 1, "days": 2, "orders_per_day": 100}

#: The statement files a folder may hold, by suffix.
SUFFIXES = (".csv", ".xml", ".sta", ".mt940")


def statement_files(folder: str | Path) -> list[Path]:
    """The statement files in ``folder`` (:data:`SUFFIXES`), sorted by name."""
    found = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in SUFFIXES)
    if not found:
        raise FileNotFoundError(f"{folder}: no statement files ({', '.join(SUFFIXES)})")
    return found


def import_folder(folder: str | Path, db: str | Path) -> ImportSummary:
    """Import every statement file of ``folder`` into ``db`` (a file imported before adds
    nothing)."""
    return import_statements(statement_files(folder), db)


def demo(folder: str | Path) -> Path:
    """A small generated history with the provider's statements (:data:`DEMO`, breaks of every
    statement check planted), replayed into ``folder/statements_demo.duckdb`` with its CSV
    statements imported; made once, then reused (the same arguments give the same files), and
    made again where an older workbench made it (without tables or columns its checks read)."""
    import tempfile

    from ..generator import generate

    out = Path(folder)
    db = out / "statements_demo.duckdb"
    if db.exists() and not out_of_date(db):
        return db
    out.mkdir(parents=True, exist_ok=True)
    # Built apart, then renamed into place: two notebooks run at once (a report beside nbval)
    # each build their own and the last rename wins, with the same content.
    build = Path(tempfile.mkdtemp(dir=out, prefix=".build-"))
    try:
        export = build / "export"
        generate(export, truth=build / "truth.csv", statements=True, progress=False, **DEMO)
        made = build / db.name
        open_database(made, export)
        import_statements(sorted((export / "statements").glob("*.csv")), made)
        analyst = made.with_name(made.stem + ".analyst.duckdb")
        analyst.replace(db.with_name(db.stem + ".analyst.duckdb"))
        made.replace(db)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return db


def statement_findings(findings: pl.DataFrame) -> pl.DataFrame:
    """The findings of the statement checks (:data:`STATEMENT_CHECK_CODES`)."""
    return findings.filter(pl.col("check").is_in(STATEMENT_CHECK_CODES))


def lines_by_day(matches: StatementMatches) -> pl.DataFrame:
    """Per value date and currency: lines matched, ambiguous and unmatched, and the money of
    each (sum of the lines' signed amounts, minor units)."""
    lines = matches.lines
    out = (
        lines.group_by("value_date", "currency")
        .agg(
            *(
                e
                for s in ("matched", "ambiguous", "unmatched")
                for e in (
                    (pl.col("status") == s).sum().cast(pl.Int64).alias(s),
                    pl.col("amount_minor")
                    .filter(pl.col("status") == s)
                    .sum()
                    .cast(pl.Int64)
                    .alias(f"{s}_amount"),
                )
            )
        )
        .sort("value_date", "currency")
    )
    return out.rename({"value_date": "day"})


def lines_of(matches: StatementMatches, subject: str) -> pl.DataFrame:
    """The statement lines behind a finding's subject: a payout's matched lines and the lines
    naming it as a candidate (``payout:<id>``), or the line itself (``statement_line:<id>``)."""
    kind, _, key = subject.partition(":")
    lines = matches.lines
    if kind == "payout":
        return lines.filter(
            (pl.col("payout_id") == key) | pl.col("candidates").list.contains(key).fill_null(False)
        )
    if kind == "statement_line":
        return lines.filter(pl.col("line_id") == key)
    return lines.clear()


def largest_payout_break(findings: pl.DataFrame) -> pl.DataFrame:
    """The statement finding about a payout with the most money at stake (one row, or none)."""
    return (
        findings.filter(
            pl.col("subject").str.starts_with("payout:") & pl.col("amount_delta").is_not_null()
        )
        .sort(pl.col("amount_delta").abs(), "finding_id", descending=[True, False])
        .head(1)
    )
