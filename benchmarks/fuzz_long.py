"""The replay fuzzer, long: hostile exports for a number of examples or minutes.

    uv run --frozen python benchmarks/fuzz_long.py --minutes 25             # the long run
    uv run --frozen python benchmarks/fuzz_long.py --examples 20 --rows 100  # a short one
    uv run --frozen python benchmarks/fuzz_long.py --replay fuzz-failures/0001
    uv run --frozen python benchmarks/fuzz_long.py --minimise fuzz-failures/0001

Each example is one hostile export (``tests/fuzz/strategies.py``): many hostile rows batched
into a few files, plus stream-only bodies, and every property of :func:`strategies.check` is
run on it (both engines, another order, another split, two runs both ways, the same files again,
the live stream's batch path). Examples are drawn by Hypothesis, chunk by chunk, each chunk
from a fixed seed (``--seed``), so a run is reproducible; nothing is shrunk during the run.

A failing example is saved to ``--out``/NNNN (its Parquet files, its stream bodies, what broke)
and the run goes on; ``--replay`` runs the properties on a saved example again and
``--minimise`` removes files and rows from it for as long as the same failure remains, then
prints the rows left. The last line is the one-line summary (examples, hostile rows, minutes,
failures).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from hypothesis import HealthCheck, Phase, given, seed, settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fuzz import strategies as S  # noqa: E402

from workbench.replay import parquet_rows  # noqa: E402

CHUNK = 4  # examples per Hypothesis run (the time limit is checked between examples)
SHOW_ROWS = 40  # rows printed per file by --replay / --minimise


# --------------------------------------------------------------------------- saving, loading
def next_folder(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    n = len([p for p in out.iterdir() if p.is_dir()]) + 1
    return out / f"{n:04d}"


def save(ex: S.HostileExport, report: S.Report, folder: Path, known: frozenset[str]) -> Path:
    S.write_files(ex.files, folder / "export")
    meta = {
        "files": [
            {"relpath": f.relpath, "row_group_size": f.row_group_size, "attacks": f.attacks}
            for f in ex.files
        ],
        "variant_seed": ex.variant_seed,
        "known": sorted(known),
        "attacks": dict(ex.attacks),
        "findings": [{"prop": f.prop, "detail": f.detail} for f in report.findings],
    }
    (folder / "example.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    (folder / "bodies.json").write_text(
        json.dumps([[name, base64.b64encode(b).decode()] for name, b in ex.bodies])
    )
    (folder / "findings.txt").write_text(
        ex.describe() + "\n\n" + "\n\n".join(str(f) for f in report.findings) + "\n"
    )
    return folder


def load(folder: Path) -> S.HostileExport:
    meta = json.loads((folder / "example.json").read_text())
    files = []
    for f in meta["files"]:
        table = pq.ParquetFile(folder / "export" / f["relpath"]).read()
        files.append(S.HostileFile(f["relpath"], table, f["attacks"], 0, f["row_group_size"]))
    bodies = [
        (name, base64.b64decode(b)) for name, b in json.loads((folder / "bodies.json").read_text())
    ]
    return S.HostileExport(
        files=files,
        bodies=bodies,
        attacks=Counter(meta["attacks"]),
        hostile_rows=0,
        mutated_rows=0,
        variant_seed=meta["variant_seed"],
    )


# --------------------------------------------------------------------------- minimising
def _fails_known(
    ex: S.HostileExport, signature: str, steps: set[str], known: frozenset[str]
) -> bool:
    with tempfile.TemporaryDirectory(prefix="fuzz-min-") as d:
        report = S.check(ex, Path(d), steps=steps, known=known)
    return any(f.signature == signature for f in report.findings)


def known_of(folder: Path) -> frozenset[str]:
    return frozenset(json.loads((folder / "example.json").read_text()).get("known", ()))


def minimise(folder: Path) -> S.HostileExport:
    """Files, then rows, then stream bodies removed while the first finding stays."""
    ex = load(folder)
    meta = json.loads((folder / "example.json").read_text())
    first = S.Finding(meta["findings"][0]["prop"], meta["findings"][0]["detail"])
    signature = first.signature
    stream = S.steps_of(first.prop)
    known = frozenset(meta.get("known", ()))

    def _fails(trial: S.HostileExport, signature: str, steps: set[str]) -> bool:
        return _fails_known(trial, signature, steps, known)

    print(f"minimising {folder} for: {signature}")
    if not _fails(ex, signature, stream):
        print("  the failure does not reproduce as saved")
        return ex
    if not first.prop.endswith("stream bodies"):
        ex.bodies = []
    # whole files
    i = 0
    while i < len(ex.files) and len(ex.files) > 1:
        trial = _replace(ex, files=ex.files[:i] + ex.files[i + 1 :])
        if _fails(trial, signature, stream):
            ex = trial
        else:
            i += 1
    # rows, by halving chunks
    for fi in range(len(ex.files)):
        chunk = max(1, ex.files[fi].table.num_rows // 2)
        while chunk >= 1:
            start = 0
            while start < ex.files[fi].table.num_rows:
                t = ex.files[fi].table
                keep = [r for r in range(t.num_rows) if not start <= r < start + chunk]
                files = list(ex.files)
                f = files[fi]
                files[fi] = S.HostileFile(
                    f.relpath, S.take(t, keep), f.attacks, 0, f.row_group_size
                )
                trial = _replace(ex, files=files)
                if _fails(trial, signature, stream):
                    ex = trial
                else:
                    start += chunk
            chunk //= 2
        print(f"  {ex.files[fi].relpath}: {ex.files[fi].table.num_rows} row(s) left")
    # bodies
    i = 0
    while i < len(ex.bodies):
        trial = _replace(ex, bodies=ex.bodies[:i] + ex.bodies[i + 1 :])
        if _fails(trial, signature, stream):
            ex = trial
        else:
            i += 1
    return ex


def _replace(ex: S.HostileExport, **kw: Any) -> S.HostileExport:
    fields = {
        "files": ex.files,
        "bodies": ex.bodies,
        "attacks": ex.attacks,
        "hostile_rows": 0,
        "mutated_rows": 0,
        "variant_seed": ex.variant_seed,
    }
    fields.update(kw)
    return S.HostileExport(**fields)


def show(ex: S.HostileExport) -> str:
    lines = [ex.describe()]
    for f in ex.files:
        lines.append(f"-- {f.relpath}")
        rows = parquet_rows.rows(f.table)
        for row in rows[:SHOW_ROWS]:
            lines.append("   " + repr({k: _cut(v) for k, v in row.items()}))
        if len(rows) > SHOW_ROWS:
            lines.append(f"   ... {len(rows) - SHOW_ROWS} more rows")
    for name, b in ex.bodies:
        lines.append(f"-- body {name}: {_cut(b)!r}")
    return "\n".join(lines)


def _cut(v: Any) -> Any:
    if isinstance(v, str | bytes) and len(v) > 300:
        return v[:300] + (b"..." if isinstance(v, bytes) else f"... ({len(v)} long)")
    return v


# --------------------------------------------------------------------------- the run
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--examples", type=int, default=None, help="stop after this many examples")
    ap.add_argument("--minutes", type=float, default=None, help="stop after this many minutes")
    ap.add_argument("--rows", type=int, default=400, help="hostile rows per example, about")
    ap.add_argument("--seed", type=int, default=0, help="seed of the first chunk")
    ap.add_argument("--out", type=Path, default=Path("fuzz-failures"), help="failing examples")
    ap.add_argument("--no-stream", action="store_true", help="skip the live stream's batch path")
    ap.add_argument("--replay", type=Path, help="run the properties on a saved example")
    ap.add_argument("--minimise", type=Path, help="minimise a saved example")
    ap.add_argument(
        "--all",
        action="store_true",
        help="also the attacks of the known failures (strategies.KNOWN_FAILURES)",
    )
    args = ap.parse_args(argv)

    if args.replay or args.minimise:
        folder = args.replay or args.minimise
        known = known_of(folder)
        ex = minimise(folder) if args.minimise else load(folder)
        with tempfile.TemporaryDirectory(prefix="fuzz-replay-") as d:
            report = S.check(ex, Path(d), stream=not args.no_stream, known=known)
        print(show(ex))
        print("\n".join(str(f) for f in report.findings) or "all properties hold")
        if args.minimise:
            save(ex, report, folder / "minimal", known)
            print(f"saved to {folder / 'minimal'}")
        return 1 if report.findings else 0

    if args.examples is None and args.minutes is None:
        args.examples = 20
    # about --rows hostile rows: specs of about 10 rows each, spread over 2..6 files
    specs = max(1, args.rows // 10)
    known = frozenset() if args.all else frozenset(S.KNOWN_FAILURES)
    strategy = S.hostile_exports(
        specs=(max(1, specs // 2), specs + specs // 2),
        repeat=19,
        files=(2, 6),
        bodies=(5, 15),
        exclude=known,
    )
    started = time.perf_counter()
    deadline = started + args.minutes * 60 if args.minutes is not None else None
    totals: Counter[str] = Counter()
    attacks: Counter[str] = Counter()
    signatures: Counter[str] = Counter()
    saved: list[Path] = []

    def done() -> bool:
        if args.examples is not None and totals["examples"] >= args.examples:
            return True
        return deadline is not None and time.perf_counter() >= deadline

    def one(ex: S.HostileExport) -> None:
        if done():
            return
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="fuzz-long-") as d:
            report = S.check(ex, Path(d), stream=not args.no_stream, known=known)
        totals["examples"] += 1
        totals["rows"] += ex.rows
        totals["hostile_rows"] += ex.hostile_rows
        totals["mutated_rows"] += ex.mutated_rows
        totals["messages"] += report.messages
        totals["rebuilds"] += report.rebuilds
        totals["stream_compared"] += report.stream_compared
        attacks.update(ex.attacks)
        new = [f for f in report.findings if f.signature not in signatures]
        for f in report.findings:
            signatures[f.signature] += 1
        if report.findings:
            totals["failing_examples"] += 1
            folder = None
            if new or len(saved) < 50:
                folder = save(ex, report, next_folder(args.out), known)
            if folder is not None:
                saved.append(folder)
            for f in new:
                print(f"  NEW FAILURE {f.signature}" + (f"  → {folder}" if folder else ""))
        n = totals["examples"]
        if n % 10 == 0 or n == 1:
            mins = (time.perf_counter() - started) / 60
            print(
                f"{n} examples, {totals['hostile_rows']:,} hostile rows ({totals['rows']:,} rows, "
                f"{totals['messages']:,} messages), {mins:.1f} min, "
                f"{totals['failing_examples']} failing; last {time.perf_counter() - t0:.1f} s",
                flush=True,
            )

    chunk = 0
    while not done():
        run = settings(
            max_examples=CHUNK,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(seed(args.seed + chunk)(given(strategy)(one)))
        run()
        chunk += 1

    minutes = (time.perf_counter() - started) / 60
    print()
    print("attacks tried (rows, files or bodies):")
    for name, n in sorted(attacks.items()):
        print(f"  {name}: {n:,}")
    if signatures:
        print("failures (distinct, with the number of examples that hit each):")
        for sig, n in signatures.most_common():
            print(f"  {n:4d}  {sig}")
    load_avg = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"fuzz_long: {totals['examples']} examples, {totals['hostile_rows']:,} hostile rows "
        f"({totals['mutated_rows']:,} mutated rows, {totals['rows']:,} rows, "
        f"{totals['messages']:,} stream messages, {totals['rebuilds']:,} replays, "
        f"{totals['stream_compared']} stream comparisons), {minutes:.1f} min, "
        f"{totals['failing_examples']} failing examples, {len(signatures)} distinct failures, "
        f"load {load_avg}"
    )
    return 1 if signatures else 0


if __name__ == "__main__":
    sys.exit(main())
