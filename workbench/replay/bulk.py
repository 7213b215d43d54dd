"""The columnar path: every projection computed by DuckDB over the whole ``events`` table.

The per-event fold (:mod:`workbench.domain.world` laid out by :mod:`.rows`) *defines* each
projection; this module computes the same tables in SQL, column by column, which is what makes a
rebuild of millions of events fast. They must agree row for row: :func:`differences` compares
them and the differential tests run it on generated histories, anomalies included.

Each projection's SQL is a ``SELECT`` whose columns are the table's columns in schema order. It
reads only ``events`` (valid, deduplicated events; payload as JSON text in the version written)
and earlier projections, in the order of :data:`ORDER`.
"""

from __future__ import annotations

import time
from typing import Any

import duckdb

from .schema import BY_NAME
from .sql_entities import SQL as ENTITY_SQL
from .sql_entities import TRADER_HOLDS
from .sql_orders import SQL as ORDER_SQL

#: Events numbered once per build in ``(position, event_id)`` order (a temp table, not a view:
#: every projection reads ``ord``, and a view would sort all events again for each one). Only the
#: two key columns are sorted; the rows are joined to their number (sorting whole rows with their
#: payloads costs twice as much).
PRELUDE = """
CREATE OR REPLACE TEMP TABLE ev AS
SELECT e.* EXCLUDE (source), o.ord
FROM events e
JOIN (SELECT event_id, row_number() OVER (ORDER BY position, event_id) AS ord FROM events) o
USING (event_id)
"""

SQL: dict[str, str] = {**ENTITY_SQL, **ORDER_SQL}

#: The order in which projections are built (a projection may read those before it).
ORDER: tuple[str, ...] = (
    "clients",
    "payment_orders",
    "order_attempts",
    "traders",
    "receipts",
    "payouts",
    "ledger_plans",
    "ledger_postings",
    "account_balances",
    "trader_ratings",
    "violations",
)


def _exec(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    con.execute(sql).fetchall()


def build(
    con: duckdb.DuckDBPyConnection, only: tuple[str, ...] | None = None, progress: Any = None
) -> dict[str, float]:
    """Replace every projection (or ``only`` those) with its SQL result; returns seconds per step.

    ``progress`` is an optional tqdm-like bar, advanced once per projection."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    _exec(con, PRELUDE)
    timings["ev"] = time.perf_counter() - start
    for name in ORDER:
        if only is not None and name not in only:
            continue
        t = BY_NAME[name]
        start = time.perf_counter()
        _exec(con, f"DELETE FROM {t.name}")
        if progress is not None:
            progress.set_description(f"replay: {name}")
        _exec(con, f"INSERT INTO {t.name} ({', '.join(t.column_names)}) {SQL[name]}")
        timings[name] = time.perf_counter() - start
        if progress is not None:
            progress.update(1)
    if only is None:
        start = time.perf_counter()
        _exec(con, "DELETE FROM trader_holds")
        _exec(con, f"INSERT INTO trader_holds (trader_id, ref, last_kind, amount) {TRADER_HOLDS}")
        timings["trader_holds"] = time.perf_counter() - start
    _exec(con, "DROP TABLE IF EXISTS ev")
    return timings


def differences(con: duckdb.DuckDBPyConnection, limit: int = 5) -> dict[str, dict[str, Any]]:
    """Row-for-row differences between each projection table and its SQL (EXCEPT ALL both ways).

    Run it on a database written by the per-event path: an empty result means both paths agree.
    """
    _exec(con, PRELUDE)
    out: dict[str, dict[str, Any]] = {}
    for name in ORDER:
        if name not in SQL:
            out[name] = {"missing_sql": True}
            continue
        t = BY_NAME[name]
        cols = ", ".join(t.column_names)
        only_fold = (
            con.sql(
                f"SELECT {cols} FROM {name} EXCEPT ALL SELECT * FROM ({SQL[name]}) LIMIT {limit}"
            )
            .to_arrow_table()
            .to_pylist()
        )
        only_sql = (
            con.sql(
                f"SELECT * FROM ({SQL[name]}) EXCEPT ALL SELECT {cols} FROM {name} LIMIT {limit}"
            )
            .to_arrow_table()
            .to_pylist()
        )
        if only_fold or only_sql:
            out[name] = {"only_in_fold": only_fold, "only_in_sql": only_sql}
    return out
