"""Live readers: how far behind a steady publisher a reader sees the stream, end to end.

    uv run python benchmarks/live_readers.py                        # 5,000 events/s for 60 s
    uv run python benchmarks/live_readers.py --rate 5000 --seconds 60 --reader-lag 5 \\
        --also-reader-lag 2 [--held]

For each reader lag (--reader-lag, then --also-reader-lag unless 0), one after the other: a
fresh local nats-server (JetStream, file storage) and database; the follower runs as the CLI
does (``workbench replay nats://… --db DB --follow --status-every 0 --reader-lag S``, a child
process); once it has published its first snapshot, ``workbench publish --rate R`` (another
child) publishes rate × seconds rows of a generated export. This process is the reader: every
50 ms it lists the published snapshots (``snapshots.published``) and notes when a new
generation became visible; for each new one it opens ``workbench.connect(db, read_only=True)``
and counts ``events`` (timed, and checked against the snapshot's position). It also reads the
follower's status file every 50 ms, for the commits (``last_seq``, ``last_commit_at``).

Once a snapshot holds the stream's last message, the follower gets SIGTERM (it must exit 0)
and each message's JetStream timestamp is read back through the workbench's own consumer
(``NatsSource``). Message s is visible when the first snapshot with last_seq >= s was seen,
committed at the first commit seen with last_seq >= s (the status file is rewritten at most
every 0.5 s, so a commit it skipped counts at the next one: an upper bound). Prints p50, p99
and max of publish → commit and publish → visible over every message, the snapshots' cost and
the reader's open + count time, side by side. docs/performance.md records the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import nats
from stream_bench import make_export

import workbench
from workbench.replay import snapshots
from workbench.replay.nats_local import LocalServer
from workbench.replay.nats_source import STREAM, NatsSource, ensure_stream
from workbench.replay.readers import snapshot_of

WB = str(Path(sys.executable).parent / "workbench")


def q(data: list[float], p: float) -> float:
    """The ``p`` quantile, as ``StreamSummary.latency`` takes it."""
    s = sorted(data)
    return s[min(len(s) - 1, int(p * len(s)))] if s else float("nan")


def make_prefix(work: Path, export: Path, rows: int) -> Path:
    out = work / f"prefix-{rows}"
    if not out.exists():
        tmp = work / f".prefix-{rows}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        con = duckdb.connect()
        n = con.execute(
            f"SELECT count(*) FROM read_parquet('{export}/**/*.parquet', hive_partitioning = true)"
        ).fetchall()[0][0]
        if n < rows:
            raise SystemExit(f"{export} holds {n:,} rows, fewer than the {rows:,} wanted")
        con.execute(
            f"COPY (SELECT * EXCLUDE (date) FROM read_parquet('{export}/**/*.parquet', "
            f"hive_partitioning = true) ORDER BY position LIMIT {rows}) "
            f"TO '{tmp}/part-0.parquet' (FORMAT parquet)"
        ).fetchall()
        con.close()
        tmp.rename(out)
    return out


async def publish_times(url: str) -> dict[int, int]:
    """Stream sequence → the time JetStream stored the message (ns), read back through a
    consumer of its own."""
    nc = await nats.connect(url)
    last = int((await nc.jetstream().stream_info(STREAM)).state.last_seq)
    await nc.close()
    src = NatsSource(url)
    await src.connect()
    await src.start(None, "bench-publish-times")
    out: dict[int, int] = {}
    while len(out) < last:
        msgs = await src.fetch(20_000, 5.0)
        if not msgs:
            raise RuntimeError(f"read {len(out):,} of {last:,} messages back, then nothing")
        out.update((m.seq, int(m.published_ns or 0)) for m in msgs)
        await src.ack(msgs)
    await src.close()
    return out


async def create_stream(url: str) -> None:
    nc = await nats.connect(url)
    await ensure_stream(nc.jetstream())
    await nc.close()


def size_mb(path: Path) -> float:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file()) / 1e6
    return path.stat().st_size / 1e6 if path.exists() else 0.0


#: A reader that keeps one connection for the whole run, querying it every second (--held).
HOLDER = (
    "import sys, time, workbench\n"
    "con = workbench.connect(sys.argv[1], read_only=True)\n"
    "while True:\n"
    "    print(con.execute('SELECT count(*) FROM events').fetchall()[0][0], flush=True)\n"
    "    time.sleep(1)\n"
)


def phase(work: Path, prefix: Path, rate: float, lag: float, held: bool = False) -> dict[str, Any]:
    tag = f"lag{lag:g}" + ("-held" if held else "")
    base = work / tag
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    db = base / "live.duckdb"
    load_before = os.getloadavg()
    with LocalServer(base / "js") as server:
        asyncio.run(create_stream(server.url))
        flog = (base / "follower.err").open("w")
        cmd = [WB, "replay", server.url, "--db", str(db), "--follow", "--status-every", "0"]
        follower = subprocess.Popen(
            [*cmd, "--reader-lag", str(lag)],
            stdout=subprocess.PIPE,
            stderr=flog,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not snapshots.published(db):
            if follower.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the follower did not start; see {base / 'follower.err'}")
            time.sleep(0.05)
        holder = (
            subprocess.Popen(
                [sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, text=True
            )
            if held
            else None
        )
        publisher = subprocess.Popen(
            [WB, "publish", str(prefix), "--to", server.url, "--rate", str(rate)],
            stdout=subprocess.PIPE,
            text=True,
        )
        seen: list[tuple[snapshots.Snapshot, float]] = []  # (snapshot, when first listed)
        opened: list[float] = []  # seconds for connect + count(*)
        commits: dict[int, float] = {}  # last_seq → last_commit_at, from the status file
        mismatches: list[str] = []
        last_seq: int | None = None
        deadline = float("inf")
        while True:
            snaps = snapshots.published(db)
            now = time.time()
            if snaps and (not seen or snaps[0].generation != seen[-1][0].generation):
                seen.append((snaps[0], now))
                t0 = time.perf_counter()
                con = workbench.connect(str(db), read_only=True)
                n = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
                info = snapshot_of(con)
                con.close()
                opened.append(time.perf_counter() - t0)
                if n != info["events"]:
                    mismatches.append(f"gen {info['generation']}: {n} != {info['events']}")
            st = snapshots.read_status(db)
            if st is not None and st.last_seq is not None and st.last_commit_at is not None:
                commits.setdefault(st.last_seq, st.last_commit_at)
            if last_seq is None and publisher.poll() is not None:
                nc_last = asyncio.run(_last_seq(server.url))
                last_seq, deadline = nc_last, time.monotonic() + 120
            if last_seq is not None and seen and (seen[-1][0].position.last_seq or 0) >= last_seq:
                break
            if time.monotonic() > deadline or follower.poll() is not None:
                raise RuntimeError(f"no snapshot reached {last_seq}; see {base / 'follower.err'}")
            time.sleep(0.05)
        follower.send_signal(signal.SIGTERM)
        f_out, _ = follower.communicate(timeout=120)
        flog.close()
        if holder is not None:
            alive = holder.poll() is None
            holder.kill()
            counts = set(holder.communicate(timeout=30)[0].split())
            if not alive or len(counts) != 1:
                mismatches.append(f"held reader: alive {alive}, counts seen {sorted(counts)}")
        p_out = publisher.stdout.read() if publisher.stdout else ""
        times = asyncio.run(publish_times(server.url))
    load_after = os.getloadavg()

    for snap, _ in seen:  # a snapshot's position is a commit too (exact)
        if snap.position.last_seq:
            commits.setdefault(snap.position.last_seq, snap.position.committed_at)
    pub = {s: ns / 1e9 for s, ns in times.items()}
    snap_seq = [s.position.last_seq or 0 for s, _ in seen]
    commit_seq = sorted(commits)
    visible, committed = [], []
    for s, t in pub.items():
        i = bisect.bisect_left(snap_seq, s)
        visible.append(seen[i][1] - t)
        j = bisect.bisect_left(commit_seq, s)
        committed.append(commits[commit_seq[j]] - t)
    real = [(s, t) for s, t in seen if s.position.last_seq]
    cost = [s.published_at - s.position.committed_at for s, _ in real]
    gaps = [b.published_at - a.published_at for (a, _), (b, _) in itertools.pairwise(real)]
    batches = re.search(r"messages in ([\d,]+) batches", f_out)
    pub_line = p_out.strip().splitlines()[0] if p_out.strip() else "?"
    final = seen[-1][0].position
    return {
        "lag": lag,
        "held": held,
        "messages": len(pub),
        "publisher": pub_line,
        "publish_rate": len(pub) / (max(pub.values()) - min(pub.values())),
        "applied_rate": final.events / (max(commits.values()) - min(pub.values())),
        "events": final.events,
        "commit": committed,
        "visible": visible,
        "behind": [v - c for v, c in zip(visible, committed, strict=True)],
        "snapshots": len(real),
        "cost": cost,
        "gaps": gaps,
        "opened": opened,
        "mismatches": mismatches,
        "commits_seen": len(commits),
        "batches": batches.group(1) if batches else "?",
        "db_mb": size_mb(db),
        "snap_mb": size_mb(snapshots.snapshot_dir(db)),
        "snap_files": len(list(snapshots.snapshot_dir(db).glob("*.duckdb"))),
        "exit": follower.returncode,
        "summary": f_out.strip(),
        "load": (load_before, load_after),
    }


async def _last_seq(url: str) -> int:
    nc = await nats.connect(url)
    try:
        return int((await nc.jetstream().stream_info(STREAM)).state.last_seq)
    finally:
        await nc.close()


def dist(xs: list[float]) -> str:
    return f"{q(xs, 0.5):.2f} / {q(xs, 0.99):.2f} / {max(xs):.2f} s" if xs else "-"


def report(runs: list[dict[str, Any]]) -> None:
    rows: list[tuple[str, list[str]]] = [
        ("messages published", [f"{r['messages']:,}" for r in runs]),
        ("publisher rate (stored)", [f"{r['publish_rate']:,.0f}/s" for r in runs]),
        ("events applied, rate", [f"{r['events']:,}, {r['applied_rate']:,.0f}/s" for r in runs]),
        ("publish → commit p50/p99/max", [dist(r["commit"]) for r in runs]),
        ("publish → visible p50/p99/max", [dist(r["visible"]) for r in runs]),
        ("commit → visible p50/p99/max", [dist(r["behind"]) for r in runs]),
        (
            "goal p99 visible < 5 s",
            ["met" if q(r["visible"], 0.99) < 5 else "NOT met" for r in runs],
        ),
        ("snapshots published", [str(r["snapshots"]) for r in runs]),
        ("commit → published p50/p99/max", [dist(r["cost"]) for r in runs]),
        ("between snapshots p50/p99/max", [dist(r["gaps"]) for r in runs]),
        ("reader connect+count p50/p99/max", [dist(r["opened"]) for r in runs]),
        ("count == position.events", ["; ".join(r["mismatches"]) or "all" for r in runs]),
        ("commits seen / batches", [f"{r['commits_seen']} / {r['batches']}" for r in runs]),
        (
            "database, snapshots dir (files)",
            [f"{r['db_mb']:.0f} MB, {r['snap_mb']:.0f} MB ({r['snap_files']})" for r in runs],
        ),
        ("follower exit code", [str(r["exit"]) for r in runs]),
        (
            "load before → after",
            [
                "{:.1f} {:.1f} {:.1f} → {:.1f} {:.1f} {:.1f}".format(*r["load"][0], *r["load"][1])
                for r in runs
            ],
        ),
    ]
    width = max(len(k) for k, _ in rows)
    cols = [max(len(v[i]) for _, v in rows) for i in range(len(runs))]
    head = [f"reader-lag {r['lag']:g} s" + (", one held" if r["held"] else "") for r in runs]
    print(f"{'':{width}}  " + "  ".join(h.ljust(c) for h, c in zip(head, cols, strict=True)))
    for k, vs in rows:
        print(f"{k:{width}}  " + "  ".join(v.ljust(c) for v, c in zip(vs, cols, strict=True)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=5000.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--reader-lag", type=float, default=5.0)
    ap.add_argument("--also-reader-lag", type=float, default=2.0, help="0: none")
    ap.add_argument("--events", type=int, help="export size (default: 1.15 × rate × seconds)")
    ap.add_argument(
        "--held",
        action="store_true",
        help="also run --reader-lag again with a reader process holding one connection open for "
        "the whole run (does the follower keep its lag?)",
    )
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "wb-live-readers")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = int(args.rate * args.seconds)
    export = make_export(args.work, args.events or int(rows * 1.15), args.seed)
    prefix = make_prefix(args.work, export, rows)
    runs = []
    plan = [(args.reader_lag, False)]
    plan += [(args.also_reader_lag, False)] if args.also_reader_lag else []
    plan += [(args.reader_lag, True)] if args.held else []
    for lag, held in plan:
        print(
            f"-- reader lag {lag:g} s{', a reader held' if held else ''}: {rows:,} messages "
            f"at {args.rate:,.0f}/s",
            flush=True,
        )
        r = phase(args.work, prefix, args.rate, lag, held)
        print(r["publisher"])
        print(r["summary"], flush=True)
        runs.append(r)
    report(runs)
    if any(r["exit"] != 0 or r["mismatches"] for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
