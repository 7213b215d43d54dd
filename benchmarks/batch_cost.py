"""The live follower's cost per batch, by phase, on a database of a given size: old code against
new in the same run, so that the machine's load weighs on both alike.

    uv run python benchmarks/batch_cost.py --base 200000 --batches 8 --sizes 2500,10000 \\
        --code /work/wt-follower-base --code .

For each ``--base`` size N: the first N rows of ``--export`` (in log order; default a generated
export, or e.g. ``/work/bench/1m``) are replayed into a database once per checkout (its own
``rebuild``, so each code builds what it would find); the next rows become stream messages
(``workbench.replay.publish.messages``, exactly what the publisher sends). Then, for each batch
size, each checkout in turn (a child process importing that checkout's ``workbench``) copies its
base database and applies ``--batches`` batches through ``StreamDatabase.apply`` (no broker), the
checkouts interleaved batch size by batch size. Reported per batch, p50 and p90: the whole
``apply`` (typing to commit), typing (``_stage``), the projections (``incremental.apply``) and
the rest (ingest, the position, the commit).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quantile(xs: list[float], q: float) -> float:
    data = sorted(xs)
    return data[min(len(data) - 1, int(q * len(data)))]


# --------------------------------------------------------------------------- the child: one code
def child(args: argparse.Namespace) -> None:
    from workbench.replay import incremental, rebuild, stream
    from workbench.replay.publish import messages
    from workbench.replay.stream import Message, StreamDatabase, StreamKey

    work = Path(args.work)
    base_db = Path(args.base_db)
    if not base_db.exists():
        t = time.perf_counter()
        rebuild([work / "prefix"], str(base_db) + ".tmp", progress=False)
        Path(str(base_db) + ".tmp").rename(base_db)
        print(f"# built {base_db.name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    bodies = [m.body for m in messages([work / "suffix"]) if m.kind != "redelivery"]
    db = work / f"run-{os.getpid()}.duckdb"
    shutil.copy(base_db, db)
    phases: dict[str, float] = {}

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        def wrapper(*a, **kw):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    stream.StreamDatabase._stage = timed("typing", stream.StreamDatabase._stage)  # type: ignore[method-assign]
    steps: dict[str, float] = {}
    original = incremental.apply

    def apply_timed(*a, **kw):  # type: ignore[no-untyped-def]
        kw.setdefault("timings", steps)
        return original(*a, **kw)

    incremental.apply = timed("projections", apply_timed)  # type: ignore[assignment]
    key = StreamKey("bench:S", "epoch-1")
    store = StreamDatabase(db, "bench://")
    rows = []
    seq = 0
    for k in range(args.batches):
        chunk = bodies[k * args.size : (k + 1) * args.size]
        if not chunk:
            break
        msgs = [Message(seq + i + 1, b) for i, b in enumerate(chunk)]
        seq += len(msgs)
        phases.clear()
        steps.clear()
        result = store.apply(key, msgs)
        assert result.balanced and result.how in ("incremental", "none"), result
        typing = phases.get("typing", 0.0)
        proj = phases.get("projections", 0.0)
        rows.append(
            {
                "total": result.seconds,
                "typing": typing,
                "projections": proj,
                "rest": result.seconds - typing - proj,
                "messages": len(msgs),
                "steps": dict(steps),
            }
        )
    store.close()
    db.unlink()
    print(json.dumps(rows))


# --------------------------------------------------------------------------- the parent
def prepare(work: Path, export: Path | None, base: int, tail: int) -> None:
    """``prefix`` (the first ``base`` rows in log order) and ``suffix`` (the next ``tail``)."""
    import duckdb

    if (work / "prefix").exists() and (work / "suffix").exists():
        return
    if export is None:
        from workbench.generator import generate

        export = work.parent / "export"
        if not export.exists():
            days = 7
            per_day = max(50, (base + tail) // days // 10)
            generate(
                export,
                seed=5,
                days=days,
                orders_per_day=per_day,
                traders=max(24, per_day // 20),
                clients=12,
                progress=False,
            )
    for part in ("prefix", "suffix"):
        (work / part).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    src = f"read_parquet('{export}/**/*.parquet', hive_partitioning = true)"
    con.execute(
        f"CREATE TEMP TABLE t AS SELECT * EXCLUDE (date), row_number() OVER "
        f"(ORDER BY position, event_id) AS n FROM {src}"
    ).fetchall()
    con.execute(
        f"COPY (SELECT * EXCLUDE (n) FROM t WHERE n <= {base} ORDER BY n) "
        f"TO '{work}/prefix/part-0.parquet' (FORMAT parquet)"
    ).fetchall()
    con.execute(
        f"COPY (SELECT * EXCLUDE (n) FROM t WHERE n > {base} AND n <= {base + tail} ORDER BY n) "
        f"TO '{work}/suffix/part-0.parquet' (FORMAT parquet)"
    ).fetchall()
    con.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--export", type=Path, default=None)
    p.add_argument("--base", default="200000", help="database sizes, comma-separated")
    p.add_argument("--sizes", default="2500,10000", help="batch sizes, comma-separated")
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2, help="each code this many times, in turns")
    p.add_argument("--steps", action="store_true", help="the projections' slowest steps too")
    p.add_argument("--code", action="append", default=None, help="checkouts to compare")
    p.add_argument("--work", type=Path, default=Path("/tmp/batch_cost"))
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--base-db", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    codes = [Path(c).resolve() for c in (args.code or [str(ROOT)])]
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"# load average {os.getloadavg()}")
    for base in (int(b) for b in args.base.split(",")):
        work = args.work / f"base-{base}"
        prepare(work, args.export, base, args.batches * max(sizes))
        for size in sizes:
            runs: dict[Path, list[dict]] = {c: [] for c in codes}  # type: ignore[type-arg]
            for _ in range(args.rounds):
                for code in codes:
                    runs[code] += _child(args, work, code, size)
            for code in codes:
                rows = runs[code]
                cells = []
                for ph in ("total", "typing", "rest", "projections"):
                    xs = [r[ph] for r in rows]
                    cells.append(f"{ph} {_quantile(xs, 0.5):.3f}/{_quantile(xs, 0.9):.3f}")
                rate = sum(r["messages"] for r in rows) / sum(r["total"] for r in rows)
                print(
                    f"base {base:>9,} batch {size:>6,} {code.name:<22} {_rev(code):<9} "
                    + "  ".join(cells)
                    + f"  ({statistics.mean(r['total'] for r in rows):.3f} mean, {rate:,.0f} ev/s,"
                    f" load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
                if args.steps:
                    tot: dict[str, float] = {}
                    for r in rows:
                        for k, v in r["steps"].items():
                            tot[k] = tot.get(k, 0.0) + v / len(rows)
                    top = sorted(tot.items(), key=lambda kv: -kv[1])[:12]
                    print("    steps (mean s): " + ", ".join(f"{k} {v:.3f}" for k, v in top))


def _child(args: argparse.Namespace, work: Path, code: Path, size: int) -> list[dict]:  # type: ignore[type-arg]
    base_db = work / f"base-{code.name}-{_rev(code)}.duckdb"
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--work",
            str(work),
            "--base-db",
            str(base_db),
            "--size",
            str(size),
            "--batches",
            str(args.batches),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    if out.stderr.strip():
        print(out.stderr.strip())
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _rev(code: Path) -> str:
    """The checkout's commit (and ``+`` if its tree has changes), to name its base database."""
    head = subprocess.run(
        ["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(code), "status", "--porcelain", "--", "workbench"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return head + ("+" if dirty else "")


if __name__ == "__main__":
    main()
