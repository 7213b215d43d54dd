"""``workbench statements match``: every statement line with the payout it matched and the rule
that matched it (kept apart from the importer's ``workbench/cli/statements.py``, which creates
the ``statements`` command and adds this subcommand with :func:`add_match_parser`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..statements.rules import WINDOW_DAYS
from . import options as opt

_FORMATS = ["table", "csv", "json", "parquet", "xlsx"]


def add_match_parser(
    statements: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``match`` to the ``statements`` command's subcommands; returns its parser."""
    m = statements.add_parser(
        "match",
        help="match the imported statement lines to payouts; list each with its rule",
        description=(
            "Match every statement line imported into DB's analyst database to a payout, by the "
            "first rule that applies: reference (the payout's bank_ref), reference_parts "
            "(several lines with one bank_ref that sum exactly to the payout), "
            "amount_counterparty (no usable reference: exact amount, currency and "
            "destination_masked, value date from the day the payout was paid, or confirmed, to "
            "--window-days after), return (money back under the payout's reference). A line two "
            "payouts fit alike, or that fits a payout another line fits alike, is ambiguous: "
            "listed with its candidates, never matched. The audit's statement checks read the "
            "same matches (docs/audit.md). Python: match_statements(db, window_days) in "
            "workbench/statements/matching.py returns Polars frames."
        ),
    )
    m.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
    m.add_argument(
        "--window-days",
        type=opt.window_days,
        default=WINDOW_DAYS,
        metavar="N",
        help="value-date window of the amount-and-counterparty rule, in days (default 3)",
    )
    m.add_argument(
        "--status",
        choices=["matched", "ambiguous", "unmatched"],
        action="append",
        help="only lines of this status (repeatable; default all)",
    )
    m.add_argument(
        "--format",
        choices=_FORMATS,
        default="table",
        help="output format (default table, money in major units; csv, json, parquet: every "
        "column, exact minor units; parquet and xlsx need --out)",
    )
    m.add_argument("--out", type=Path, help="write to this file instead of stdout")
    m.set_defaults(run=run_match)
    return m


def run_match(args: argparse.Namespace) -> int:
    import polars as pl

    from .. import tables_out
    from ..statements.matching import match_statements

    window = args.window_days
    result = match_statements(args.db, window)
    lines = result.lines
    if args.status:
        lines = lines.filter(pl.col("status").is_in(args.status))
    tables_out.write(
        [tables_out.Sheet("statement_matches", lines, money={"amount_minor": "currency"})],
        args.format,
        args.out,
        lambda: "\n".join(_table(lines.to_dicts())),
    )
    counts = result.counts()
    rules = ", ".join(
        f"{k.split(':', 1)[1]} {v}" for k, v in counts.items() if k.startswith("matched:") and v
    )
    print(
        f"statement lines: {lines.height} listed; {counts['matched']} matched"
        + (f" ({rules})" if rules else "")
        + f", {counts['ambiguous']} ambiguous, {counts['unmatched']} unmatched "
        f"(window {window} day(s))",
        file=sys.stderr,
    )
    return 0


def _table(rows: list[dict[str, Any]]) -> list[str]:
    from .. import text_table as tt

    for r in rows:
        r["matched_to"] = r["payout_id"] or (
            "? " + ", ".join(r["candidates"]) if r["candidates"] else ""
        )
    return tt.render(
        rows,
        [
            tt.text("line", "line_id"),
            tt.when("value date", "value_date", "%Y-%m-%d"),
            tt.money("amount", "amount_minor", signed=True),
            tt.text("ccy", "currency"),
            tt.text("reference", "reference", shorten=20, drop=2),
            tt.text("counterparty", "counterparty", shorten=24, drop=1),
            tt.text("status", "status"),
            tt.text("rule", "rule"),
            tt.text("payout", "matched_to", shorten=30),
        ],
    )
