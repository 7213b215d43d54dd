"""Commands that read the books of a replayed database: ledger, revenue."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import options as opt

_FORMATS = ["table", "csv", "json", "parquet", "xlsx"]
_FORMAT_HELP = (
    "output format (default table: for a person, money in major units, at most 120 columns; "
    "csv, json, parquet: the full table, exact integer minor units; xlsx: an Excel workbook, "
    "one sheet per table, money as numbers with the currency's decimals; parquet and xlsx "
    "need --out)"
)
_WHICH = (
    "A posting counts once its batch is committed (as in account_balances), on the UTC day of "
    "the event that committed it."
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    led = sub.add_parser(
        "ledger",
        help="an account's books for a day range: opening balance, every posting, closing balance",
        description=(
            "The ledger of one account (client:<id>, trader:<id>, platform:revenue, "
            "external:<currency>) from --from to --to (UTC days, inclusive; by default the first "
            "and last day anything was committed): per currency the opening balance, every "
            "posting with its plan, the order or payout it books, the event that committed it, "
            "its time, the amount in or out and the balance after it, and the closing balance. "
            f"{_WHICH} The closing balance at the end of the data is the account's own balance "
            "in account_balances. --daily gives one line per day instead. The platform's "
            "revenue per day is `workbench revenue`. Exits 2 for an account no posting names. "
            "Python: workbench.audit.account_ledger(db, account, day_from, day_to) returns the "
            "postings, days and balances as Polars DataFrames."
        ),
    )
    led.add_argument("account", metavar="ACCOUNT", help="e.g. client:cl-01 or platform:revenue")
    _common(led)
    led.add_argument(
        "--daily",
        action="store_true",
        help="one row per day (opening, in, out, closing, postings) instead of every posting",
    )
    led.set_defaults(run=_ledger)

    rev = sub.add_parser(
        "revenue",
        help="what the platform earned per day and currency (its revenue account's daily books)",
        description=(
            "Platform revenue per UTC day and currency, from the ledger: what the account "
            "platform:revenue took in less what went out of it, split into order fees (plans "
            "order:*), payout fees (payout:*), reversals (reverse:*, revert:*) and other, with the "
            f"account's balance at each day's end and the postings that moved it. {_WHICH} "
            "Every posting behind a day: `workbench ledger platform:revenue --from DAY --to DAY`. "
            "Python: workbench.audit.revenue(db, day_from, day_to) returns a Polars DataFrame."
        ),
    )
    _common(rev)
    rev.set_defaults(run=_revenue)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
    p.add_argument(
        "--from", dest="day_from", type=opt.date, metavar="DAY", help="first day, e.g. 2026-11-01"
    )
    p.add_argument("--to", dest="day_to", type=opt.date, metavar="DAY", help="last day (included)")
    p.add_argument("--format", choices=_FORMATS, default="table", help=_FORMAT_HELP)
    p.add_argument("--out", type=Path, help="write to this file instead of stdout")


def _exists(db: Path) -> None:
    if not db.exists():
        raise FileNotFoundError(f"{db}: no such database (run `workbench replay` first)")


def _ledger(args: argparse.Namespace) -> int:
    from .. import tables_out
    from ..audit import terminal
    from ..audit.books import account_ledger

    _exists(args.db)
    if args.format in tables_out.BINARY and args.out is None:
        raise ValueError(f"--format {args.format} needs --out FILE")
    books = account_ledger(args.db, args.account, args.day_from, args.day_to)
    sheets = [tables_out.Sheet("days", books.days), tables_out.Sheet("balances", books.balances)]
    if not args.daily:  # the statement first: what CSV, JSON and Parquet hold
        sheets.insert(0, tables_out.Sheet("statement", books.statement()))
    tables_out.write(
        sheets, args.format, args.out, lambda: terminal.ledger(books, daily=args.daily)
    )
    print(
        f"ledger {books.account}: {books.postings.height} posting(s) from {books.day_from} to "
        f"{books.day_to}",
        file=sys.stderr,
    )
    return 0


def _revenue(args: argparse.Namespace) -> int:
    from .. import tables_out
    from ..audit import terminal
    from ..audit.books import revenue

    _exists(args.db)
    if args.format in tables_out.BINARY and args.out is None:
        raise ValueError(f"--format {args.format} needs --out FILE")
    frame = revenue(args.db, args.day_from, args.day_to)
    tables_out.write(
        [tables_out.Sheet("revenue", frame)],
        args.format,
        args.out,
        lambda: terminal.revenue(frame),
    )
    print(f"revenue: {frame.height} day(s)", file=sys.stderr)
    return 0
