"""Time the generator on about a million events (issue: "well under two minutes here").

Run: ``uv run python benchmarks/generate_1m.py [--days 7 --orders-per-day 13000 --traders 600]``.
Prints events, wall and CPU seconds, events/s and peak RSS; results go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from workbench.generator import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--orders-per-day", type=int, default=13_000)
    ap.add_argument("--traders", type=int, default=600)
    ap.add_argument("--clients", type=int, default=40)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--clean", action="store_true")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="wb-gen-"))
    try:
        cpu = time.process_time()
        s = generate(
            out / "export",
            truth=out / "truth.csv",
            seed=args.seed,
            days=args.days,
            orders_per_day=args.orders_per_day,
            traders=args.traders,
            clients=args.clients,
            clean=args.clean,
            progress=False,
        )
        cpu = time.process_time() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(s)
        print(
            f"events={s.events} wall_s={s.seconds:.1f} cpu_s={cpu:.1f} events_per_s={s.events_per_second:,.0f} peak_rss_mb={peak:.0f}"
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
