"""The ``workbench`` command line. Every command is also a Python function (named in its help)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from .. import __version__, errors
from . import audit, books, data, notebooks, sim, statements, triage

EXAMPLES = """\
examples:
  workbench generate out/export --seed 7 --days 7 --orders-per-day 600 --truth out/truth.csv
  workbench generate out/clean --days 2 --clean
  workbench replay data/sample_events --db out/sample.duckdb
  workbench publish data/sample_events --to nats://127.0.0.1:4222
  workbench replay nats://127.0.0.1:4222 --db out/live.duckdb --follow
  workbench audit --db out/sample.duckdb
  workbench audit --db out/sample.duckdb --format csv --out out/findings.csv
  workbench explain F-0123456789ab --db out/sample.duckdb
  workbench ledger client:cl-01 --db out/sample.duckdb --from 2026-11-05 --to 2026-11-06
  workbench revenue --db out/sample.duckdb --format xlsx --out out/revenue.xlsx
  workbench triage F-0123456789ab --status waived --note "known FX rounding" --by alice --db out/sample.duckdb
  workbench audit --db out/sample.duckdb --since-last
  workbench statements import out/stmt/2026-11-05.xml --db out/sample.duckdb
  workbench summary data/sample_events
  workbench summary ../shared/fixtures/platform-export-3d
  workbench simulate --policy production --days 2 --replications 5 --out out/sim
  workbench simulate --policy production --policy fifo --policy batched --out out/cmp
  workbench simulate --from-db out/sample.duckdb --policy production --policy least_loaded
  workbench sweep --policy production --policy fifo --param traders=40,60,80 --out out/sweep
  workbench lab
  workbench report notebooks/payout_reconciliation.ipynb --out out/reconciliation.html
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            errors.BAD_INPUT,
            f"{self.prog}: {errors.one_line(message)} (see {self.prog} --help)\n",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="workbench",
        description=(
            "Audit and simulation workbench for an event-sourced P2P payment platform. "
            "Reads the platform's event exports (the envelope of the event catalog), folds them "
            "through a model of every stream, and generates realistic histories to test on."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for module in (data, audit, triage, books, statements, sim, notebooks):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0


def _main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return _run(args)
    except BrokenPipeError:
        raise
    except KeyboardInterrupt:
        print(f"workbench {args.command}: interrupted", file=sys.stderr)
        return errors.INTERRUPTED
    except Exception as exc:
        return _fail(args, exc)


def _run(args: argparse.Namespace) -> int:
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


def _fail(args: argparse.Namespace, exc: BaseException) -> int:
    """Report a failed command: one line on stderr naming the real cause; its exit code."""
    failure = errors.classify(exc, db=getattr(args, "db", None))
    message = failure.message
    if failure.kind == "corrupt" and failure.path is None:
        message = _name_corrupt_source(args) or message
    if os.environ.get(errors.DEBUG_ENV, "") not in ("", "0"):
        traceback.print_exception(exc)
    if failure.internal:
        message += f" ({errors.DEBUG_HINT})"
    print(f"workbench {args.command}: {message}", file=sys.stderr)
    return failure.code


def _name_corrupt_source(args: argparse.Namespace) -> str | None:
    """For a reader's error that does not say which file is corrupt: find it among the sources."""
    from ..sources import parquet_files

    sources = [s for s in getattr(args, "sources", None) or [] if "://" not in str(s)]
    try:
        found = errors.locate_corrupt(parquet_files(sources)) if sources else None
    except Exception:  # the search is best effort; the reader's own message still stands
        return None
    if found is None:
        return None
    path, detail = found
    return f"{path}: corrupt or unreadable Parquet file ({detail})"
