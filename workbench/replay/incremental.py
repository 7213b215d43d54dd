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

from . import bulk
from .schema import BY_NAME
from .sql_entities import _TRADER_FIELDS, ACCOUNT_BALANCES, ACCOUNT_SUMS, TRADER_FOLD
from .sql_orders import (
    BATCH_END,
    D_BALANCE,
    LEDGER_BASE,
    MONEY_KINDS,
    _violations,
    account_overflow_detail,
    clock_rows,
    deposit_overflow_detail,
    out_of_int64,
)

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

#: NEGATIVE_AVAILABLE and the accounts' AMOUNT_OVERFLOW for the batch's own ledger effects, run
#: on from the balances before it (``account_balances``, not yet updated; the exact figures in
#: ``account_exact`` where it holds NULL because they are past int64). Mirrors ``_NEGATIVE`` and
#: ``_OVERFLOW`` of the full build, which run the same effects from zero over the whole ledger.
#: An account overflows once: not again if a violation already says it did.
_LEDGER_AFTER = f"""
WITH {LEDGER_BASE},
{BATCH_END},
fresh AS (SELECT ev.ord FROM ev SEMI JOIN batch_new b ON b.event_id = ev.event_id),
effects AS (
    SELECT p.from_account AS account, p.currency, p.ord, 0::HUGEINT AS d_own,
        p.amount::HUGEINT AS d_held
    FROM posts p
    UNION ALL
    SELECT p.from_account, p.currency, b.end_ord,
        CASE WHEN b.is_commit THEN -(p.amount::HUGEINT) ELSE 0 END, -(p.amount::HUGEINT)
    FROM posts p JOIN batch_end b ON b.held_ord = p.ord
    UNION ALL
    SELECT p.to_account, p.currency, b.end_ord, p.amount::HUGEINT, 0
    FROM posts p JOIN batch_end b ON b.held_ord = p.ord AND b.is_commit
),
touched AS (
    SELECT account, currency, ord, sum(d_own) AS d_own, sum(d_held) AS d_held
    FROM effects
    WHERE ord IN (SELECT ord FROM fresh)
    GROUP BY account, currency, ord
),
running AS (
    SELECT t.account, t.currency, t.ord,
        coalesce(x.own, a.own, 0) + sum(t.d_own) OVER w AS own,
        coalesce(x.held, a.held, 0) + sum(t.d_held) OVER w AS held
    FROM touched t
    LEFT JOIN account_balances a ON a.account = t.account AND a.currency = t.currency
    LEFT JOIN account_exact x ON x.account = t.account AND x.currency = t.currency
    WINDOW w AS (PARTITION BY t.account, t.currency ORDER BY t.ord ROWS UNBOUNDED PRECEDING)
),
over AS (
    SELECT * FROM running r
    WHERE {out_of_int64("r.own", "r.held")}
        AND NOT EXISTS (
            SELECT 1 FROM violations v
            WHERE v.code = 'AMOUNT_OVERFLOW' AND v.subject = r.account
                AND starts_with(v.detail, r.account || ' ' || r.currency || ' own '))
    QUALIFY row_number() OVER (PARTITION BY account, currency ORDER BY ord) = 1
)
SELECT 'NEGATIVE_AVAILABLE' AS code, l.event_id, r.account AS subject,
    r.account || ' available ' || (r.own - r.held) || ' ' || r.currency || ' < 0 (own '
        || r.own || ', held ' || r.held || ') after ' || l.kind || ' of ' || l.plan AS detail
FROM running r JOIN lp l ON l.ord = r.ord
WHERE r.own - r.held < 0 AND (starts_with(r.account, 'client:') OR starts_with(r.account, 'trader:'))
UNION ALL
SELECT 'AMOUNT_OVERFLOW', l.event_id, o.account,
    {account_overflow_detail("o.account", "o.currency", "o.own", "o.held", "l.kind", "l.plan")}
FROM over o JOIN lp l ON l.ord = o.ord
"""


# --------------------------------------------------------------------------- traders
# A trader lives as long as the platform: its row and its rules are carried forward from its
# current row (and ``trader_holds``) with the batch's own events, never recomputed from all of
# them. Valid because the batch comes after every stored event (see the module docstring): each
# of these rules only looks back, so a stored event's violations never change.

#: The batch's trader events, numbered in log order, payload read as the full build reads it.
_BATCH_TRADERS = f"""
CREATE OR REPLACE TEMP TABLE bt AS
SELECT aggregate_id, event_id, seq, kind, schema_version, occurred_at, recorded_at,
    row_number() OVER (ORDER BY position, event_id) AS ord,
    json_transform(payload, '{_TRADER_FIELDS}') AS j,
    json_extract_string(payload, ['$.ref', '$.amount']) AS hj
FROM batch_new
WHERE stream = 'trader'
"""

#: The rules of the full build's ``event_v`` (sequence, registration), the blocking rule, the hold
#: rules, the clock rule and the deposit's AMOUNT_OVERFLOW, for the batch's trader events, from
#: each trader's row and holds before the batch (the deposit balance exact from ``trader_exact``
#: where the row holds NULL because it is past int64).
_TRADER_VIOLATIONS = f"""
WITH e AS (
    SELECT b.*, o.version AS o_version, coalesce(o.registered, false) AS o_registered,
        coalesce(o.status = 'blocked', false) AS o_blocked
    FROM bt b LEFT JOIN traders o ON o.trader_id = b.aggregate_id
),
w AS (
    SELECT *,
        greatest(coalesce(o_version, 0), coalesce(max(seq) OVER wp, 0)) AS ver,
        o_registered OR coalesce(bool_or(kind = 'trader.registered') OVER wp, false) AS reg_before
    FROM e
    WINDOW wp AS (PARTITION BY aggregate_id ORDER BY ord
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
hb AS (
    SELECT aggregate_id, ord, event_id, kind, hj[1] AS ref, hj[2]::BIGINT AS amount,
        CASE kind WHEN 'trader.hold_released' THEN 'release' ELSE 'capture' END AS verb
    FROM bt
    WHERE kind IN ('trader.hold_placed', 'trader.hold_released', 'trader.hold_captured')
),
hw AS (
    SELECT hb.*,
        coalesce(lag(hb.kind) OVER wr = 'trader.hold_placed',
                 CASE WHEN lag(hb.kind) OVER wr IS NULL
                      THEN s.last_kind = 'trader.hold_placed' END,
                 false) AS was_open,
        CASE WHEN lag(hb.kind) OVER wr IS NULL THEN s.amount ELSE lag(hb.amount) OVER wr END
            AS held
    FROM hb LEFT JOIN trader_holds s ON s.trader_id = hb.aggregate_id AND s.ref = hb.ref
    WINDOW wr AS (PARTITION BY hb.aggregate_id, hb.ref ORDER BY hb.ord)
),
-- the deposit's figures after each money event of the batch, from those before it
m AS (
    SELECT b.aggregate_id, b.ord, b.event_id, b.kind, b.hj[1] AS ref,
        b.hj[2]::HUGEINT AS amount,
        CASE WHEN b.kind = 'trader.hold_placed' THEN b.hj[2]::HUGEINT ELSE 0 END
            - CASE WHEN h.was_open THEN h.held::HUGEINT ELSE 0 END AS d_held
    FROM bt b LEFT JOIN hw h ON h.event_id = b.event_id
    WHERE b.kind IN ({MONEY_KINDS})
),
held0 AS (
    SELECT trader_id, sum(amount::HUGEINT) AS held
    FROM trader_holds
    WHERE last_kind = 'trader.hold_placed' AND trader_id IN (SELECT aggregate_id FROM m)
    GROUP BY trader_id
),
mrun AS (
    SELECT m.aggregate_id, m.ord, m.event_id, m.kind, m.ref,
        coalesce(x.balance, o.deposit_balance, 0) + sum({D_BALANCE}) OVER w AS balance,
        coalesce(h0.held, 0) + sum(m.d_held) OVER w AS held
    FROM m
    LEFT JOIN traders o ON o.trader_id = m.aggregate_id
    LEFT JOIN trader_exact x ON x.trader_id = m.aggregate_id
    LEFT JOIN held0 h0 ON h0.trader_id = m.aggregate_id
    WINDOW w AS (PARTITION BY m.aggregate_id ORDER BY m.ord ROWS UNBOUNDED PRECEDING)
),
mover AS (
    SELECT * FROM mrun r
    WHERE {out_of_int64("r.balance", "r.held")}
        AND NOT EXISTS (
            SELECT 1 FROM violations v
            WHERE v.code = 'AMOUNT_OVERFLOW' AND v.subject = 'trader:' || r.aggregate_id
                AND starts_with(v.detail, 'deposit_balance '))
    QUALIFY row_number() OVER (PARTITION BY aggregate_id ORDER BY ord) = 1
)
SELECT CASE WHEN seq > ver::BIGINT + 1 THEN 'SEQUENCE_GAP' ELSE 'CONFLICTING_DUPLICATE' END AS code,
    event_id, 'trader:' || aggregate_id AS subject,
    CASE
        WHEN seq = ver::BIGINT + 2 THEN 'seq ' || (ver::BIGINT + 1) || ' missing before seq ' || seq
        WHEN seq > ver::BIGINT + 2
            THEN 'seq ' || (ver::BIGINT + 1) || '..' || (seq - 1) || ' missing before seq ' || seq
        ELSE 'seq ' || seq || ' was already taken (the aggregate is at seq ' || ver || ')'
    END AS detail
FROM w
WHERE seq <> ver::BIGINT + 1
UNION ALL
SELECT 'INVALID_TRANSITION', event_id, 'trader:' || aggregate_id,
    kind || ' is not allowed in status ' || CASE WHEN reg_before THEN 'registered' ELSE 'unregistered' END
FROM w
WHERE (kind = 'trader.registered') = reg_before
UNION ALL
SELECT 'INVALID_TRANSITION', event_id, 'trader:' || aggregate_id,
    kind || ' is not allowed in status ' || CASE WHEN blocked_prev THEN 'blocked' ELSE 'active' END
FROM (
    SELECT event_id, aggregate_id, kind,
        coalesce(lag(kind) OVER (PARTITION BY aggregate_id ORDER BY ord) = 'trader.blocked',
                 o_blocked) AS blocked_prev
    FROM e
    WHERE kind IN ('trader.blocked', 'trader.unblocked')
)
WHERE (kind = 'trader.blocked') = blocked_prev
UNION ALL
SELECT 'INVALID_TRANSITION', event_id, 'trader:' || aggregate_id,
    CASE WHEN kind = 'trader.hold_placed' THEN 'a hold on ' || ref || ' is already open'
        ELSE verb || ' of ' || ref || ', which has no open hold'
    END
FROM hw
WHERE was_open = (kind = 'trader.hold_placed')
UNION ALL
SELECT 'TRADER_LEDGER_DRIFT', event_id, 'trader:' || aggregate_id,
    verb || ' ' || amount || ' of ' || ref || ', but ' || held || ' was held'
FROM hw
WHERE kind <> 'trader.hold_placed' AND was_open AND held <> amount
UNION ALL
{clock_rows("bt", "'trader:' || aggregate_id")}
UNION ALL
SELECT 'AMOUNT_OVERFLOW', event_id, 'trader:' || aggregate_id,
    {deposit_overflow_detail("balance", "held", "kind", "ref")}
FROM mover
"""

#: The last hold event of each (trader, ref) the batch touches.
_HOLDS_AFTER = """
SELECT aggregate_id AS trader_id, j.ref AS ref, arg_max(kind, ord) AS last_kind,
    arg_max_null(j.amount, ord) AS amount
FROM bt
WHERE kind IN ('trader.hold_placed', 'trader.hold_released', 'trader.hold_captured')
GROUP BY aggregate_id, j.ref
"""

#: The rows of the traders with events in the batch: their row before it, carried forward.
_TRADERS_AFTER = f"""
WITH t AS (SELECT * FROM bt),
a AS (
    SELECT aggregate_id,
{TRADER_FOLD},
        count(*) FILTER (WHERE kind IN ('trader.registered', 'trader.limits_changed')) > 0
            AS limits_set
    FROM t
    GROUP BY aggregate_id
),
holds AS (
    SELECT trader_id, sum(amount) AS held, count(*)::INTEGER AS open_holds
    FROM trader_holds
    WHERE last_kind = 'trader.hold_placed' AND trader_id IN (SELECT aggregate_id FROM a)
    GROUP BY trader_id
),
active AS (
    SELECT trader_id, count(*)::INTEGER AS n
    FROM payment_orders
    WHERE status IN ('assigned', 'in_progress', 'in_review') AND trader_id IS NOT NULL
        AND trader_id IN (SELECT aggregate_id FROM a)
    GROUP BY trader_id
),
n AS (
    SELECT a.aggregate_id AS trader_id,
        coalesce(o.registered, false) OR a.registered AS registered,
        CASE WHEN a.registered THEN a.name ELSE o.name END AS name,
        CASE WHEN a.registered THEN a.fiat_currency ELSE o.fiat_currency END AS fiat_currency,
        CASE WHEN a.registered THEN a.settlement_currency ELSE o.settlement_currency END
            AS settlement_currency,
        CASE WHEN a.registered THEN a.country ELSE o.country END AS country,
        CASE WHEN a.limits_set THEN coalesce(a.min_amount, 0) ELSE coalesce(o.min_amount, 0) END
            AS min_amount,
        CASE WHEN a.limits_set THEN coalesce(a.max_amount, 0) ELSE coalesce(o.max_amount, 0) END
            AS max_amount,
        CASE WHEN a.limits_set THEN coalesce(a.max_active_orders, 0)
             ELSE coalesce(o.max_active_orders, 0) END AS max_active_orders,
        CASE WHEN a.registered THEN coalesce(a.reward_bps, 0) ELSE coalesce(o.reward_bps, 0) END
            AS reward_bps,
        CASE WHEN a.last_block IS NOT NULL
             THEN CASE WHEN a.last_block = 'trader.blocked' THEN 'blocked' ELSE 'active' END
             ELSE coalesce(o.status, 'active') END AS status,
        CASE WHEN a.last_presence IS NOT NULL THEN a.last_presence = 'trader.went_online'
             ELSE coalesce(o.online, false) END AS online,
        coalesce(x.balance, o.deposit_balance, 0) + coalesce(a.balance, 0) AS balance,
        coalesce(h.held, 0) AS held,
        coalesce(h.open_holds, 0) AS open_holds,
        coalesce(ac.n, 0) AS active_orders,
        CASE WHEN coalesce(o.registered, false) THEN o.registered_at ELSE a.registered_at END
            AS registered_at,
        a.updated_at,
        greatest(coalesce(o.version, a.version), a.version) AS version
    FROM a
    LEFT JOIN traders o ON o.trader_id = a.aggregate_id
    LEFT JOIN trader_exact x ON x.trader_id = a.aggregate_id
    LEFT JOIN holds h ON h.trader_id = a.aggregate_id
    LEFT JOIN active ac ON ac.trader_id = a.aggregate_id
)
SELECT trader_id, registered, name, fiat_currency, settlement_currency, country,
    min_amount::BIGINT, max_amount::BIGINT, max_active_orders::INTEGER, reward_bps::INTEGER,
    status, online, TRY_CAST(balance AS BIGINT), TRY_CAST(held AS BIGINT),
    TRY_CAST(balance - held AS BIGINT),
    open_holds::INTEGER, active_orders::INTEGER, registered_at, updated_at, version::INTEGER
FROM n
"""


# ------------------------------------------------------------------------ past int64
# A deposit balance or an account balance past int64 is NULL in its row; the incremental apply
# runs on from the exact figure, recomputed from the stored events or postings for those rows
# only (none, on real data).

_TRADER_EXACT_EMPTY = (
    "CREATE OR REPLACE TEMP TABLE trader_exact (trader_id VARCHAR, balance HUGEINT)"
)

_NULL_DEPOSIT = """SELECT 1 FROM traders
WHERE deposit_balance IS NULL AND trader_id IN (SELECT aggregate_id FROM bt) LIMIT 1"""

#: The exact deposit balance before the batch of the batch's traders whose row holds NULL.
_TRADER_EXACT = f"""
SELECT aggregate_id, sum({D_BALANCE})
FROM (
    SELECT aggregate_id, kind, (payload->>'amount')::HUGEINT AS amount
    FROM events
    WHERE stream = 'trader'
        AND aggregate_id IN (
            SELECT trader_id FROM traders
            WHERE deposit_balance IS NULL AND trader_id IN (SELECT aggregate_id FROM bt))
        AND kind IN ({MONEY_KINDS})
        AND event_id NOT IN (SELECT event_id FROM batch_new)
)
GROUP BY aggregate_id
"""

_ACCOUNT_EXACT_EMPTY = (
    "CREATE OR REPLACE TEMP TABLE account_exact "
    "(account VARCHAR, currency VARCHAR, own HUGEINT, held HUGEINT)"
)
_NULL_BALANCE = "own IS NULL OR held IS NULL OR available IS NULL"

#: The exact balances of the accounts whose row holds NULL, from ``ledger_postings`` before the
#: batch (so run before ``ledger_postings`` is brought up to date).
_ACCOUNT_EXACT = f"""
SELECT s.account, s.currency, s.own, s.held
FROM ({ACCOUNT_SUMS}) s
SEMI JOIN (SELECT account, currency FROM account_balances WHERE {_NULL_BALANCE}) n
    ON n.account = s.account AND n.currency = s.currency
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
            f"INSERT INTO violations SELECT * FROM ({_CONFLICTS}) EXCEPT SELECT * FROM violations",
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
    if "trader" not in present:
        step("traders", "CREATE OR REPLACE TEMP TABLE trader_v AS SELECT * FROM violations LIMIT 0")
    if "ledger_plan" not in present:  # no ledger effects: no new negative balance
        step(
            "negative",
            "CREATE OR REPLACE TEMP TABLE negative_new AS SELECT * FROM violations LIMIT 0",
        )
    else:  # the exact balances of the accounts past int64, before the batch
        step("negative", _ACCOUNT_EXACT_EMPTY)
        if _exec(con, f"SELECT 1 FROM account_balances WHERE {_NULL_BALANCE} LIMIT 1"):
            step("negative", f"INSERT INTO account_exact {_ACCOUNT_EXACT}")
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
        step(
            name,
            f"INSERT INTO {name} ({', '.join(table.column_names)}) {bulk.SQL[name]}",
        )
        if name == "ledger_postings":
            # Before the balances move on: the batch's NEGATIVE_AVAILABLE and AMOUNT_OVERFLOW
            # from the old balances.
            step("negative", f"CREATE OR REPLACE TEMP TABLE negative_new AS {_LEDGER_AFTER}")
            cols = ", ".join(BY_NAME["account_balances"].column_names)
            step("account_balances", "DELETE FROM account_balances")
            step("account_balances", f"INSERT INTO account_balances ({cols}) {ACCOUNT_BALANCES}")
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
        SELECT * FROM ({_AGGREGATE_VIOLATIONS})
        UNION SELECT * FROM trader_v
        UNION SELECT * FROM negative_new
        EXCEPT SELECT * FROM violations""",
    )
    for t in (
        "scope",
        "scope_rows",
        "ev",
        "negative_new",
        "trader_v",
        "bt",
        "holds_after",
        "traders_after",
        "trader_exact",
        "account_exact",
    ):
        _exec(con, f"DROP TABLE IF EXISTS {t}")


def _traders(con: duckdb.DuckDBPyConnection, step: Any) -> None:
    """The traders of the scope, carried forward (see ``_TRADERS_AFTER``); their violations into
    ``trader_v``, computed from the state before the batch."""
    step("traders", _BATCH_TRADERS)
    step("traders", _TRADER_EXACT_EMPTY)
    if _exec(con, _NULL_DEPOSIT):
        step("traders", f"INSERT INTO trader_exact {_TRADER_EXACT}")
    step("traders", f"CREATE OR REPLACE TEMP TABLE trader_v AS {_TRADER_VIOLATIONS}")
    step("traders", f"CREATE OR REPLACE TEMP TABLE holds_after AS {_HOLDS_AFTER}")
    step(
        "traders",
        """DELETE FROM trader_holds USING holds_after h
        WHERE trader_holds.trader_id = h.trader_id
            AND trader_holds.ref IS NOT DISTINCT FROM h.ref""",
    )
    step(
        "traders",
        "INSERT INTO trader_holds (trader_id, ref, last_kind, amount) SELECT * FROM holds_after",
    )
    cols = ", ".join(BY_NAME["traders"].column_names)
    step("traders", f"CREATE OR REPLACE TEMP TABLE traders_after AS {_TRADERS_AFTER}")
    step("traders", "DELETE FROM traders WHERE trader_id IN (SELECT trader_id FROM traders_after)")
    step("traders", f"INSERT INTO traders ({cols}) SELECT * FROM traders_after")
    # traders in scope only through their orders: only their count of active orders moves
    step(
        "traders",
        """UPDATE traders SET active_orders = coalesce((
            SELECT count(*) FROM payment_orders p
            WHERE p.trader_id = traders.trader_id
                AND p.status IN ('assigned', 'in_progress', 'in_review')), 0)
        WHERE trader_id IN (SELECT aggregate_id FROM scope WHERE stream = 'trader')
            AND trader_id NOT IN (SELECT trader_id FROM traders_after)""",
    )
