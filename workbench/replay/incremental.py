"""Incremental apply: every projection brought up to date with one batch of new events.

A full build (:mod:`.bulk`) runs every model over every event. The live stream commits a batch
every few hundred milliseconds, and a Parquet replay into a database that holds events appends
one, so they run the *same* models over what the batch can change:

* the aggregates the batch touches form its ``scope`` (a trader's row counts its active orders,
  so the traders of the orders the batch touches, before and after it, are in scope too). A
  temporary ``ev`` holds the scope's events, numbered in ``(position, event_id)`` order like the
  full build's, with ``fresh`` marking the batch's own;
* most aggregates are short-lived (an order, a receipt, a payout, a plan): ``ev`` holds all of
  their events and the models recompute their rows, which replace the scope's old ones;
* traders live as long as the platform and the running balances span the whole ledger: for
  them the models run on from the stored state (``prior_traders``, ``prior_holds``,
  ``prior_balances``, ``prior_overflows``: the models of ``workbench/models/incremental/``),
  which a full build leaves empty, with only the ``fresh`` events. So no rule has a second,
  incremental copy: the traders model, the hold rules, the sequence rules and the running
  balances are each one file, run from nothing or from where the database stands;
* POLICY_DEVIATION's judgments, which the full build stores for the audit
  (``policy_judgments``), are left as they stand: an assignment is judged on the events before
  it only, and the audit judges the assignments after them;
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
from . import bulk, store
from .row_index import Bounds
from .schema import BY_NAME, PAYLOAD_TABLES

#: Projection → (its key column, the stream whose aggregate it is keyed by).
KEYED: dict[str, tuple[str, str]] = {
    "clients": ("client_id", "client"),
    "payment_orders": ("order_id", "payment_order"),
    "order_attempts": ("order_id", "payment_order"),
    "order_reviews": ("order_id", "payment_order"),
    "traders": ("trader_id", "trader"),
    "trader_holds": ("trader_id", "trader"),
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
    bounds: Bounds | None = None,
) -> str:
    """Bring every projection up to date after the events of temporary table ``batch`` (the
    columns of ``events``) were inserted; ``before`` is :func:`log_end` before they were.
    ``conflicts``: the batch quarantined conflicting copies. ``bounds``: where in the stored
    tables the batch's aggregates can be (:mod:`.row_index`; ``None``: anywhere). Runs inside
    the caller's transaction. Returns how: ``"none"`` (nothing new), ``"incremental"`` or
    ``"full"``."""
    times = timings if timings is not None else {}
    n = int(_exec(con, f"SELECT count(*) FROM {batch}")[0][0])
    if n == 0 and not conflicts:
        if not _state_missing(con, batch):
            return "none"
        start = time.perf_counter()
        bulk.build(con)
        times["full_build"] = time.perf_counter() - start
        return "full"
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
        _scoped(con, batch, times, bounds or Bounds())
    if conflicts:
        _exec(
            con,
            f"INSERT INTO violations SELECT * FROM ({_union(_families('quarantine'))}) "
            "EXCEPT SELECT * FROM violations",
        )
    return "incremental"


def _state_missing(con: duckdb.DuckDBPyConnection, batch: str) -> bool:
    """A table or column a later workbench added is empty though what it derives from was
    stored before the batch (:func:`.store.not_rebuilt`): a full build makes it (even when the
    batch brings nothing new)."""
    return bool(store.not_rebuilt(con, batch))


def _scoped(
    con: duckdb.DuckDBPyConnection, batch: str, times: dict[str, float], bounds: Bounds
) -> None:
    def step(name: str, sql: str) -> None:
        start = time.perf_counter()
        _exec(con, sql)
        times[name] = times.get(name, 0.0) + time.perf_counter() - start

    if batch != "batch_new":  # the SQL below names it
        step("batch", f"CREATE OR REPLACE TEMP TABLE batch_new AS SELECT * FROM {batch}")
    step(
        "scope",
        f"""CREATE OR REPLACE TEMP TABLE scope AS
        SELECT DISTINCT stream, aggregate_id FROM batch_new
        UNION
        SELECT 'trader', trader_id FROM payment_orders
        WHERE trader_id IS NOT NULL
            AND order_id IN (SELECT aggregate_id FROM batch_new WHERE stream = 'payment_order')
        UNION
        SELECT 'trader', trader_id FROM payload_payment_order
        WHERE rowid >= {bounds.fresh_payloads.get("payment_order", 0)}
            AND kind = 'payment_order.assigned' AND trader_id IS NOT NULL
            AND event_id IN (SELECT event_id FROM batch_new)""",
    )
    # The scope's events: their row ids first (a scan of the two key columns only), then those
    # rows (a join on all columns would read every stored payload). A trader's events are the
    # batch's only: the trader models run on from its stored row (``prior_traders``). Only the
    # rows from the bounds on are read (the whole table without an index).
    low = min(bounds.events, bounds.fresh)
    step(
        "ev",
        f"""CREATE OR REPLACE TEMP TABLE scope_rows AS
        SELECT e.rowid AS rid FROM events e
        SEMI JOIN (SELECT * FROM scope WHERE stream <> 'trader') s
            ON s.stream = e.stream AND s.aggregate_id = e.aggregate_id
        WHERE e.rowid >= {bounds.events}
        UNION ALL
        SELECT e.rowid FROM events e SEMI JOIN batch_new b ON b.event_id = e.event_id
        WHERE e.rowid >= {bounds.fresh} AND e.stream = 'trader'""",
    )
    step(
        "ev",
        f"""CREATE OR REPLACE TEMP TABLE ev AS
        SELECT e.* EXCLUDE (source, payload), row_number() OVER (ORDER BY position, event_id) AS ord,
            e.event_id IN (SELECT event_id FROM batch_new) AS fresh
        FROM events e WHERE e.rowid >= {low} AND e.rowid IN (SELECT rid FROM scope_rows)""",
    )
    present = {str(r[0]) for r in _exec(con, "SELECT DISTINCT stream FROM scope")}
    try:
        _exact(con, step)  # from the stored history, before the scope's payloads stand in
        _payloads(con, step, bounds)
        for name in bulk.EMPTY_PRIORS:
            step("priors", f"CREATE OR REPLACE TEMP TABLE {name} AS {_sql(name)}")
        _models(con, step, present)
    finally:
        for table in PAYLOAD_TABLES.values():
            _exec(con, f"DROP TABLE IF EXISTS temp.main.{table.name}")
    bulk.drop_priors(con)


def _payloads(con: duckdb.DuckDBPyConnection, step: Any, bounds: Bounds) -> None:
    """The scope's typed payloads: like ``ev`` for ``events``, a temporary ``payload_<stream>``
    holds the rows of ``ev``'s events, and the models, which join ``ev`` to these tables by
    ``event_id``, read it in place of the stored table (a temporary table comes first in
    DuckDB's search path). The same rows the join would keep, read once from the bounds on
    instead of by every model over the whole table. Made after the exact figures
    (``trader_exact`` reads the stored history) and before the priors (``prior_holds`` reads the
    batch's hold refs here), dropped before anything else runs."""
    db = str(_exec(con, "SELECT current_database()")[0][0]).replace('"', '""')
    have = {str(r[0]) for r in _exec(con, "SELECT DISTINCT stream FROM ev")}
    for stream, table in PAYLOAD_TABLES.items():
        stored = f'"{db}".main.{table.name}'
        if stream not in have:
            sql = f"SELECT * FROM {stored} LIMIT 0"
        else:
            sql = (
                f"SELECT * FROM {stored} WHERE rowid >= {bounds.payloads.get(stream, 0)} "
                f"AND event_id IN (SELECT event_id FROM ev WHERE stream = '{stream}')"
            )
        step("payloads", f"CREATE OR REPLACE TEMP TABLE {table.name} AS {sql}")


def _models(con: duckdb.DuckDBPyConnection, step: Any, present: set[str]) -> None:
    """The same models as a full build, over the scope's events and from the stored state."""
    steps = bulk.projection_plan()
    for model in steps:
        if model.layer != "projections":
            step(model.name, f"CREATE OR REPLACE TEMP TABLE {model.name} AS {model.sql()}")
            continue
        if model.name == "violations":
            _violations(con, step, model)
            continue
        cols = ", ".join(BY_NAME[model.name].column_names)
        if model.name == "account_balances":  # a small sum over ledger_postings, whole
            if "ledger_plan" in present:
                step(model.name, "DELETE FROM account_balances")
                step(model.name, f"INSERT INTO account_balances ({cols}) {model.sql()}")
            continue
        key, stream = KEYED[model.name]
        if stream not in present:  # the batch cannot change this projection
            continue
        if model.name == "trader_holds":  # the refs of ``prior_holds`` and the batch's, only
            step(model.name, f"CREATE OR REPLACE TEMP TABLE holds_new AS {model.sql()}")
            step(
                model.name,
                "DELETE FROM trader_holds t USING holds_new n "
                "WHERE t.trader_id = n.trader_id AND t.ref IS NOT DISTINCT FROM n.ref",
            )
            step(model.name, f"INSERT INTO trader_holds ({cols}) SELECT {cols} FROM holds_new")
            continue
        step(
            model.name,
            f"DELETE FROM {model.name} WHERE {key} IN "
            f"(SELECT aggregate_id FROM scope WHERE stream = '{stream}')",
        )
        step(model.name, f"INSERT INTO {model.name} ({cols}) {model.sql()}")
    scratch = [m.name for m in steps if m.layer != "projections"]
    for t in ("scope", "scope_rows", "ev", "trader_exact", "account_exact", "holds_new", *scratch):
        _exec(con, f"DROP TABLE IF EXISTS {t}")


def _exact(con: duckdb.DuckDBPyConnection, step: Any) -> None:
    """Exact figures where a stored one is NULL because it is past int64 (recomputed for those
    rows only: none, on real data), for the stored state the models run on from (the priors:
    the scope's traders and their holds, every account's balances, the overflows on record)."""
    step("priors", "CREATE OR REPLACE TEMP TABLE trader_exact (trader_id VARCHAR, balance HUGEINT)")
    null_deposit = """SELECT 1 FROM traders WHERE deposit_balance IS NULL
        AND trader_id IN (SELECT aggregate_id FROM scope WHERE stream = 'trader') LIMIT 1"""
    if _exec(con, null_deposit):
        step("priors", f"INSERT INTO trader_exact {_sql('trader_exact')}")
    step(
        "priors",
        "CREATE OR REPLACE TEMP TABLE account_exact "
        "(account VARCHAR, currency VARCHAR, own HUGEINT, held HUGEINT)",
    )
    null_balance = "own IS NULL OR held IS NULL OR available IS NULL"
    if _exec(con, f"SELECT 1 FROM account_balances WHERE {null_balance} LIMIT 1"):
        step("priors", f"INSERT INTO account_exact {_sql('account_exact')}")


def _violations(con: duckdb.DuckDBPyConnection, step: Any, model: models.Model) -> None:
    """The scope's violations replaced: those of its events (but the running-balance rules',
    which the batch's effects only add to, and the conflicts on record) go, the rule families'
    results over the scope come in (a set: none twice)."""
    step(
        "violations",
        f"""DELETE FROM violations
        WHERE event_id IN (SELECT event_id FROM ev)
            AND code NOT IN ('NEGATIVE_AVAILABLE', 'AMOUNT_OVERFLOW')
            AND NOT {_IS_CONFLICT_ROW}""",
    )
    step(
        "violations",
        f"INSERT INTO violations SELECT * FROM ({model.sql()}) EXCEPT SELECT * FROM violations",
    )
