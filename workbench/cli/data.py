"""Commands that read or write exports and databases: generate, replay, publish, summary."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from . import options as opt


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    g.add_argument("--days", type=opt.positive, default=7, help="simulated days (default 7)")
    g.add_argument(
        "--orders-per-day",
        type=opt.positive,
        default=600,
        help="mean payment orders per day (default 600)",
    )
    g.add_argument(
        "--traders", type=opt.positive, default=24, help="registered traders (default 24)"
    )
    g.add_argument("--clients", type=opt.positive, default=6, help="registered clients (default 6)")
    g.add_argument(
        "--start",
        type=opt.date,
        default=datetime(2026, 11, 1, tzinfo=UTC),
        help="first day, YYYY-MM-DD (default 2026-11-01)",
    )
    g.add_argument("--truth", type=Path, help="CSV file for the ground truth of planted anomalies")
    g.add_argument(
        "--clean", action="store_true", help="plant no anomalies: a history that breaks no rule"
    )
    g.add_argument(
        "--statements",
        action="store_true",
        help="also write the payout provider's statements, one per day, as CSV and camt.053 "
        "(OUT_DIR/statements/YYYY-MM-DD.csv and .camt053.xml), with breaks of every statement "
        "check planted unless --clean (their truth in --truth)",
    )
    g.add_argument(
        "--plant",
        type=opt.names,
        metavar="VARIANT[,VARIANT...]",
        help="plant only these anomaly variants, comma-separated (default: every variant, each "
        "simulated day); an unknown name is refused with the list of known ones",
    )
    g.add_argument("--overwrite", action="store_true", help="replace an existing export in OUT_DIR")
    g.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it only shows on a terminal anyway)",
    )
    g.set_defaults(run=_generate)

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
        type=opt.max_payload,
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
        type=opt.positive,
        default=50_000,
        metavar="N",
        help="stream only: at most N messages per transaction (default 50000; a batch takes "
        "whatever has arrived, so it is small when the stream is quiet, and is filled when the "
        "consumer is far behind: a catch-up in full batches is several times faster)",
    )
    r.add_argument(
        "--status-every",
        type=opt.non_negative,
        default=5.0,
        metavar="S",
        help="stream with --follow: a status line every S seconds (default 5; 0: none)",
    )
    r.add_argument(
        "--reader-lag",
        type=opt.positive_seconds,
        default=5.0,
        metavar="S",
        help="stream with --follow: readers (audit, notebooks, connect(read_only=True)) see a "
        "read snapshot at most about S seconds behind the last commit (default 5); publishing "
        "one copies the database, so a large database wants a larger S",
    )
    r.set_defaults(run=_replay)

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
        type=opt.non_negative,
        metavar="N",
        help="at most N messages per second (a steady publisher; default: as fast as acked)",
    )
    pb.set_defaults(run=_publish)

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
    s.set_defaults(run=_summary)


def _generate(args: argparse.Namespace) -> int:
    from ..generator import GeneratorConfig, generate

    cfg = GeneratorConfig(
        seed=args.seed,
        days=args.days,
        orders_per_day=args.orders_per_day,
        traders=args.traders,
        clients=args.clients,
        start=args.start,
        clean=args.clean,
        statements=args.statements,
        plant=args.plant,
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
    from ..replay import rebuild
    from ..replay.stream import is_stream_url

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
    from ..replay.stream import catch_up, follow

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
    from ..replay.nats_source import publish

    summary = publish(args.sources, args.to, stream=args.stream, rate=args.rate or None)
    print(summary)
    return 0 if summary.balanced else 1


def _summary(args: argparse.Namespace) -> int:
    from ..summary import summarize

    result, _ = summarize(args.sources)
    print(result.render())
    for v in result.violations[: args.violations]:
        print(f"  {v}")
    if len(result.violations) > args.violations:
        print(f"  … and {len(result.violations) - args.violations} more")
    return 0 if result.balanced else 1
