"""Full-rebuild benchmark: workbench replay vs the `eventsourcing` library, same events, same run.

    uv run --group bench python benchmarks/replay_bench.py --events 10000000

1. Builds (or reuses, under --work) an export of about N events: one generated history of
   --base events, tiled into copies whose ids, aggregates and positions are renamed so that each
   copy is an independent, valid platform (a faithful larger platform, made quickly).
2. Times ``workbench replay --full`` of the whole export (engine ``sql`` by default) in a child
   process, and reports events/s and that process's peak memory.
3. Times ``workbench audit`` of the replayed database (every check) in a child process.
4. Replays the same events through the `eventsourcing` library (its in-memory store, one aggregate
   per stream and id, every aggregate rebuilt from its events through the library's repository),
   timing --es-events of them (the library is far slower, so a sample gives its rate).

Prints the figures and the ratio; docs/performance.md records them with this command.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parents[1]


def build_export(work: Path, events: int, base_events: int, seed: int) -> Path:
    """An export of about ``events`` events: a generated base tiled into renamed copies."""
    out = work / f"export-{events}"
    if out.exists():
        return out
    from workbench.generator import generate

    base = work / f"base-{base_events}"
    if not base.exists():
        days = 7
        per_day = max(50, base_events // days // 10)
        generate(
            base,
            seed=seed,
            days=days,
            orders_per_day=per_day,
            traders=max(24, per_day // 20),
            clients=20,
            progress=False,
        )
    con = duckdb.connect()
    con.execute(
        f"CREATE TABLE b AS SELECT * EXCLUDE (date) FROM read_parquet('{base}/**/*.parquet', hive_partitioning = true)"
    ).fetchall()
    n = con.execute("SELECT count(*), max(position) - min(position) + 1 FROM b").fetchall()[0]
    copies = max(1, round(events / n[0]))
    span = int(n[1])
    out.mkdir(parents=True)
    for k in range(copies):
        # Copy k: every id gets a suffix (ids inside payloads and plan refs too), receipt files a
        # prefix of their own, positions move past copy k-1: each copy is a platform of its own.
        sfx = f"~{k}"
        ids = (
            "regexp_replace({col}, '\\b((?:cl|tr|po|rc|pay|tu)-[0-9a-f]+)', '\\1" + sfx + "', 'g')"
        )
        con.execute(
            f"""COPY (
              SELECT event_id || '{sfx}' AS event_id, position + {k * span} AS position, stream,
                     {ids.format(col="aggregate_id")} AS aggregate_id, seq, kind, schema_version, occurred_at, recorded_at,
                     {ids.format(col="correlation_id")} AS correlation_id, causation_id || '{sfx}' AS causation_id,
                     regexp_replace({ids.format(col="payload")},
                                    '"file_sha256":"[0-9a-f]{{3}}', '"file_sha256":"{k:03x}') AS payload
              FROM b) TO '{out}/copy-{k:03d}.parquet' (FORMAT parquet, COMPRESSION zstd)"""
        ).fetchall()
    return out


def time_replay(export: Path, db: Path, engine: str) -> dict[str, Any]:
    code = (
        "import json, resource, sys, time\n"
        "from workbench.replay import rebuild\n"
        "t = time.perf_counter()\n"
        f"s = rebuild([{str(export)!r}], {str(db)!r}, full=True, progress=False, engine={engine!r})\n"
        "print(json.dumps({'read': s.read, 'seconds': time.perf_counter() - t, 'balanced': s.balanced,"
        " 'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def time_audit(db: Path) -> dict[str, Any]:
    """The audit of the replayed database (every check), in a child process."""
    code = (
        "import json, resource, time\n"
        "from workbench.audit import audit\n"
        "t = time.perf_counter()\n"
        f"r = audit({str(db)!r}, record=False)\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'findings': r.findings.height,"
        " 'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'timings': r.timings}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def eventsourcing_rate(export: Path, limit: int) -> dict[str, Any]:
    """Replay ``limit`` events through the eventsourcing library; returns its events/s."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Stream(Aggregate):  # one aggregate per (stream, aggregate_id), as the platform has
        def __init__(self, stream: str, aggregate_id: str) -> None:
            self.stream = stream
            self.aggregate_id = aggregate_id
            self.state: dict[str, str] = {}
            self.applied = 0

        @event("Happened")
        def happened(self, kind: str, payload: str) -> None:
            self.state[kind] = payload
            self.applied += 1

    con = duckdb.connect()
    rows = con.execute(
        f"SELECT stream, aggregate_id, kind, payload FROM read_parquet('{export}/**/*.parquet') "
        f"QUALIFY row_number() OVER (PARTITION BY event_id) = 1 ORDER BY position LIMIT {limit}"
    ).fetchall()
    app = Application()
    aggs: dict[tuple[str, str], Any] = {}
    for stream, agg_id, kind, payload in rows:  # load the store (not timed)
        key = (stream, agg_id)
        a = aggs.get(key)
        if a is None:
            a = aggs[key] = Stream(stream, agg_id)
        a.happened(kind, payload)
    app.save(*aggs.values())
    ids = [a.id for a in aggs.values()]
    stored = len(rows) + len(ids)  # each aggregate also stores its creation event
    start = time.perf_counter()
    replayed = 0
    for i in ids:
        replayed += app.repository.get(i).applied + 1
    seconds = time.perf_counter() - start
    assert replayed == stored
    return {"events": replayed, "seconds": seconds, "events_per_s": replayed / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--events", type=int, default=10_000_000, help="events in the export (default 10M)"
    )
    ap.add_argument(
        "--base", type=int, default=1_000_000, help="events generated before tiling (default 1M)"
    )
    ap.add_argument(
        "--es-events",
        type=int,
        default=300_000,
        help="events replayed through eventsourcing (default 300k)",
    )
    ap.add_argument("--engine", default="sql", choices=["sql", "fold"])
    ap.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "wb-bench",
        help="where exports are kept between runs",
    )
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    export = build_export(args.work, args.events, args.base, args.seed)
    print(f"export: {export} (prepared in {time.perf_counter() - t:.0f} s)")
    db = args.work / "bench.duckdb"
    db.unlink(missing_ok=True)
    ours = time_replay(export, db, args.engine)
    print(
        f"workbench replay ({args.engine}): {ours['read']:,} events in {ours['seconds']:.1f} s = "
        f"{ours['read'] / ours['seconds']:,.0f} events/s, peak {ours['peak_mb']:,.0f} MB, balanced={ours['balanced']}"
    )
    audited = time_audit(db)
    print(
        f"workbench audit: {audited['findings']:,} findings in {audited['seconds']:.1f} s, "
        f"peak {audited['peak_mb']:,.0f} MB; per check: "
        + ", ".join(f"{k} {v:.1f}" for k, v in audited["timings"].items())
    )
    es = eventsourcing_rate(export, args.es_events)
    print(
        f"eventsourcing: {es['events']:,} events in {es['seconds']:.1f} s = {es['events_per_s']:,.0f} events/s"
    )
    print(f"ratio: {ours['read'] / ours['seconds'] / es['events_per_s']:.1f}x")
    print(f"this process peak: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
