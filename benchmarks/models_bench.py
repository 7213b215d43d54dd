"""Time every model of a full build over a replayed database: where a rebuild's time goes, and
whether the violations' cost grows linearly with the events.

    uv run python benchmarks/models_bench.py out/1m.duckdb [out/3m.duckdb ...] [--repeat 3]

Each database must have been replayed already (``workbench replay EXPORT --db DB``). The build
runs inside a transaction that is rolled back, so the database is not changed. Prints, per
database, the median seconds of each model over the repeats, the sum per layer, and (with two or
more databases) the violations' cost ratio against the smallest one next to the events' ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from workbench import models
from workbench.replay import bulk, store


def time_build(db: Path, repeat: int) -> tuple[int, dict[str, float]]:
    con = store.connect(db)
    try:
        events = int(con.execute("SELECT count(*) FROM events").fetchall()[0][0])
        runs: list[dict[str, float]] = []
        for _ in range(repeat):
            con.execute("BEGIN TRANSACTION").fetchall()
            try:
                runs.append(bulk.build(con))
            finally:
                con.execute("ROLLBACK").fetchall()
        return events, {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    finally:
        con.close()


def by_layer(timings: dict[str, float]) -> dict[str, float]:
    layer = {m.name: m.layer for m in models.load().values()}
    out: dict[str, float] = {}
    for name, seconds in timings.items():
        key = "violations" if name == "violations" else layer.get(name, "prelude")
        out[key] = out.get(key, 0.0) + seconds
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dbs", nargs="+", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    results = []
    for db in args.dbs:
        events, timings = time_build(db, args.repeat)
        layers = by_layer(timings)
        results.append((db, events, timings, layers))
        print(f"\n## {db} ({events:,} events), median of {args.repeat}")
        for name, seconds in sorted(timings.items(), key=lambda kv: -kv[1]):
            print(f"  {name:28s} {seconds:7.3f} s")
        print("  per layer: " + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(layers.items())))
        print(f"  total {sum(timings.values()):.2f} s")
    if len(results) > 1:
        _, e0, _, l0 = results[0]
        print("\n| database | events | × events | violations s | × violations |")
        print("|---|---|---|---|---|")
        for db, events, _, layers in results:
            print(
                f"| {db.name} | {events:,} | {events / e0:.2f} | {layers['violations']:.2f} | "
                f"{layers['violations'] / l0['violations']:.2f} |"
            )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
