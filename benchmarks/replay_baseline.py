"""The baseline the replay is measured against (issue 15): a plain DuckDB pipeline, same export.

    uv run python benchmarks/replay_baseline.py EXPORT_DIR [--repeat 3] [--json out.json]
    uv run --group bench python benchmarks/replay_baseline.py EXPORT_DIR --eventsourcing
    uv run python benchmarks/replay_baseline.py EXPORT_DIR --append

``baseline(sources, db)`` is what a competent engineer would write in an afternoon without the
workbench: the Parquet files (listed in Python) read once by DuckDB, deduplicated by
``event_id`` (the lowest ``position`` kept), persisted as ``events``, and four projections built
with straightforward SQL and no validation at all: ``orders`` (last status by kind, amount,
currency), ``trader_balances`` (deposit and open holds by ``ref``), ``ledger_balances`` (committed
postings per account and currency, debits of batches not yet ended) and ``clients``. Payloads
are parsed with ``from_json`` wrapped in ``TRY`` (the sample has malformed payloads, which a
plain pipeline skips rather than crashes on). It is one transaction, like the replay, with the
replay's DuckDB memory cap and ``preserve_insertion_order = false``.

The runner times, each step in a child process of its own (wall clock, CPU and peak RSS from
``os.wait4`` of that child), in alternating order across rounds after uncounted warm-up rounds:

- ``baseline``: the pipeline above into a fresh database file;
- ``replay``: ``workbench replay EXPORT --db NEW.duckdb --full --no-progress`` (the venv's
  entry point: interpreter start and imports included, as for the baseline's child);
- ``eventsourcing`` (``--eventsourcing``, needs the ``bench`` group): ``replay_bench.py``'s
  ``eventsourcing_rate``, whose own figure times only rebuilding the aggregates from its
  in-memory store (loading the store is not timed).

Then it compares the last baseline database with the last replay database (rows agreeing per
projection), so the baseline is seen to compute the same figures. ``--append`` instead times,
on an export of several ``date=YYYY-MM-DD/`` folders: the last day appended to a database
holding the other days; the last day into an empty database; the last day replayed again into
the database that already holds it; the whole export's full rebuild and its replay into a
database that already holds it. Prints a markdown table for docs/performance.md; ``--json``
writes every run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

BENCH = Path(__file__).resolve().parent
DEFAULT_MEMORY_LIMIT = "1200MB"  # the replay's default cap (`workbench replay --help`)


# --------------------------------------------------------------------------------------------
# The baseline pipeline
# --------------------------------------------------------------------------------------------


def parquet_files(sources: Sequence[str | Path]) -> list[str]:
    """Every ``*.parquet`` under the sources (directories walked, sorted), files as given."""
    files: list[str] = []
    for src in map(Path, sources):
        if src.is_dir():
            files += sorted(str(p) for p in src.rglob("*.parquet"))
        else:
            files.append(str(src))
    return files


def _sql_list(items: Sequence[str]) -> str:
    return "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in items) + "]"


EVENTS_SQL = """
CREATE TABLE events AS
SELECT event_id, position, stream, aggregate_id, seq, kind, schema_version,
       occurred_at, recorded_at, correlation_id, causation_id, payload
FROM read_parquet({files})
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY position) = 1
"""

ORDERS_SQL = """
CREATE TABLE orders AS
WITH created AS (
    SELECT aggregate_id AS order_id,
           TRY(from_json(payload, '{"client_id": "VARCHAR", "direction": "VARCHAR",
               "amount": "BIGINT", "currency": "VARCHAR",
               "money": {"amount": "BIGINT", "currency": "VARCHAR"}}')) AS p
    FROM events
    WHERE kind = 'payment_order.created'
    QUALIFY row_number() OVER (PARTITION BY aggregate_id ORDER BY position) = 1
),
steps AS (
    SELECT aggregate_id AS order_id, position, seq, occurred_at, kind,
           CASE kind
               WHEN 'payment_order.created' THEN 'pending'
               WHEN 'payment_order.assigned' THEN 'assigned'
               WHEN 'payment_order.accepted' THEN 'in_progress'
               WHEN 'payment_order.assignment_declined' THEN 'pending'
               WHEN 'payment_order.assignment_expired' THEN 'pending'
               WHEN 'payment_order.review_started' THEN 'in_review'
               WHEN 'payment_order.completed' THEN 'completed'
               WHEN 'payment_order.cancelled' THEN 'cancelled'
               WHEN 'payment_order.disputed' THEN 'disputed'
               WHEN 'payment_order.dispute_resolved' THEN
                   CASE TRY(payload ->> 'outcome') WHEN 'upheld' THEN 'completed'
                                                   WHEN 'reversed' THEN 'cancelled' END
           END AS status  -- receipt_attached (and anything else) leaves the status as it was
    FROM events
    WHERE stream = 'payment_order'
),
last AS (
    SELECT order_id,
           arg_max(status, position) FILTER (WHERE status IS NOT NULL) AS status,
           count(*) FILTER (WHERE kind = 'payment_order.assigned') AS attempts,
           max(occurred_at) AS updated_at,
           max(seq) AS version
    FROM steps
    GROUP BY order_id
)
SELECT l.order_id, c.p.client_id, c.p.direction,
       coalesce(c.p.money.amount, c.p.amount) AS amount,
       coalesce(c.p.money.currency, c.p.currency) AS currency,
       l.status, l.attempts, l.updated_at, l.version
FROM last l LEFT JOIN created c USING (order_id)
"""

TRADER_BALANCES_SQL = """
CREATE TABLE trader_balances AS
WITH money AS (
    SELECT aggregate_id AS trader_id, kind, position,
           TRY(from_json(payload, '{"ref": "VARCHAR", "amount": "BIGINT"}')) AS p
    FROM events
    WHERE kind IN ('trader.deposit_topped_up', 'trader.deposit_credited',
                   'trader.deposit_debited', 'trader.hold_placed', 'trader.hold_released',
                   'trader.hold_captured')
),
deposit AS (
    SELECT trader_id,
           sum(CASE WHEN kind IN ('trader.deposit_topped_up', 'trader.deposit_credited')
                        THEN p.amount
                    WHEN kind IN ('trader.deposit_debited', 'trader.hold_captured')
                        THEN -p.amount
                    ELSE 0 END) AS deposit_balance
    FROM money
    GROUP BY trader_id
),
holds AS (  -- the last hold event of each ref: a hold is open if it placed it
    SELECT trader_id, p.ref, arg_max(kind, position) AS last_kind,
           arg_max(p.amount, position) AS amount
    FROM money
    WHERE kind IN ('trader.hold_placed', 'trader.hold_released', 'trader.hold_captured')
    GROUP BY trader_id, p.ref
),
held AS (
    SELECT trader_id, sum(amount) AS held, count(*) AS open_holds
    FROM holds WHERE last_kind = 'trader.hold_placed'
    GROUP BY trader_id
)
SELECT d.trader_id, d.deposit_balance, coalesce(h.held, 0) AS held,
       d.deposit_balance - coalesce(h.held, 0) AS available,
       coalesce(h.open_holds, 0) AS open_holds
FROM deposit d LEFT JOIN held h USING (trader_id)
"""

LEDGER_BALANCES_SQL = """
CREATE TABLE ledger_balances AS
WITH held AS (
    SELECT aggregate_id AS plan_id, p.batch_id, unnest(p.postings) AS posting
    FROM (SELECT aggregate_id,
                 TRY(from_json(payload, '{"batch_id": "BIGINT", "postings": [{"from": "VARCHAR",
                     "to": "VARCHAR", "amount": "BIGINT", "currency": "VARCHAR"}]}')) AS p
          FROM events WHERE kind = 'ledger_plan.batch_held')
),
endings AS (
    SELECT aggregate_id AS plan_id, unnest(p.batch_ids) AS batch_id, kind, position
    FROM (SELECT aggregate_id, kind, position,
                 TRY(from_json(payload, '{"batch_ids": ["BIGINT"]}')) AS p
          FROM events WHERE kind IN ('ledger_plan.committed', 'ledger_plan.rolled_back'))
),
ended AS (  -- a batch ends once: its first ending counts
    SELECT plan_id, batch_id, arg_min(kind, position) AS end_kind
    FROM endings GROUP BY plan_id, batch_id
),
entries AS (
    SELECT posting."from" AS account, posting.currency, -posting.amount AS delta, e.end_kind
    FROM held h LEFT JOIN ended e USING (plan_id, batch_id)
    UNION ALL
    SELECT posting."to", posting.currency, posting.amount, e.end_kind
    FROM held h LEFT JOIN ended e USING (plan_id, batch_id)
)
SELECT account, currency,
       coalesce(sum(delta) FILTER (WHERE end_kind = 'ledger_plan.committed'), 0) AS own,
       coalesce(-sum(delta) FILTER (WHERE end_kind IS NULL AND delta < 0), 0) AS held,
       own - held AS available
FROM entries
GROUP BY account, currency
"""

CLIENTS_SQL = """
CREATE TABLE clients AS
WITH c AS (
    SELECT aggregate_id AS client_id, kind, position, seq, occurred_at,
           TRY(from_json(payload, '{"name": "VARCHAR", "settlement_currency": "VARCHAR",
               "fee_bps": "INTEGER"}')) AS p
    FROM events
    WHERE stream = 'client'
)
SELECT client_id,
       arg_min(p.name, position) FILTER (WHERE kind = 'client.registered') AS name,
       arg_min(p.settlement_currency, position) FILTER (WHERE kind = 'client.registered')
           AS settlement_currency,
       arg_max(p.fee_bps, position)
           FILTER (WHERE kind IN ('client.registered', 'client.fee_changed')) AS fee_bps,
       min(occurred_at) FILTER (WHERE kind = 'client.registered') AS registered_at,
       max(occurred_at) AS updated_at,
       max(seq) AS version
FROM c
GROUP BY client_id
"""

PROJECTIONS = {
    "orders": ORDERS_SQL,
    "trader_balances": TRADER_BALANCES_SQL,
    "ledger_balances": LEDGER_BALANCES_SQL,
    "clients": CLIENTS_SQL,
}


def typed_tables_sql() -> list[str]:
    """The workbench's typed payload tables (``payload_<stream>``, item 1 of issue 15), written
    by the plain pipeline as it would: every payload parsed once with ``from_json`` into its
    stream's columns, no validation (``TRY``: a malformed payload gives NULL columns)."""
    from workbench.replay.payload_types import PAYLOAD_ENVELOPE, payload_columns, structure
    from workbench.replay.schema import PAYLOAD_TABLES

    out = []
    for stream, table in PAYLOAD_TABLES.items():
        q = "'" + structure(stream).replace("'", "''") + "'"
        cols = [*PAYLOAD_ENVELOPE]
        for c in payload_columns(stream):
            value = f'j."{c.name}"'
            cols.append(f"TRY_CAST({value} AS {c.type})" if c.cast else value)
        out.append(table.ddl())
        out.append(
            f"INSERT INTO {table.name} SELECT {', '.join(cols)} FROM (SELECT *, "
            f"TRY(from_json(payload, {q})) AS j FROM events WHERE stream = '{stream}')"
        )
    return out


def baseline(
    sources: Sequence[str | Path],
    db_path: str | Path,
    memory_limit: str | None = None,
    typed: Sequence[str] = (),
) -> dict[str, Any]:
    """The plain pipeline into ``db_path`` (created); returns seconds per step and row counts.
    ``typed``: statements that also write the typed payload tables the replay keeps
    (:func:`typed_tables_sql`, made by the parent: the child does not import the workbench)."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    files = parquet_files(sources)
    con = duckdb.connect(str(db_path))
    try:
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute("SET preserve_insertion_order = false")
        con.execute("BEGIN TRANSACTION")
        t = time.perf_counter()
        con.execute(EVENTS_SQL.format(files=_sql_list(files)))
        timings["events"] = time.perf_counter() - t
        if typed:
            t = time.perf_counter()
            for sql in typed:
                con.execute(sql)
            timings["typed_payloads"] = time.perf_counter() - t
        for name, sql in PROJECTIONS.items():
            t = time.perf_counter()
            con.execute(sql)
            timings[name] = time.perf_counter() - t
        t = time.perf_counter()
        con.execute("COMMIT")
        timings["commit"] = time.perf_counter() - t
        rows = {
            name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # type: ignore[index]
            for name in ("events", *PROJECTIONS)
        }
    finally:
        t = time.perf_counter()
        con.close()  # checkpoints the database file
        timings["close"] = time.perf_counter() - t
    return {
        "files": len(files),
        "rows": rows,
        "timings": timings,
        "seconds": time.perf_counter() - start,
    }


# --------------------------------------------------------------------------------------------
# Running steps as child processes
# --------------------------------------------------------------------------------------------


def rows_in(sources: Sequence[str | Path]) -> int:
    """Rows in the export's files (from the Parquet footers: nothing is read)."""
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(f).num_rows for f in parquet_files(sources))


def run_child(argv: list[str], log: Path) -> dict[str, Any]:
    """Run ``argv`` as a child process; its wall seconds, CPU seconds and peak RSS (MB)."""
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{text[-3000:]}")
    result: dict[str, Any] = {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
    }
    last = text.strip().splitlines()[-1] if text.strip() else ""
    if last.startswith("{"):
        result["child"] = json.loads(last)
    return result


def remove_db(db: Path) -> None:
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    shutil.rmtree(f"{db}.tmp", ignore_errors=True)


def workbench_exe() -> str:
    exe = Path(sys.executable).with_name("workbench")
    if exe.exists():
        return str(exe)
    found = shutil.which("workbench")
    if not found:
        raise SystemExit("no `workbench` entry point beside this Python or on PATH")
    return found


def replay_argv(sources: Sequence[str], db: Path, memory_limit: str, full: bool) -> list[str]:
    argv = [workbench_exe(), "replay", *sources, "--db", str(db), "--no-progress"]
    argv += ["--memory-limit", memory_limit or "none"]
    return [*argv, "--full"] if full else argv


def baseline_argv(
    sources: Sequence[str], db: Path, memory_limit: str, typed: Path | None = None
) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), *sources, "--child-baseline", str(db)]
    extra = ["--child-typed", str(typed)] if typed is not None else []
    return [*argv, "--memory-limit", memory_limit or "none", *extra]


def eventsourcing_argv(export: str, limit: int) -> list[str]:
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        f"sys.path.insert(0, {str(BENCH)!r})\n"
        "from replay_bench import eventsourcing_rate\n"
        f"print(json.dumps(eventsourcing_rate(Path({export!r}), {limit})))\n"
    )
    return [sys.executable, "-c", code]


def summarise(runs: list[dict[str, Any]]) -> dict[str, float]:
    walls = [r["wall_s"] for r in runs]
    return {
        "n": len(runs),
        "wall_median_s": statistics.median(walls),
        "wall_min_s": min(walls),
        "cpu_median_s": statistics.median(r["cpu_s"] for r in runs),
        "peak_rss_max_mb": max(r["peak_rss_mb"] for r in runs),
    }


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, DuckDB {duckdb.__version__}"
    )


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --------------------------------------------------------------------------------------------
# Agreement of the baseline with the replay (so the baseline is seen to do the same work)
# --------------------------------------------------------------------------------------------

AGREEMENT = {
    "orders": (
        "b.orders x LEFT JOIN r.payment_orders y USING (order_id)",
        "x.status IS NOT DISTINCT FROM y.status AND x.amount IS NOT DISTINCT FROM y.amount "
        "AND x.currency IS NOT DISTINCT FROM y.currency",
        "r.payment_orders",
    ),
    "trader_balances": (
        "b.trader_balances x LEFT JOIN r.traders y USING (trader_id)",
        "x.deposit_balance IS NOT DISTINCT FROM y.deposit_balance "
        "AND x.held IS NOT DISTINCT FROM y.held",
        "r.traders",
    ),
    "ledger_balances": (
        "b.ledger_balances x LEFT JOIN r.account_balances y USING (account, currency)",
        "x.own IS NOT DISTINCT FROM y.own AND x.held IS NOT DISTINCT FROM y.held",
        "r.account_balances",
    ),
    "clients": (
        "b.clients x LEFT JOIN r.clients y USING (client_id)",
        "x.name IS NOT DISTINCT FROM y.name AND x.settlement_currency IS NOT DISTINCT FROM "
        "y.settlement_currency AND x.fee_bps IS NOT DISTINCT FROM y.fee_bps",
        "r.clients",
    ),
}


def agreement(baseline_db: Path, replay_db: Path) -> dict[str, dict[str, int]]:
    con = duckdb.connect()
    con.execute(f"ATTACH '{baseline_db}' AS b (READ_ONLY)")
    con.execute(f"ATTACH '{replay_db}' AS r (READ_ONLY)")
    out = {}
    for name, (join, same, theirs) in AGREEMENT.items():
        rows, agree = con.execute(
            f"SELECT count(*), count(*) FILTER ({same}) FROM {join}"
        ).fetchone()  # type: ignore[misc]
        out[name] = {
            "baseline_rows": rows,
            "agree": agree,
            "replay_rows": con.execute(f"SELECT count(*) FROM {theirs}").fetchone()[0],  # type: ignore[index]
        }
    con.close()
    return out


# --------------------------------------------------------------------------------------------
# The two modes
# --------------------------------------------------------------------------------------------


def compare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    sources = [str(s) for s in args.sources]
    events = rows_in(sources)
    steps: dict[str, Any] = {
        "baseline": lambda db: baseline_argv(sources, db, args.memory_limit),
        "replay": lambda db: replay_argv(sources, db, args.memory_limit, full=True),
    }
    if args.typed:
        typed_sql = work / "typed.json"
        typed_sql.write_text(json.dumps(typed_tables_sql()))
        steps["baseline_typed"] = lambda db: baseline_argv(
            sources, db, args.memory_limit, typed_sql
        )
    if args.eventsourcing:
        steps["eventsourcing"] = lambda db: eventsourcing_argv(sources[0], args.es_events)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in steps}
    rounds = args.warmup + args.repeat
    load_before = load()
    for r in range(rounds):
        order = list(steps) if r % 2 == 0 else list(reversed(steps))
        for name in order:
            db = work / f"{name}-{r}.duckdb"
            remove_db(db)  # a fresh file every time (also when --work is reused)
            res = run_child(steps[name](db), work / f"{name}-{r}.log")
            res["round"], res["warmup"] = r, r < args.warmup
            if r >= args.warmup:
                runs[name].append(res)
            print(
                f"round {r}{' (warm-up)' if r < args.warmup else ''}: {name} {res['wall_s']:.2f} s, peak {res['peak_rss_mb']:.0f} MB",
                file=sys.stderr,
            )
            if r < rounds - 1:
                remove_db(db)
    load_after = load()
    summary = {name: summarise(rs) for name, rs in runs.items()}
    for s in summary.values():
        s["events"] = events
        s["events_per_s"] = events / s["wall_median_s"]
    if args.eventsourcing:
        es = [r["child"] for r in runs["eventsourcing"]]
        summary["eventsourcing"].update(
            events=es[0]["events"],
            fold_median_s=statistics.median(e["seconds"] for e in es),
            fold_min_s=min(e["seconds"] for e in es),
            events_per_s=statistics.median(e["events_per_s"] for e in es),
        )
    b, rp = summary["baseline"], summary["replay"]
    ratios = {"replay_over_baseline_wall": rp["wall_median_s"] / b["wall_median_s"]}
    if args.typed:
        ratios["replay_over_baseline_typed_wall"] = (
            rp["wall_median_s"] / summary["baseline_typed"]["wall_median_s"]
        )
    if args.eventsourcing:
        ratios["replay_over_eventsourcing_rate"] = (
            rp["events_per_s"] / summary["eventsourcing"]["events_per_s"]
        )
    last = rounds - 1
    agree = agreement(work / f"baseline-{last}.duckdb", work / f"replay-{last}.duckdb")
    breakdown = {
        k: statistics.median(r["child"]["timings"][k] for r in runs["baseline"])
        for k in runs["baseline"][0]["child"]["timings"]
    }
    return {
        "mode": "compare",
        "sources": sources,
        "events": events,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "memory_limit": args.memory_limit,
        "machine": machine(),
        "load_before": load_before,
        "load_after": load_after,
        "summary": summary,
        "ratios": ratios,
        "baseline_breakdown_median_s": breakdown,
        "baseline_rows": runs["baseline"][0]["child"]["rows"],
        "agreement": agree,
        "runs": runs,
    }


def days_of(export: Path) -> list[Path]:
    days = sorted(p for p in export.iterdir() if p.is_dir() and p.name.startswith("date="))
    if len(days) < 2:
        raise SystemExit(f"{export}: --append needs at least two date=YYYY-MM-DD/ folders")
    return days


def last_hashes(db: Path) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT hashes FROM replay_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    finally:
        con.close()
    return dict(json.loads(row[0])) if row else {}


def append(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if len(args.sources) != 1:
        raise SystemExit("--append takes one export directory")
    export = args.sources[0]
    days = days_of(export)
    first, last_day = [str(d) for d in days[:-1]], str(days[-1])
    ml = args.memory_limit
    load_before = load()
    prev = work / "previous-days.duckdb"
    remove_db(prev)
    run_child(replay_argv(first, prev, ml, full=True), work / "previous-days.log")  # not timed
    runs: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("append", "empty", "again_last_day", "full", "again_all")
    }
    copy_s: list[float] = []
    rounds = args.warmup + args.repeat
    hashes: dict[str, dict[str, str]] = {}

    def block_append(r: int) -> list[tuple[str, dict[str, Any]]]:
        db = work / f"append-{r}.duckdb"
        remove_db(db)
        t = time.perf_counter()
        shutil.copyfile(prev, db)
        if Path(f"{prev}.wal").exists():
            shutil.copyfile(f"{prev}.wal", f"{db}.wal")
        if r >= args.warmup:
            copy_s.append(time.perf_counter() - t)
        a = run_child(replay_argv([last_day], db, ml, full=False), work / f"append-{r}.log")
        hashes["append"] = last_hashes(db)
        b = run_child(replay_argv([last_day], db, ml, full=False), work / f"again-{r}.log")
        remove_db(db)
        return [("append", a), ("again_last_day", b)]

    def block_empty(r: int) -> list[tuple[str, dict[str, Any]]]:
        db = work / f"empty-{r}.duckdb"
        remove_db(db)
        e = run_child(replay_argv([last_day], db, ml, full=True), work / f"empty-{r}.log")
        remove_db(db)
        return [("empty", e)]

    def block_full(r: int) -> list[tuple[str, dict[str, Any]]]:
        db = work / f"full-{r}.duckdb"
        remove_db(db)
        f = run_child(replay_argv([str(export)], db, ml, full=True), work / f"full-{r}.log")
        hashes["full"] = last_hashes(db)
        g = run_child(replay_argv([str(export)], db, ml, full=False), work / f"again-all-{r}.log")
        remove_db(db)
        return [("full", f), ("again_all", g)]

    blocks = [block_append, block_empty, block_full]
    for r in range(rounds):
        for block in blocks if r % 2 == 0 else reversed(blocks):
            for name, res in block(r):
                res["round"] = r
                if r >= args.warmup:
                    runs[name].append(res)
                print(
                    f"round {r}{' (warm-up)' if r < args.warmup else ''}: {name} {res['wall_s']:.2f} s",
                    file=sys.stderr,
                )
    load_after = load()
    remove_db(prev)
    summary = {name: summarise(rs) for name, rs in runs.items()}
    events_last, events_all = rows_in([last_day]), rows_in([str(export)])
    for name, s in summary.items():
        s["events"] = events_all if name in ("full", "again_all") else events_last
        s["events_per_s"] = s["events"] / s["wall_median_s"]
    med = {k: v["wall_median_s"] for k, v in summary.items()}
    differing = sorted(
        k
        for k in set(hashes["append"]) | set(hashes["full"])
        if hashes["append"].get(k) != hashes["full"].get(k)
    )
    return {
        "mode": "append",
        "export": str(export),
        "previous_days": first,
        "last_day": last_day,
        "events_last_day": events_last,
        "events_all": events_all,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "memory_limit": ml,
        "machine": machine(),
        "load_before": load_before,
        "load_after": load_after,
        "copy_median_s": statistics.median(copy_s),
        "summary": summary,
        "ratios": {
            "append_over_empty": med["append"] / med["empty"],
            "again_last_day_over_full": med["again_last_day"] / med["full"],
            "again_all_over_full": med["again_all"] / med["full"],
        },
        "appended_hashes_equal_full_rebuild": not differing,
        "hashes_differing": differing,
        "runs": runs,
    }


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def fmt_s(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def markdown_compare(res: dict[str, Any]) -> str:
    s, ratios = res["summary"], res["ratios"]
    n = res["repeat"]
    src = " ".join(res["sources"])
    out = [
        f"{res['events']:,} events in `{src}`; {res['machine']}; {n} counted rounds after "
        f"{res['warmup']} warm-up, alternating order, each step a whole child process; DuckDB "
        f"memory cap {res['memory_limit'] or 'none'} for both; load average before {res['load_before']}, "
        f"after {res['load_after']}.",
        "",
        f"| step | events | wall (median of {n}) | min | events/s | CPU | peak RSS | vs baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = s["baseline"]["wall_median_s"]
    labels = {
        "baseline": "plain DuckDB pipeline (`benchmarks/replay_baseline.py`)",
        "replay": "`workbench replay --full`",
        "eventsourcing": "`eventsourcing` fold (timed part only)",
        "baseline_typed": "plain pipeline + the typed payload tables (`--typed`)",
    }
    for name, row in s.items():
        if name == "eventsourcing":  # its own timing: the fold only, not loading the store
            wall, least, cpu = row["fold_median_s"], row["fold_min_s"], "–"
            vs = "–"
        else:
            wall, least, cpu = row["wall_median_s"], row["wall_min_s"], fmt_s(row["cpu_median_s"])
            vs = f"{wall / base:.2f}×"
        out.append(
            f"| {labels[name]} | {row['events']:,} | {fmt_s(wall)} | {fmt_s(least)} "
            f"| {row['events_per_s']:,.0f} | {cpu} | {row['peak_rss_max_mb']:,.0f} MB | {vs} |"
        )
    out += ["", f"Ratio replay/baseline (wall): **{ratios['replay_over_baseline_wall']:.2f}×**."]
    if "replay_over_baseline_typed_wall" in ratios:
        out.append(
            "Ratio replay/(baseline + typed payload tables): "
            f"**{ratios['replay_over_baseline_typed_wall']:.2f}×**."
        )
    if "replay_over_eventsourcing_rate" in ratios:
        out.append(
            f"Ratio replay/eventsourcing (events/s): {ratios['replay_over_eventsourcing_rate']:.2f}× "
            "(the replay's whole process against eventsourcing's timed fold; its events include "
            "one creation event per aggregate, its peak RSS its whole process, loading included; "
            f"that process took {fmt_s(s['eventsourcing']['wall_median_s'])})."
        )
    bd = res["baseline_breakdown_median_s"]
    out += [
        "",
        "Baseline steps (median s): " + ", ".join(f"{k} {v:.2f}" for k, v in bd.items()) + ".",
        "",
        "Agreement of the baseline's projections with the replay's (last round): "
        + "; ".join(
            f"{k} {v['agree']:,}/{v['baseline_rows']:,} (replay has {v['replay_rows']:,})"
            for k, v in res["agreement"].items()
        )
        + ".",
    ]
    return "\n".join(out)


def markdown_append(res: dict[str, Any]) -> str:
    s, r = res["summary"], res["ratios"]
    n = res["repeat"]
    last = Path(res["last_day"]).name
    out = [
        f"`{res['export']}`: {res['events_all']:,} events, last day `{last}` "
        f"{res['events_last_day']:,} events; {res['machine']}; {n} counted rounds after "
        f"{res['warmup']} warm-up, alternating order, whole child processes; DuckDB memory "
        f"cap {res['memory_limit'] or 'none'}; load average "
        f"before {res['load_before']}, after {res['load_after']}.",
        "",
        f"| what | events | wall (median of {n}) | min | peak RSS | against | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [
        (
            "append",
            "append the last day to a database holding the other days "
            f"(copying it first, {res['copy_median_s']:.3f} s, not included)",
            "empty",
            r["append_over_empty"],
        ),
        ("empty", "the last day into an empty database", None, None),
        (
            "again_last_day",
            "the last day again, into the database that already holds it",
            "full",
            r["again_last_day_over_full"],
        ),
        ("full", "full rebuild of the whole export (`--full`)", None, None),
        (
            "again_all",
            "the whole export again, into the database that already holds it",
            "full",
            r["again_all_over_full"],
        ),
    ]
    for key, what, against, ratio in rows:
        row = s[key]
        vs = f"{against} {fmt_s(s[against]['wall_median_s'])}" if against else "–"
        rt = f"**{ratio:.2f}×**" if ratio is not None else "–"
        out.append(
            f"| {what} | {row['events']:,} | {fmt_s(row['wall_median_s'])} "
            f"| {fmt_s(row['wall_min_s'])} | {row['peak_rss_max_mb']:,.0f} MB | {vs} | {rt} |"
        )
    same = res["appended_hashes_equal_full_rebuild"]
    out += [
        "",
        "Projection hashes after the append "
        + (
            "equal the full rebuild's."
            if same
            else f"differ from the full rebuild's: {res['hashes_differing']}."
        ),
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("sources", nargs="+", type=Path, metavar="EXPORT_DIR")
    ap.add_argument("--repeat", type=int, default=3, help="counted rounds (default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="uncounted rounds first (default 1)")
    ap.add_argument(
        "--eventsourcing",
        action="store_true",
        help="also time replay_bench.py's eventsourcing fold (needs `uv run --group bench`)",
    )
    ap.add_argument(
        "--es-events", type=int, default=300_000, help="events through eventsourcing (300k)"
    )
    ap.add_argument(
        "--append", action="store_true", help="time appending the last day and replaying again"
    )
    ap.add_argument(
        "--memory-limit",
        default=DEFAULT_MEMORY_LIMIT,
        help=f"DuckDB memory cap for every step (default {DEFAULT_MEMORY_LIMIT}, the replay's); 'none'",
    )
    ap.add_argument("--json", type=Path, help="write every run and the summary here")
    ap.add_argument("--work", type=Path, help="folder for the databases (default: a temporary one)")
    ap.add_argument("--child-baseline", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-typed", type=Path, help=argparse.SUPPRESS)
    ap.add_argument(
        "--typed",
        action="store_true",
        help="also time the plain pipeline writing the typed payload tables the replay keeps "
        "(what storing them costs, apart from validating and the models)",
    )
    args = ap.parse_args(argv)
    if args.memory_limit.lower() == "none":
        args.memory_limit = ""
    if args.child_baseline:  # one baseline run, in this (child) process
        remove_db(args.child_baseline)
        print(
            json.dumps(
                baseline(
                    args.sources,
                    args.child_baseline,
                    args.memory_limit or None,
                    json.loads(args.child_typed.read_text()) if args.child_typed else (),
                )
            )
        )
        return
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    work = args.work or Path(tempfile.mkdtemp(prefix="wb-baseline-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.append:
            res = append(args, work)
            table = markdown_append(res)
        else:
            res = compare(args, work)
            table = markdown_compare(res)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table)
    print(f"\nCommand: `{' '.join(['python', 'benchmarks/replay_baseline.py', *sys.argv[1:]])}`")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
