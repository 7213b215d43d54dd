"""Time single models over a replayed database, each after what it reads is built (untimed): a
model of the full build (a projection, as the replay runs it over ``ev``) or a table of the
audit's (``audit_policy_sequence``, …). For one model's cost before and after a change, run it
from each checkout's environment on the same database, one after the other:

    CHECKOUT/.venv/bin/python benchmarks/model_times.py DB order_attempts audit_policy_hits --runs 3

The database is opened read-only and the tables are temporary, so nothing is changed. Prints
each run's seconds and the rows, and the load average before the first.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from workbench import models
from workbench.audit import shared
from workbench.replay import bulk, store
from workbench.replay.engine import DEFAULT_MEMORY_LIMIT
from workbench.statements.readable import ensure_tables


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", type=Path)
    ap.add_argument("model", nargs="+")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    con = store.connect(args.db, read_only=True, memory_limit=DEFAULT_MEMORY_LIMIT)
    ensure_tables(con)
    print(f"load {os.getloadavg()[0]:.2f}, {models.__file__}")
    audit_tables = shared.tables()
    for name in args.model:
        model = audit_tables.get(name) or models.load()[name]
        if model.layer in bulk.BUILD_LAYERS:  # as a full build runs it
            con.execute(bulk.PRELUDE).fetchall()
            bulk.empty_priors(con)
            for dep in bulk.plan((name,)):
                if dep.name != name and dep.layer != "projections":
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {dep.name} AS {dep.sql()}")
        else:
            shared.prepare(con, [r for r in model.reads if r != name])
        sql = model.sql()
        for _ in range(args.runs):
            start = time.perf_counter()
            con.execute(f"CREATE OR REPLACE TEMP TABLE timed_{name} AS {sql}").fetchall()
            took = time.perf_counter() - start
            rows = con.execute(f"SELECT count(*) FROM timed_{name}").fetchall()[0][0]
            print(f"{name}: {took:.2f} s, {rows} rows", flush=True)


if __name__ == "__main__":
    main()
