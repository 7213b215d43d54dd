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
  Conflicting copies come from the batch's quarantine rows;
* a batch that reaches back before a stored event (a hole in the log filled late, an old export
  replayed after the stream) changes the order of what is stored: it is applied by a full build,
  exact but slower.

The differential tests replay histories full of anomalies in random batches through this path
and compare every projection with a full build (their content hashes).
"""

from __future__ import annotations

import time

import duckdb

from . import bulk
from .schema import BY_NAME
from .sql_entities import ACCOUNT_BALANCES
from .sql_orders import BATCH_END, LEDGER_BASE, _violations

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

#: The per-aggregate violation rules, over the scope's ``ev``.
_AGGREGATE_VIOLATIONS = _violations("hash(stream, aggregate_id)", ("aggregate",))

#: Conflicting copies on record in the quarantine (the full build's ``conflict_v``).
_CONFLICTS = _violations("hash(stream, aggregate_id)", ("conflict",))

#: A violation row that the conflict rule wrote (and the aggregate rules never do).
_IS_CONFLICT_ROW = (
    "EXISTS (SELECT 1 FROM quarantine q WHERE q.reason = 'conflicting_duplicate' "
    "AND q.event_id = violations.event_id AND q.error = violations.detail)"
)

#: NEGATIVE_AVAILABLE for the batch's own ledger effects, run on from the balances before it
#: (``account_balances``, not yet updated). Mirrors ``_NEGATIVE`` of the full build, which runs
#: the same effects from zero over the whole ledger.
_NEGATIVE_AFTER = f"""
WITH {LEDGER_BASE},
{BATCH_END},
fresh AS (SELECT ev.ord FROM ev SEMI JOIN batch_new b ON b.event_id = ev.event_id),
effects AS (
    SELECT p.from_account AS account, p.currency, p.ord, 0 AS d_own, p.amount AS d_held
    FROM posts p
    UNION ALL
    SELECT p.from_account, p.currency, b.end_ord,
        CASE WHEN b.is_commit THEN -p.amount ELSE 0 END, -p.amount
    FROM posts p JOIN batch_end b ON b.held_ord = p.ord
    UNION ALL
    SELECT p.to_account, p.currency, b.end_ord, p.amount, 0
    FROM posts p JOIN batch_end b ON b.held_ord = p.ord AND b.is_commit
),
touched AS (
    SELECT account, currency, ord, sum(d_own) AS d_own, sum(d_held) AS d_held
    FROM effects
    WHERE (starts_with(account, 'client:') OR starts_with(account, 'trader:'))
        AND ord IN (SELECT ord FROM fresh)
    GROUP BY account, currency, ord
),
running AS (
    SELECT t.account, t.currency, t.ord,
        coalesce(a.own, 0) + sum(t.d_own) OVER w AS own,
        coalesce(a.held, 0) + sum(t.d_held) OVER w AS held
    FROM touched t
    LEFT JOIN account_balances a ON a.account = t.account AND a.currency = t.currency
    WINDOW w AS (PARTITION BY t.account, t.currency ORDER BY t.ord ROWS UNBOUNDED PRECEDING)
)
SELECT 'NEGATIVE_AVAILABLE' AS code, l.event_id, r.account AS subject,
    r.account || ' available ' || (r.own - r.held) || ' ' || r.currency || ' < 0 (own '
        || r.own || ', held ' || r.held || ') after ' || l.kind || ' of ' || l.plan AS detail
FROM running r JOIN lp l ON l.ord = r.ord
WHERE r.own - r.held < 0
"""


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
        if (int(first[0]), str(first[1])) <= before:
            start = time.perf_counter()
            bulk.build(con)
            times["full_build"] = time.perf_counter() - start
            return "full"
    if n:
        _scoped(con, batch, times)
    if conflicts:
        _exec(
            con,
            f"INSERT INTO violations SELECT * FROM ({_CONFLICTS}) EXCEPT SELECT * FROM violations",
        )
    return "incremental"


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
        SEMI JOIN scope s ON s.stream = e.stream AND s.aggregate_id = e.aggregate_id""",
    )
    step(
        "ev",
        """CREATE OR REPLACE TEMP TABLE ev AS
        SELECT e.* EXCLUDE (source), row_number() OVER (ORDER BY position, event_id) AS ord
        FROM events e WHERE e.rowid IN (SELECT rid FROM scope_rows)""",
    )
    present = {str(r[0]) for r in _exec(con, "SELECT DISTINCT stream FROM scope")}
    if "ledger_plan" not in present:  # no ledger effects: no new negative balance
        step(
            "negative",
            "CREATE OR REPLACE TEMP TABLE negative_new AS SELECT * FROM violations LIMIT 0",
        )
    for name in bulk.ORDER:
        if name in ("account_balances", "violations"):
            continue
        table = BY_NAME[name]
        key, stream = KEYED[name]
        if stream not in present:  # the batch cannot change this projection
            continue
        step(
            name,
            f"DELETE FROM {name} WHERE {key} IN "
            f"(SELECT aggregate_id FROM scope WHERE stream = '{stream}')",
        )
        step(
            name,
            f"INSERT INTO {name} ({', '.join(table.column_names)}) {bulk.SQL[name]}",
        )
        if name == "ledger_postings":
            # Before the balances move on: the batch's NEGATIVE_AVAILABLE from the old balances.
            step("negative", f"CREATE OR REPLACE TEMP TABLE negative_new AS {_NEGATIVE_AFTER}")
            cols = ", ".join(BY_NAME["account_balances"].column_names)
            step("account_balances", "DELETE FROM account_balances")
            step("account_balances", f"INSERT INTO account_balances ({cols}) {ACCOUNT_BALANCES}")
    step(
        "violations",
        f"""DELETE FROM violations
        WHERE event_id IN (SELECT event_id FROM ev) AND code <> 'NEGATIVE_AVAILABLE'
            AND NOT {_IS_CONFLICT_ROW}""",
    )
    step(
        "violations",
        f"""INSERT INTO violations
        SELECT * FROM ({_AGGREGATE_VIOLATIONS})
        UNION SELECT * FROM negative_new
        EXCEPT SELECT * FROM violations""",
    )
    for t in ("scope", "scope_rows", "ev", "negative_new"):
        _exec(con, f"DROP TABLE IF EXISTS {t}")
