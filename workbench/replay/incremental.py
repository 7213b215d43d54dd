"""Incremental apply: every projection brought up to date with one batch of new events.

A full build (:mod:`.bulk`) recomputes every projection from every event. The live stream
commits a batch every few hundred milliseconds, so it recomputes only what the batch can change,
with the *same* SQL as the full build:

* every projection row is a function of one aggregate's events (a client, a trader, an order…),
  sometimes with another projection: the aggregates the batch touches form its ``scope``, a
  temporary ``ev`` holds all their events (old and new, numbered in ``(position, event_id)``
  order like the full build's ``ev``), each projection's SQL runs over it and its rows replace
  the scope's old rows. A trader's row counts the trader's active orders, so the traders of the
  orders the batch touches (before and after it) are in scope too. ``account_balances`` is a
  small sum over ``ledger_postings``, recomputed whole;
* the violation rules of one aggregate (sequence, state machines, holds, plans) likewise: the
  scope's old ones are deleted and recomputed. The running-balance rule (``NEGATIVE_AVAILABLE``)
  reads the whole ledger in log order; when the batch comes after every stored event in
  ``(position, event_id)`` order (a live stream's normal case), the balances before the batch
  are exactly ``account_balances``, so only the batch's own ledger effects are run on from them.
  ``AMOUNT_OVERFLOW`` likewise runs the batch's effects on from the balances before it (for a
  trader's deposit, from its row and ``trader_holds``); a balance past int64, NULL in its row,
  is recomputed exactly for that row only. Conflicting copies come from the batch's quarantine
  rows;
* a batch that reaches back before a stored event (a hole in the log filled late, an old export
  replayed after the stream) changes the order of what is stored: it is applied by a full build,
  exact but slower.

The differential tests replay histories full of anomalies in random batches through this path
and compare every projection with a full build (their content hashes).
"""

from __future__ import annotations

import time
from typing import Any

import duckdb

from .. import models
from . import bulk
from .schema import BY_NAME

#: Projection → (its key column, the stream whose aggregate it is keyed by).
KEYED: dict[str, tuple[str, str]] = {
    "clients": ("client_id", "client"),
    "payment_orders": ("order_id", "payment_order"),
    "order_attempts": ("order_id", "payment_order"),
    "traders": ("trader_id", "trader"),
    "receipts": ("receipt_id", "receipt"),
    "payouts": ("payout_id", "payout"),
    "ledger_plans": ("plan_id", "ledger_plan"),
    "ledger_postings": ("plan_id", "ledger_plan"),
    "trader_ratings": ("trader_id", "trader_rating"),
}


def _families(scope: str) -> list[models.Model]:
    """The violation rule families of one scope (their header's ``scope``): ``aggregate`` (each
    over one aggregate's own events), ``ledger`` (running balances over the whole ledger) or
    ``quarantine``."""
    return [m for m in models.layer("violations") if m.header.get("scope") == scope]


def _union(families: list[models.Model]) -> str:
    return "\nUNION\n".join(f"SELECT * FROM ({m.sql()})" for m in families)


#: A violation row that the conflict rule wrote (and the aggregate rules never do).
_IS_CONFLICT_ROW = (
    "EXISTS (SELECT 1 FROM quarantine q WHERE q.reason = 'conflicting_duplicate' "
    "AND q.event_id = violations.event_id AND q.error = violations.detail)"
)


def _sql(name: str) -> str:
    return models.load()[name].sql()


def _exec(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> list:  # type: ignore[type-arg]
    return con.execute(sql, params or []).fetchall()


def log_end(con: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    """The last stored event in ``(position, event_id)`` order, or ``None`` if there is none."""
    top = _exec(con, "SELECT max(position) FROM events")[0][0]
    if top is None:
        return None
    eid = _exec(con, "SELECT max(event_id) FROM events WHERE position = ?", [top])[0][0]
    return int(top), str(eid)


def apply(
    con: duckdb.DuckDBPyConnection,
    batch: str,
    before: tuple[int, str] | None,
    *,
    conflicts: bool,
    timings: dict[str, float] | None = None,
) -> str:
    """Bring every projection up to date after the events of temporary table ``batch`` (the
    columns of ``events``) were inserted; ``before`` is :func:`log_end` before they were.
    ``conflicts``: the batch quarantined conflicting copies. Runs inside the caller's
    transaction. Returns how: ``"none"`` (nothing new), ``"incremental"`` or ``"full"``."""
    times = timings if timings is not None else {}
    n = int(_exec(con, f"SELECT count(*) FROM {batch}")[0][0])
    if n == 0 and not conflicts:
        return "none"
    if n and before is not None:
        first = _exec(
            con, f"SELECT position, event_id FROM {batch} ORDER BY position, event_id LIMIT 1"
        )[0]
        if (int(first[0]), str(first[1])) <= before or _state_missing(con, batch):
            start = time.perf_counter()
            bulk.build(con)
            times["full_build"] = time.perf_counter() - start
            return "full"
    if n:
        _scoped(con, batch, times)
    if conflicts:
        _exec(
            con,
            f"INSERT INTO violations SELECT * FROM ({_union(_families('quarantine'))}) "
            "EXCEPT SELECT * FROM violations",
        )
    return "incremental"


def _state_missing(con: duckdb.DuckDBPyConnection, batch: str) -> bool:
    """``trader_holds`` is empty but holds were stored before (a database written before the
    table existed): a full build makes it."""
    if _exec(con, "SELECT 1 FROM trader_holds LIMIT 1"):
        return False
    return bool(
        _exec(
            con,
            f"""SELECT 1 FROM events e ANTI JOIN {batch} b ON b.event_id = e.event_id
            WHERE e.stream = 'trader'
                AND e.kind IN ('trader.hold_placed', 'trader.hold_released', 'trader.hold_captured')
            LIMIT 1""",
        )
    )


def _scoped(con: duckdb.DuckDBPyConnection, batch: str, times: dict[str, float]) -> None:
    def step(name: str, sql: str) -> None:
        start = time.perf_counter()
        _exec(con, sql)
        times[name] = times.get(name, 0.0) + time.perf_counter() - start

    if batch != "batch_new":  # the SQL below names it
        step("batch", f"CREATE OR REPLACE TEMP TABLE batch_new AS SELECT * FROM {batch}")
    step(
        "scope",
        """CREATE OR REPLACE TEMP TABLE scope AS
        SELECT DISTINCT stream, aggregate_id FROM batch_new
        UNION
        SELECT 'trader', trader_id FROM payment_orders
        WHERE trader_id IS NOT NULL
            AND order_id IN (SELECT aggregate_id FROM batch_new WHERE stream = 'payment_order')
        UNION
        SELECT 'trader', json_extract_string(payload, '$.trader_id') FROM batch_new
        WHERE kind = 'payment_order.assigned'
            AND json_extract_string(payload, '$.trader_id') IS NOT NULL""",
    )
    # The scope's events: their row ids first (a scan of the two key columns only), then those
    # rows (a join on all columns would read every stored payload).
    step(
        "ev",
        """CREATE OR REPLACE TEMP TABLE scope_rows AS
        SELECT e.rowid AS rid FROM events e
        SEMI JOIN (SELECT * FROM scope WHERE stream <> 'trader') s
            ON s.stream = e.stream AND s.aggregate_id = e.aggregate_id""",
    )
    step(
        "ev",
        """CREATE OR REPLACE TEMP TABLE ev AS
        SELECT e.* EXCLUDE (source), row_number() OVER (ORDER BY position, event_id) AS ord
        FROM events e WHERE e.rowid IN (SELECT rid FROM scope_rows)""",
    )
    present = {str(r[0]) for r in _exec(con, "SELECT DISTINCT stream FROM scope")}
    empty = "SELECT * FROM violations LIMIT 0"
    # the staging tables over the scope's events (the same models as a full build)
    staging = models.layer("staging")
    for model in staging:
        step(f"staging:{model.name}", f"CREATE OR REPLACE TEMP TABLE {model.name} AS {model.sql()}")
    if "trader" not in present:
        step("traders", f"CREATE OR REPLACE TEMP TABLE batch_trader_violations AS {empty}")
    if "ledger_plan" not in present:  # no ledger effects: no new negative balance
        step("negative", f"CREATE OR REPLACE TEMP TABLE batch_ledger_violations AS {empty}")
    else:  # the exact balances of the accounts past int64, before the batch
        step(
            "negative",
            "CREATE OR REPLACE TEMP TABLE account_exact "
            "(account VARCHAR, currency VARCHAR, own HUGEINT, held HUGEINT)",
        )
        null_balance = "own IS NULL OR held IS NULL OR available IS NULL"
        if _exec(con, f"SELECT 1 FROM account_balances WHERE {null_balance} LIMIT 1"):
            step("negative", f"INSERT INTO account_exact {_sql('account_exact')}")
    for name in bulk.ORDER:
        if name in ("account_balances", "violations"):
            continue
        table = BY_NAME[name]
        key, stream = KEYED[name]
        if stream not in present:  # the batch cannot change this projection
            continue
        if name == "traders":
            _traders(con, step)
            continue
        step(
            name,
            f"DELETE FROM {name} WHERE {key} IN "
            f"(SELECT aggregate_id FROM scope WHERE stream = '{stream}')",
        )
        step(name, f"INSERT INTO {name} ({', '.join(table.column_names)}) {_sql(name)}")
        if name == "ledger_postings":
            # Before the balances move on: the batch's NEGATIVE_AVAILABLE and AMOUNT_OVERFLOW
            # from the old balances.
            step(
                "negative",
                "CREATE OR REPLACE TEMP TABLE batch_ledger_violations AS "
                + _sql("batch_ledger_violations"),
            )
            cols = ", ".join(BY_NAME["account_balances"].column_names)
            step("account_balances", "DELETE FROM account_balances")
            step(
                "account_balances",
                f"INSERT INTO account_balances ({cols}) {_sql('account_balances')}",
            )
    step(
        "violations",
        f"""DELETE FROM violations
        WHERE event_id IN (SELECT event_id FROM ev)
            AND code NOT IN ('NEGATIVE_AVAILABLE', 'AMOUNT_OVERFLOW')
            AND NOT {_IS_CONFLICT_ROW}""",
    )
    step(
        "violations",
        f"""INSERT INTO violations
        SELECT * FROM ({_union(_families("aggregate"))})
        UNION SELECT * FROM batch_trader_violations
        UNION SELECT * FROM batch_ledger_violations
        EXCEPT SELECT * FROM violations""",
    )
    scratch = [m.name for m in staging] + [m.name for m in models.layer("incremental")]
    for t in ("scope", "scope_rows", "ev", *scratch):
        _exec(con, f"DROP TABLE IF EXISTS {t}")


def _traders(con: duckdb.DuckDBPyConnection, step: Any) -> None:
    """The traders of the scope, carried forward (``batch_traders_after``); their violations
    into ``batch_trader_violations``, computed from the state before the batch."""
    step("traders", f"CREATE OR REPLACE TEMP TABLE batch_traders AS {_sql('batch_traders')}")
    step(
        "traders",
        "CREATE OR REPLACE TEMP TABLE trader_exact (trader_id VARCHAR, balance HUGEINT)",
    )
    null_deposit = """SELECT 1 FROM traders WHERE deposit_balance IS NULL
        AND trader_id IN (SELECT aggregate_id FROM batch_traders) LIMIT 1"""
    if _exec(con, null_deposit):
        step("traders", f"INSERT INTO trader_exact {_sql('trader_exact')}")
    for name in ("batch_trader_violations", "batch_trader_holds"):
        step("traders", f"CREATE OR REPLACE TEMP TABLE {name} AS {_sql(name)}")
    step(
        "traders",
        """DELETE FROM trader_holds USING batch_trader_holds h
        WHERE trader_holds.trader_id = h.trader_id
            AND trader_holds.ref IS NOT DISTINCT FROM h.ref""",
    )
    step(
        "traders",
        "INSERT INTO trader_holds (trader_id, ref, last_kind, amount) "
        "SELECT * FROM batch_trader_holds",
    )
    cols = ", ".join(BY_NAME["traders"].column_names)
    step(
        "traders",
        f"CREATE OR REPLACE TEMP TABLE batch_traders_after AS {_sql('batch_traders_after')}",
    )
    step(
        "traders",
        "DELETE FROM traders WHERE trader_id IN (SELECT trader_id FROM batch_traders_after)",
    )
    step("traders", f"INSERT INTO traders ({cols}) SELECT * FROM batch_traders_after")
    # traders in scope only through their orders: only their count of active orders moves
    step(
        "traders",
        """UPDATE traders SET active_orders = coalesce((
            SELECT count(*) FROM payment_orders p
            WHERE p.trader_id = traders.trader_id
                AND p.status IN ('assigned', 'in_progress', 'in_review')), 0)
        WHERE trader_id IN (SELECT aggregate_id FROM scope WHERE stream = 'trader')
            AND trader_id NOT IN (SELECT trader_id FROM batch_traders_after)""",
    )
