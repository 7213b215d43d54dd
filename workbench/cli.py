"""The ``workbench`` command line. Every command is also a Python function (named in its help)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from . import __version__, errors

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
  workbench summary data/sample_events
  workbench summary ../shared/fixtures/platform-export-3d
  workbench simulate --policy production --days 2 --replications 5 --out out/sim
  workbench simulate --policy production --policy fifo --policy batched --out out/cmp
  workbench simulate --from-db out/sample.duckdb --policy production --policy least_loaded
  workbench sweep --policy production --policy fifo --param traders=40,60,80 --out out/sweep
  workbench lab
  workbench report notebooks/payout_reconciliation.ipynb --out out/reconciliation.html
"""


def _date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-01") from None


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time like 2026-11-03T12:00:00Z or 2026-11-03"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value} must lie strictly between 0 and 1")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{value} must not be negative")
    return value


def _positive_seconds(text: str) -> float:
    value = _non_negative(text)
    if value == 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: seconds must be positive and finite")
    return value


def _days(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("days must be positive")
    return value


def _param(text: str) -> tuple[str, list[object]]:
    """NAME=V1,V2,...: each value an int, a float, true/false, or else a string."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE[,VALUE...]")
    out: list[object] = []
    for v in values.split(","):
        v = v.strip()
        for cast in (int, float):
            try:
                out.append(cast(v))
                break
            except ValueError:
                continue
        else:
            out.append({"true": True, "false": False}.get(v.lower(), v))
    return name.strip(), out


def _sim_source_options(p: argparse.ArgumentParser, *, trace: bool) -> None:
    """The options saying what is simulated: synthetic, calibrated or (simulate only) a trace."""
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--from-db",
        type=Path,
        metavar="DB",
        help="calibrate traders, behaviour and demand from a replayed database "
        "(workbench.sim.calibrate) and simulate synthetic demand from the fitted profile; "
        "without it (and without --trace) a synthetic platform (presets.synthetic_config)",
    )
    if trace:
        src.add_argument(
            "--trace",
            type=Path,
            metavar="DB",
            help="replay the real orders of the last --days days of a replayed database, at "
            "their real times and amounts, served by the calibrated traders under each policy",
        )
    p.add_argument(
        "--days", type=_days, default=2.0, help="simulated days, warm-up included (default 2)"
    )
    p.add_argument(
        "--warmup-hours",
        type=_non_negative,
        default=6.0,
        metavar="H",
        help="hours at the start left out of every metric while queues fill (default 6); "
        "stated in every output",
    )
    p.add_argument(
        "--traders",
        type=_positive,
        metavar="N",
        help="traders: the synthetic platform's count, or the calibrated roster cut to (or "
        "repeated up to) this many (default: 60 synthetic, all calibrated)",
    )
    p.add_argument(
        "--orders-per-day",
        type=_non_negative,
        metavar="N",
        help="mean orders per day of synthetic or calibrated demand (default: 3000 synthetic, "
        "the fitted rate calibrated; not with --trace)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the runs (default 0)")
    p.add_argument(
        "--level",
        type=_fraction,
        default=0.95,
        help="confidence level of the intervals (default 0.95)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it only shows on a terminal anyway)",
    )


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
            "A SOURCE nats://HOST:PORT reads the live stream instead (NATS JetStream stream "
            "PLATFORM_EVENTS, a durable pull consumer): batches applied with the same semantics, "
            "each in one transaction with the stream position, acknowledged after the commit, so "
            "every event takes effect exactly once across crashes and restarts; it stops once "
            "caught up, or with --follow runs until SIGINT or SIGTERM, showing the lag. "
            "Python: workbench.replay.rebuild(), workbench.replay.catch_up(db, url); open the "
            "result with workbench.connect(db)."
        ),
    )
    r.add_argument(
        "sources",
        metavar="SOURCE",
        nargs="+",
        help="Parquet file or export directory; or nats://HOST:PORT, the live stream",
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
    r.add_argument(
        "--max-payload-bytes",
        type=_max_payload,
        default=1_000_000,
        metavar="BYTES",
        help="a payload larger than this (UTF-8 bytes) is quarantined as too_large without being "
        "parsed (default 1000000); 'none' for no limit",
    )
    r.add_argument(
        "--follow",
        action="store_true",
        help="stream only: keep following the stream until SIGINT or SIGTERM (stops cleanly "
        "between batches), with a status line of the lag (events and seconds behind)",
    )
    r.add_argument(
        "--stream",
        default="PLATFORM_EVENTS",
        metavar="NAME",
        help="stream only: the JetStream stream (default PLATFORM_EVENTS)",
    )
    r.add_argument(
        "--consumer",
        metavar="NAME",
        help="stream only: the durable consumer's name (default: one per database, kept in "
        "its stream_positions)",
    )
    r.add_argument(
        "--batch",
        type=_positive,
        default=20_000,
        metavar="N",
        help="stream only: at most N messages per transaction (default 20000; a batch takes "
        "whatever has arrived, so it is small when the stream is quiet)",
    )
    r.add_argument(
        "--status-every",
        type=_non_negative,
        default=5.0,
        metavar="S",
        help="stream with --follow: a status line every S seconds (default 5; 0: none)",
    )
    r.add_argument(
        "--reader-lag",
        type=_positive_seconds,
        default=5.0,
        metavar="S",
        help="stream with --follow: readers (audit, notebooks, connect(read_only=True)) see a "
        "read snapshot at most about S seconds behind the last commit (default 5); publishing "
        "one copies the database, so a large database wants a larger S",
    )

    pb = sub.add_parser(
        "publish",
        help="publish an export onto the live stream (NATS JetStream), in the catalog's format",
        description=(
            "Publish every row of Parquet exports onto the JetStream stream PLATFORM_EVENTS "
            "(created if missing: subjects platform.>, file storage, a 2-minute duplicate "
            "window), one message per row: subject platform.<stream>.<aggregate_id>, body the "
            "envelope as one JSON object (payload nested, timestamps RFC 3339), header "
            "Nats-Msg-Id = event_id so the broker drops an identical redelivery. Rows go in log "
            "order (position, then event_id). A copy of an event_id with other content gets its "
            "own message id, so it reaches the stream and is quarantined as a conflicting "
            "duplicate, as a replay of the export would. For demos, tests and backfills. "
            "Python: workbench.replay.nats_source.publish()."
        ),
    )
    pb.add_argument(
        "sources", metavar="SOURCE", nargs="+", type=Path, help="Parquet file or export directory"
    )
    pb.add_argument("--to", required=True, metavar="URL", help="nats://HOST:PORT")
    pb.add_argument(
        "--stream",
        default="PLATFORM_EVENTS",
        metavar="NAME",
        help="stream (default PLATFORM_EVENTS)",
    )
    pb.add_argument(
        "--rate",
        type=_non_negative,
        metavar="N",
        help="at most N messages per second (a steady publisher; default: as fast as acked)",
    )

    a = sub.add_parser(
        "audit",
        help="run every reconciliation check over a replayed database; list the findings",
        description=(
            "Run every check of the audit (MALFORMED_EVENT … RATING_MISMATCH) over a database "
            "built by `workbench replay`. Each finding has a stable id (the same break has the "
            "same id in every run), a check code, a severity, a subject, the money at stake, a "
            "detail sentence and its evidence: the ids of the events that prove it, the offending "
            "one first. Each run is stored in audit_runs / audit_findings of the analyst database "
            "beside it (out/x.analyst.duckdb for out/x.duckdb, kept apart so a live follower's snapshots never "
            "replace it) and every finding is marked new, open (with its age in runs), resolved "
            "or reopened. It reads the newest read snapshot while a follower writes DB. Exits 1 if there are "
            "findings. Python: workbench.audit.audit() returns a Polars DataFrame."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
    a.add_argument(
        "--as-of",
        type=_instant,
        metavar="TIME",
        help="audit the platform as it stood at TIME (events after it left out, deadlines judged "
        "then), e.g. 2026-11-03T12:00:00Z",
    )
    a.add_argument(
        "--format",
        choices=["table", "json", "jsonl", "csv", "parquet"],
        default="table",
        help="output format (default table; parquet needs --out)",
    )
    a.add_argument("--out", type=Path, help="write the findings to this file instead of stdout")
    a.add_argument(
        "--check", action="append", metavar="CODE", help="only these check codes (repeatable)"
    )
    a.add_argument(
        "--no-record",
        action="store_true",
        help="do not store the run in the analyst database",
    )

    st = sub.add_parser(
        "status",
        help="who writes a database (a live follower?), its stream position, what readers see",
        description=(
            "Say which follower writes the database (its PID, host, stream and consumer, and "
            "whether it still runs), its stream position and last commit, and the read snapshot "
            "a reader opening the database now would see: its stream position, when it was "
            "committed and how far it is behind the follower. Readers (audit, notebooks, "
            "workbench.connect(db, read_only=True)) open that snapshot, so they never wait for "
            "the follower nor stop it. Python: workbench.status(db)."
        ),
    )
    st.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
    st.add_argument("--json", action="store_true", help="print it as JSON")

    x = sub.add_parser(
        "explain",
        help="show why a finding is a finding: the subject's timeline with state before and after",
        description=(
            "Show a finding from `workbench audit` with its subject's timeline around the "
            "offending event: every event of the subject folded again through the domain, with "
            "the status, balance, held and available before and after each one, and the other "
            "evidence events in place. Python: workbench.audit.explain()."
        ),
    )
    x.add_argument("finding_id", metavar="FINDING_ID", help="a finding id, e.g. F-0123456789ab")
    x.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")

    for name, text in (
        (
            "reconcile",
            "payout reconciliation: per account and day, orders settled, ledger committed, paid "
            "out, and the differences (Python: workbench.audit.reconcile_payouts())",
        ),
        (
            "ratings",
            "every published rating beside the counts and score the catalog's formula gives "
            "(Python: workbench.audit.recompute_ratings())",
        ),
    ):
        t = sub.add_parser(name, help=text.split(" (")[0], description=text)
        t.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
        t.add_argument(
            "--format",
            choices=["table", "csv", "json", "parquet"],
            default="table",
            help="output format (default table; parquet needs --out)",
        )
        t.add_argument("--out", type=Path, help="write to this file instead of stdout")
        t.add_argument(
            "--differences",
            action="store_true",
            help="only rows that do not match (non-zero differences, ratings that differ)",
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

    from .sim.policies import POLICIES

    policies = ", ".join(POLICIES)
    m = sub.add_parser(
        "simulate",
        help="simulate the platform under one policy, or compare policies with paired intervals",
        description=(
            "Run the simulation (workbench.sim) for --replications independent replications. "
            "With one --policy: one row of metrics per replication (fill and expiry rates, "
            "waits to acceptance and completion, utilisation, Gini of orders and earnings over "
            "traders, hold times, revenue in minor units), and their means with Student-t "
            "intervals. With several: a comparison on common random numbers (replication r of "
            "every policy sees the same orders and draws), each policy's paired difference from "
            "the first one with its interval. Metrics cover orders created after the warm-up, "
            "which every output states. Writes OUT/replications.parquet and OUT/summary.parquet, "
            "and with several policies OUT/differences.parquet. "
            "Python: workbench.sim.simulate() and workbench.sim.compare()."
        ),
    )
    m.add_argument(
        "--policy",
        action="append",
        metavar="NAME",
        help=f"assignment policy, repeatable; the first is the baseline (default production; "
        f"shipped: {policies})",
    )
    _sim_source_options(m, trace=True)
    m.add_argument(
        "--replications",
        type=_positive,
        default=5,
        help="independent replications per policy (default 5; one gives no interval)",
    )
    m.add_argument(
        "--independent",
        action="store_true",
        help="give each policy its own random streams instead of common random numbers "
        "(the control: intervals of differences get wider)",
    )
    m.add_argument("--out", type=Path, metavar="DIR", help="directory for the Parquet results")
    m.add_argument(
        "--export",
        type=Path,
        metavar="DIR",
        help="also write replication 0 of the first policy as a platform event export "
        "(Parquet, the catalog's envelope) that replay and audit read "
        "(workbench.sim.platform.simulate_events); DIR must not exist",
    )

    w = sub.add_parser(
        "sweep",
        help="simulate policies over a grid of parameters on Dask (local processes or a cluster)",
        description=(
            "Run every --policy at every combination of the --param values for --replications "
            "replications each, as independent tasks on dask.distributed: a local cluster of "
            "--workers processes, or the cluster at --scheduler. Each task is a pure function of "
            "(configuration, policy, seed, replication), and rows come back sorted by grid "
            "point, policy and replication, so the result does not depend on the number of "
            "workers. Parameters: traders, orders_per_day, clients, config_seed (synthetic), "
            "accept_minutes, complete_minutes, expire_minutes (deadlines), and plain SimConfig "
            "fields such as days, warmup (seconds), sweep_delay, rating_every, top_up_every. "
            "Writes OUT/sweep.parquet (one row per cell) and OUT/summary.parquet (means and "
            "intervals per point and policy). Python: workbench.sim.sweep.sweep()."
        ),
    )
    w.add_argument(
        "--policy",
        action="append",
        metavar="NAME",
        help=f"assignment policy, repeatable (default production; shipped: {policies})",
    )
    w.add_argument(
        "--param",
        action="append",
        type=_param,
        default=[],
        metavar="NAME=V1,V2",
        help="a parameter and its values, repeatable: the grid is every combination "
        "(e.g. --param traders=40,60,80 --param expire_minutes=30,60)",
    )
    _sim_source_options(w, trace=False)
    w.add_argument(
        "--replications", type=_positive, default=3, help="replications per cell (default 3)"
    )
    w.add_argument(
        "--workers",
        type=_positive,
        default=2,
        help="worker processes of the local Dask cluster (default 2; ignored with --scheduler)",
    )
    w.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (its workers need "
        "workbench installed)",
    )
    w.add_argument("--out", type=Path, metavar="DIR", help="directory for the Parquet results")
    _notebook_parsers(sub)
    return parser


def _notebook_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lab = sub.add_parser(
        "lab",
        help="open JupyterLab on the notebooks, with workbench importable in every kernel",
        description=(
            "Start JupyterLab (this Python's `python -m jupyterlab`) rooted at the notebooks' "
            "folder, its python3 kernel pinned to this Python, so every notebook imports this "
            "workbench. As root (a container) it adds --allow-root. Stops with Ctrl-C. Anything "
            "after -- goes to JupyterLab. "
            "Python: workbench.notebook.lab.lab()."
        ),
    )
    lab.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="folder to open (default: ./notebooks, else the repository's notebooks/)",
    )
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("--port", type=_positive, help="port to listen on (default: JupyterLab's)")
    lab.add_argument(
        "--dry-run", action="store_true", help="print the command that would run, and exit"
    )
    lab.add_argument("extra", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    rep = sub.add_parser(
        "report",
        help="run a notebook with parameters and write it as standalone HTML with its charts",
        description=(
            "Run NOTEBOOK top to bottom in a fresh kernel of this Python, in the notebook's "
            "folder (or --cwd), with the given parameters written after its cell tagged "
            "'parameters' (papermill's convention), and write a standalone HTML page: the "
            "outputs with every Plotly chart interactive, plotly.js embedded inline (the page "
            "loads nothing from the network). Relative paths in parameters are relative to that "
            "folder. Exits 1 if a cell fails (the HTML is still written, with the error). "
            "Python: workbench.notebook.execute.report()."
        ),
    )
    rep.add_argument("notebook", metavar="NOTEBOOK", type=Path, help="the .ipynb file to run")
    rep.add_argument("--out", type=Path, metavar="FILE.html", help="the HTML page to write")
    rep.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter, repeatable; VALUE is a Python literal (3, 0.5, None, "
        "\"['a', 'b']\") or else a string (e.g. -p db=../out/other.duckdb)",
    )
    rep.add_argument(
        "--notebook-out",
        type=Path,
        metavar="FILE.ipynb",
        help="also write the executed notebook (it may be NOTEBOOK itself, to refresh its outputs)",
    )
    rep.add_argument(
        "--cwd", type=Path, metavar="DIR", help="working directory (default: the notebook's folder)"
    )
    rep.add_argument("--no-input", action="store_true", help="leave the code out of the HTML")
    rep.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="longest a cell may run (default 600)",
    )


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
    if args.command == "generate":
        return _generate(args)
    if args.command == "summary":
        return _summary(args)
    if args.command == "replay":
        return _replay(args)
    if args.command == "publish":
        return _publish(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "explain":
        return _explain(args)
    if args.command == "status":
        return _status(args)
    if args.command in ("reconcile", "ratings"):
        return _table_command(args)
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "lab":
        return _lab(args)
    if args.command == "report":
        return _report(args)
    raise ValueError(f"unknown command {args.command}")


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
    from .sources import parquet_files

    sources = [s for s in getattr(args, "sources", None) or [] if "://" not in str(s)]
    try:
        found = errors.locate_corrupt(parquet_files(sources)) if sources else None
    except Exception:  # the search is best effort; the reader's own message still stands
        return None
    if found is None:
        return None
    path, detail = found
    return f"{path}: corrupt or unreadable Parquet file ({detail})"


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


def _max_payload(text: str) -> int | None:
    if text.lower() == "none":
        return None
    value = int(text)
    if value <= 0:
        raise ValueError(f"--max-payload-bytes must be positive, not {value}")
    return value


def _replay(args: argparse.Namespace) -> int:
    from .replay import rebuild
    from .replay.stream import is_stream_url

    urls = [s for s in args.sources if is_stream_url(s)]
    if urls:
        if len(args.sources) != 1:
            raise ValueError("the live stream is read alone: one nats://HOST:PORT and no files")
        return _replay_stream(args, urls[0])
    if args.follow:
        raise ValueError("--follow reads the live stream: give nats://HOST:PORT as SOURCE")
    summary = rebuild(
        args.sources,
        args.db,
        full=args.full,
        progress=False if args.no_progress else None,
        engine=args.engine,
        memory_limit=None if args.memory_limit.lower() == "none" else args.memory_limit,
        max_payload_bytes=args.max_payload_bytes,
    )
    print(summary)
    return 0 if summary.balanced else 1


def _replay_stream(args: argparse.Namespace, url: str) -> int:
    from .replay.stream import catch_up, follow

    memory = None if args.memory_limit.lower() == "none" else args.memory_limit
    if args.follow:
        print(
            f"following {url} stream {args.stream} into {args.db} (Ctrl-C or SIGTERM stops "
            "between batches)",
            file=sys.stderr,
        )
        summary = follow(
            args.db,
            url,
            stream=args.stream,
            consumer=args.consumer,
            max_batch=args.batch,
            status=lambda line: print(line, file=sys.stderr, flush=True),
            status_every=args.status_every,
            memory_limit=memory,
            max_payload_bytes=args.max_payload_bytes,
            reader_lag=args.reader_lag,
        )
    else:
        summary = catch_up(
            args.db,
            url,
            stream=args.stream,
            consumer=args.consumer,
            max_batch=args.batch,
            memory_limit=memory,
            max_payload_bytes=args.max_payload_bytes,
        )
    print(summary)
    return 0 if summary.balanced else 1


def _publish(args: argparse.Namespace) -> int:
    from .replay.nats_source import publish

    summary = publish(args.sources, args.to, stream=args.stream, rate=args.rate or None)
    print(summary)
    return 0 if summary.balanced else 1


def _audit(args: argparse.Namespace) -> int:
    import polars as pl

    from .audit import audit

    if args.format == "parquet" and args.out is None:
        raise ValueError("--format parquet needs --out FILE")
    progress = None
    if sys.stderr.isatty():

        def progress(name: str) -> None:
            print(f"\raudit: {name:<28}", end="", file=sys.stderr, flush=True)

    result = audit(args.db, as_of=args.as_of, record=not args.no_record, progress=progress)
    if progress is not None:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    found = result.findings
    if args.check:
        unknown = sorted(set(args.check) - set(found["check"].unique()) - _codes())
        if unknown:
            raise ValueError(f"unknown check code(s) {unknown}; known: {sorted(_codes())}")
        found = found.filter(pl.col("check").is_in(args.check))
    _write_findings(found, args.format, args.out)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(Counter(found["check"]).items())) or "none"
    print(
        f"audit run {result.run_id or '-'}: {found.height} finding(s) in {result.seconds:.1f} s"
        f" ({summary})",
        file=sys.stderr if args.format != "table" or args.out else sys.stdout,
    )
    return 1 if found.height else 0


def _codes() -> set[str]:
    from .domain.violations import CHECK_CODES

    return set(CHECK_CODES)


def _write_findings(found: object, fmt: str, out: Path | None) -> None:
    import polars as pl

    assert isinstance(found, pl.DataFrame)
    flat = found.with_columns(pl.col("evidence").list.join(" "))
    if fmt == "parquet":
        assert out is not None
        found.write_parquet(out)
        return
    if fmt == "table":
        text = _table(found)
    elif fmt == "csv":
        text = flat.write_csv()
    elif fmt == "json":
        text = found.write_json()
    else:
        text = found.write_ndjson()
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


def _table(found: object) -> str:
    import polars as pl

    from .domain.money import format_money

    assert isinstance(found, pl.DataFrame)
    lines = []
    for r in _by_severity(found).iter_rows(named=True):
        money = (
            f" [{format_money(r['amount_delta'], r['currency'], signed=True)}]"
            if r["amount_delta"] is not None
            else ""
        )
        lines.append(
            f"{r['finding_id']}  {r['status']:<8} {r['severity']:<6} {r['check']:<25} "
            f"{r['subject']}{money}\n    {r['detail']}\n    evidence: {', '.join(r['evidence'])}"
        )
    return "\n".join(lines)


#: Worst first, for a person reading the list.
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def _by_severity(found: object) -> Any:
    """Findings as a person reads them: the worst severity first, then the most money at stake
    (amounts of different currencies compared in major units), then as the audit lists them."""
    import polars as pl

    from .domain.money import EXPONENTS

    assert isinstance(found, pl.DataFrame)
    scale = pl.col("currency").replace_strict(
        {c: 10**e for c, e in EXPONENTS.items()}, default=1, return_dtype=pl.Int64
    )
    # exact: the amount's integer part in major units decides, its remainder after it
    major = pl.col("amount_delta").abs() // scale
    rest = (pl.col("amount_delta").abs() % scale) * (10**6 // scale)
    return (
        found.with_row_index("_listed")
        .sort(
            pl.col("severity").replace_strict(SEVERITY_ORDER, default=3, return_dtype=pl.Int8),
            major.fill_null(-1),
            rest.fill_null(-1),
            pl.col("_listed"),
            descending=[False, True, True, False],
        )
        .drop("_listed")
    )


def _table_command(args: argparse.Namespace) -> int:
    import polars as pl

    from .audit import recompute_ratings, reconcile_payouts
    from .replay import store

    if not args.db.exists():
        raise FileNotFoundError(f"{args.db}: no such database (run `workbench replay` first)")
    con = store.connect(args.db, read_only=True)
    try:
        if args.command == "reconcile":
            frame = reconcile_payouts(con)
            bad = (pl.col("orders_difference") != 0) | (pl.col("payouts_difference") != 0)
        else:
            frame = recompute_ratings(con)
            bad = ~pl.col("matches")
    finally:
        con.close()
    mismatched = frame.filter(bad).height
    if args.differences:
        frame = frame.filter(bad)
    if args.format == "parquet":
        if args.out is None:
            raise ValueError("--format parquet needs --out FILE")
        frame.write_parquet(args.out)
    else:
        if args.format == "csv":
            text = frame.write_csv()
        elif args.format == "json":
            text = frame.write_json()
        else:
            with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200):
                text = str(frame)
        if args.out is None:
            print(text)
        else:
            args.out.write_text(text)
    print(f"{args.command}: {frame.height} row(s), {mismatched} not matching", file=sys.stderr)
    return 1 if mismatched else 0


def _status(args: argparse.Namespace) -> int:
    import json

    from .replay.readers import status

    found = status(args.db)
    if args.json:
        print(json.dumps(found.as_dict(), indent=2))
    else:
        print("\n".join(found.lines()))
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .audit import explain

    print(explain(args.db, args.finding_id))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from .summary import summarize

    result, _ = summarize(args.sources)
    print(result.render())
    for v in result.violations[: args.violations]:
        print(f"  {v}")
    if len(result.violations) > args.violations:
        print(f"  … and {len(result.violations) - args.violations} more")
    return 0 if result.balanced else 1


def _sim_config(args: argparse.Namespace) -> object:
    """The configuration the simulate and sweep options describe (warm-up in seconds)."""
    from .sim.sweep import configure

    warmup = args.warmup_hours * 3600.0
    if warmup >= args.days * 86_400:
        raise ValueError(
            f"a warm-up of {args.warmup_hours:g} h leaves nothing of {args.days:g} days"
        )
    trace = getattr(args, "trace", None)
    db = args.from_db or trace
    scale = {}
    if args.traders is not None:
        scale["traders"] = args.traders
    if args.orders_per_day is not None:
        if trace is not None:
            raise ValueError(
                "--orders-per-day does not apply to --trace (the trace has its orders)"
            )
        scale["orders_per_day"] = args.orders_per_day
    if db is None:
        return configure(None, days=args.days, warmup=warmup, **scale)
    if not Path(db).exists():
        raise FileNotFoundError(f"{db}: no such database (run `workbench replay` first)")
    from .sim.calibrate import calibrate

    cal = calibrate(db)
    if trace is not None:
        base = cal.trace_config(days=args.days, warmup=warmup)
    else:
        base = cal.config(days=args.days, warmup=warmup)
    return configure(base, **scale)


def _write_frames(out: Path | None, **frames: object) -> None:
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.write_parquet(out / f"{name}.parquet")  # type: ignore[attr-defined]
    names = ", ".join(f"{n}.parquet" for n in frames)
    print(f"wrote {names} to {out}", file=sys.stderr)


def _simulate(args: argparse.Namespace) -> int:
    from .sim.study import compare, describe, policy_name, simulate

    policies = args.policy or ["production"]
    for p in policies:
        policy_name(p)  # an unknown name fails before any work
    if args.export is not None and args.export.exists():
        raise FileExistsError(f"{args.export} exists; --export writes a new directory")
    config = _sim_config(args)
    progress = False if args.no_progress else None
    common = not args.independent
    if len(policies) == 1:
        reps = simulate(
            config,  # type: ignore[arg-type]
            policies[0],
            seed=args.seed,
            replications=args.replications,
            common=common,
            progress=progress,
        )
        from .sim.study import summarize

        print(describe(reps, level=args.level, common=common))
        _write_frames(args.out, replications=reps, summary=summarize(reps, level=args.level))
    else:
        result = compare(
            config,  # type: ignore[arg-type]
            policies,
            seed=args.seed,
            replications=args.replications,
            level=args.level,
            common=common,
            progress=progress,
        )
        print(result.render())
        _write_frames(
            args.out,
            replications=result.replications,
            differences=result.differences,
            summary=result.summary,
        )
    if args.export is not None:
        from .sim.platform import simulate_events

        _, events = simulate_events(config, policies[0], args.seed, args.export, replication=0)  # type: ignore[arg-type]
        print(
            f"exported {len(events)} events of {policies[0]} replication 0 to {args.export}",
            file=sys.stderr,
        )
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from functools import partial

    from .sim.study import policy_name
    from .sim.sweep import configure, render_sweep, sweep, sweep_summary

    policies = args.policy or ["production"]
    for p in policies:
        policy_name(p)
    params = dict(args.param)
    if len(params) != len(args.param):
        raise ValueError("give each --param once (list all its values after the =)")
    base = _sim_config(args)
    if args.from_db is None:  # rebuild the synthetic platform at each point, e.g. its traders
        warmup = args.warmup_hours * 3600.0
        scale = {k: getattr(args, k) for k in ("traders", "orders_per_day")}
        factory = partial(
            configure,
            None,
            days=args.days,
            warmup=warmup,
            **{k: v for k, v in scale.items() if v is not None},
        )
        configs: object = factory
    else:
        configs = base
    frame = sweep(
        configs,  # type: ignore[arg-type]
        policies,
        params,
        replications=args.replications,
        seed=args.seed,
        scheduler=args.scheduler,
        workers=args.workers,
        progress=False if args.no_progress else None,
    )
    summary = sweep_summary(frame, level=args.level)
    from .sim.study import header

    print(header(frame, level=args.level))
    print()
    print(render_sweep(summary))
    _write_frames(args.out, sweep=frame, summary=summary)
    return 0


def _lab(args: argparse.Namespace) -> int:
    from .notebook import lab

    root = args.dir
    if root is None:
        root = Path("notebooks") if Path("notebooks").is_dir() else lab.NOTEBOOKS
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    extra = [a for a in args.extra if a != "--"]
    if args.dry_run:
        cmd = lab.command(root.resolve(), no_browser=args.no_browser, port=args.port, extra=extra)
        print(" ".join(cmd))
        return 0
    return lab.lab(root, no_browser=args.no_browser, port=args.port, extra=extra)


def _report(args: argparse.Namespace) -> int:
    from nbclient.exceptions import CellExecutionError

    from .notebook import execute

    if args.out is None and args.notebook_out is None:
        raise ValueError("nothing to write: give --out FILE.html and/or --notebook-out FILE.ipynb")
    parameters = dict(execute.parse_assignment(p) for p in args.parameter)
    try:
        execute.report(
            args.notebook,
            args.out,
            parameters=parameters,
            notebook_out=args.notebook_out,
            cwd=args.cwd,
            no_input=args.no_input,
            timeout=args.timeout,
        )
    except CellExecutionError as exc:
        print(f"workbench report: a cell failed:\n{exc}", file=sys.stderr)
        return 1
    for path in (args.out, args.notebook_out):
        if path is not None:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
