"""The ``workbench`` command line. Every command is also a Python function (named in its help)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from . import __version__

EXAMPLES = """\
examples:
  workbench generate out/export --seed 7 --days 7 --orders-per-day 600 --truth out/truth.csv
  workbench generate out/clean --days 2 --clean
  workbench replay data/sample_events --db out/sample.duckdb
  workbench summary data/sample_events
  workbench summary ../shared/fixtures/platform-export-3d
"""


def _date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-01") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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

    g = sub.add_parser(
        "generate",
        help="write a realistic platform export (Parquet), with planted anomalies and their truth",
        description=(
            "Generate a platform history through the domain's processors and write it as a "
            "hive-partitioned Parquet export (date=YYYY-MM-DD/part-N.parquet) in the catalog's "
            "envelope. Unless --clean, anomalies of every audit check are planted and the ground "
            "truth (check, event_id, subject) goes to --truth, which must be outside OUT_DIR. "
            "The same arguments give byte-identical files. Python: workbench.generator.generate()."
        ),
    )
    g.add_argument(
        "out_dir", metavar="OUT_DIR", type=Path, help="directory to write the export into"
    )
    g.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    g.add_argument("--days", type=_positive, default=7, help="simulated days (default 7)")
    g.add_argument(
        "--orders-per-day",
        type=_positive,
        default=600,
        help="mean payment orders per day (default 600)",
    )
    g.add_argument("--traders", type=_positive, default=24, help="registered traders (default 24)")
    g.add_argument("--clients", type=_positive, default=6, help="registered clients (default 6)")
    g.add_argument(
        "--start",
        type=_date,
        default=datetime(2026, 11, 1, tzinfo=UTC),
        help="first day, YYYY-MM-DD (default 2026-11-01)",
    )
    g.add_argument("--truth", type=Path, help="CSV file for the ground truth of planted anomalies")
    g.add_argument(
        "--clean", action="store_true", help="plant no anomalies: a history that breaks no rule"
    )
    g.add_argument("--overwrite", action="store_true", help="replace an existing export in OUT_DIR")
    g.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it only shows on a terminal anyway)",
    )

    r = sub.add_parser(
        "replay",
        help="replay exports into a DuckDB database of every projection, losing nothing",
        description=(
            "Replay Parquet exports (files or directories, hive partitions allowed; sources may "
            "overlap) into a DuckDB file: the events, every projection (clients, traders, "
            "payment_orders, order_attempts, receipts, payouts, ledger_plans, ledger_postings, "
            "account_balances, trader_ratings), the violations and a quarantine of what could "
            "not be decoded. Replaying into an existing database adds only new events; every run "
            "is one transaction and is recorded in replay_runs with its sources and the "
            "projections' content hashes. Exits 1 if the nothing-lost check fails. "
            "Python: workbench.replay.rebuild(); open the result with workbench.connect(db)."
        ),
    )
    r.add_argument(
        "sources", metavar="SOURCE", nargs="+", type=Path, help="Parquet file or export directory"
    )
    r.add_argument("--db", type=Path, required=True, help="DuckDB file to create or update")
    r.add_argument(
        "--full", action="store_true", help="start from an empty database instead of adding to it"
    )
    r.add_argument(
        "--engine",
        choices=["sql", "fold"],
        default="sql",
        help="sql: columnar, in DuckDB (default); fold: event by event through the domain "
        "(the definition, slower)",
    )
    r.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it only shows on a terminal anyway)",
    )
    r.add_argument(
        "--memory-limit",
        default="1200MB",
        metavar="SIZE",
        help="DuckDB's memory cap, e.g. 1200MB or 4GB (default 1200MB; past it DuckDB spills to "
        "FILE.duckdb.tmp); 'none' for DuckDB's default (80%% of RAM)",
    )

    s = sub.add_parser(
        "summary",
        help="read an export, fold it through the domain, print what is in it and what is wrong",
        description=(
            "Read Parquet exports (files or directories, hive partitions allowed), skip identical "
            "redeliveries, quarantine undecodable events, fold the rest in position order through "
            "the domain's appliers, and print counts, order and payout states, money settled and "
            "the rules broken. Python: workbench.summary.summarize()."
        ),
    )
    s.add_argument(
        "sources", metavar="SOURCE", nargs="+", type=Path, help="Parquet file or export directory"
    )
    s.add_argument(
        "--violations",
        type=int,
        default=10,
        metavar="N",
        help="list the first N violations (default 10)",
    )
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
        if args.command == "generate":
            return _generate(args)
        if args.command == "summary":
            return _summary(args)
        if args.command == "replay":
            return _replay(args)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"workbench {args.command}: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


def _generate(args: argparse.Namespace) -> int:
    from .generator import GeneratorConfig, generate

    cfg = GeneratorConfig(
        seed=args.seed,
        days=args.days,
        orders_per_day=args.orders_per_day,
        traders=args.traders,
        clients=args.clients,
        start=args.start,
        clean=args.clean,
    )
    summary = generate(
        args.out_dir,
        cfg,
        truth=args.truth,
        overwrite=args.overwrite,
        progress=False if args.no_progress else None,
    )
    print(summary)
    if not args.clean and args.truth is None:
        print("note: anomalies were planted but no --truth file was asked for", file=sys.stderr)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from .replay import rebuild

    summary = rebuild(
        args.sources,
        args.db,
        full=args.full,
        progress=False if args.no_progress else None,
        engine=args.engine,
        memory_limit=None if args.memory_limit.lower() == "none" else args.memory_limit,
    )
    print(summary)
    return 0 if summary.balanced else 1


def _summary(args: argparse.Namespace) -> int:
    from .summary import summarize

    result, _ = summarize(args.sources)
    print(result.render())
    for v in result.violations[: args.violations]:
        print(f"  {v}")
    if len(result.violations) > args.violations:
        print(f"  … and {len(result.violations) - args.violations} more")
    return 0 if result.balanced else 1


if __name__ == "__main__":
    raise SystemExit(main())
