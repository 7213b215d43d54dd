"""The fee and the reward in force at an assignment (catalog section 2): the audit's SQL
(``workbench/models/audit/audit_fees_in_force.sql``, which FEE_MISMATCH reads) against the
domain's rule (:meth:`workbench.domain.world.World.bps_in_force`, which the processors price
through).

The oracle folds the events the replay kept (its ``events`` table, decoded by the domain) in
``(position, event_id)`` order through :class:`~workbench.domain.world.World` and, just before
every ``payment_order.assigned``, asks the world which ``fee_bps`` and ``reward_bps`` are in
force for the order's client and the assigned trader. Both sides must give the same row for
every attempt. The histories: generated ones with their planted anomalies, the same with fee
changes and trader re-registrations scattered around assignments (at their very position, in
either order, or next to them) and a trader's and a client's registration dropped, and a small
hand-made one whose every answer is written out.
"""

from __future__ import annotations

import functools
import json
import random
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from workbench.audit import shared
from workbench.domain import payment_order as po
from workbench.domain.catalog import DecodingError, try_decode
from workbench.domain.world import World
from workbench.export import ENVELOPE_SCHEMA
from workbench.generator import generate
from workbench.replay import store
from workbench.replay.engine import rebuild

Row = dict[str, Any]
#: (order_id, attempt, assigned event_id) -> (client_id, trader_id, fee_bps, reward_bps)
InForce = dict[tuple[str, int, str], tuple[str | None, str | None, int | None, int | None]]

SMALL = {"days": 1, "orders_per_day": 300, "traders": 10, "clients": 4}


def sql_side(db: Path) -> InForce:
    """The model's rows, built as the audit builds it (a temp table of the audited database)."""
    con = store.connect(db, read_only=True)
    try:
        shared.prepare(con, ["audit_fees_in_force"])
        rows = con.execute(
            "SELECT order_id, attempt, assigned_event_id, client_id, trader_id, fee_bps, "
            "reward_bps FROM audit_fees_in_force"
        ).fetchall()
    finally:
        con.close()
    out: InForce = {(o, a, e): (c, t, f, r) for o, a, e, c, t, f, r in rows}
    assert len(out) == len(rows), "one row per attempt"
    return out


def oracle_side(db: Path) -> InForce:
    """The domain's answer on the events the replay kept."""
    con = store.connect(db, read_only=True)
    try:
        rows = con.sql("SELECT * EXCLUDE (source) FROM events").to_arrow_table().to_pylist()
    finally:
        con.close()
    return fold_in_force(rows)


def fold_in_force(rows: Iterable[Row], *, decodable: bool = True) -> InForce:
    """Fold ``rows`` in ``(position, event_id)`` order and ask the world, just before each
    assignment is folded, what is in force (``decodable``: every row must decode)."""
    world, out = World(), {}
    for row in sorted(rows, key=lambda r: (r["position"], r["event_id"])):
        e = try_decode(row)
        if isinstance(e, DecodingError):
            assert not decodable, (row, e)
            continue
        p = e.payload
        if isinstance(p, po.OrderAssigned):
            order = world.orders.get(e.aggregate_id)
            client_id = order.client_id if order is not None else None
            fee, reward = world.bps_in_force(client_id, p.trader_id)
            out[(e.aggregate_id, p.attempt, e.event_id)] = (client_id, p.trader_id, fee, reward)
        world.apply(e)
    return out


def compare(rows: list[Row], folder: Path) -> InForce:
    """Replay ``rows`` (one Parquet file); both sides must agree row for row. Returns them."""
    (folder / "export").mkdir(parents=True)
    table = pa.Table.from_pylist(rows, schema=ENVELOPE_SCHEMA)
    pq.write_table(table, folder / "export/part-0.parquet")
    db = folder / "db.duckdb"
    rebuild([folder / "export"], db, full=True, progress=False)
    sql, oracle = sql_side(db), oracle_side(db)
    wrong = {
        k: (sql.get(k), oracle.get(k))
        for k in sql.keys() | oracle.keys()
        if sql.get(k) != oracle.get(k)
    }
    assert not wrong, f"{len(wrong)} attempts differ, (SQL, fold): {sorted(wrong.items())[:10]}"
    return oracle


def renumber(rows: list[Row]) -> list[Row]:
    """``seq`` made contiguous again per aggregate, in ``(position, event_id)`` order (events were
    added or dropped), so the only anomalies are the planted ones and the edits."""
    rows.sort(key=lambda r: (r["position"], r["event_id"]))
    seqs: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["stream"], r["aggregate_id"])
        seqs[key] = r["seq"] = seqs.get(key, 0) + 1
    return rows


# --------------------------------------------------------------------------- generated histories
@functools.cache
def generated(seed: int) -> tuple[Row, ...]:
    """A small generated day with its planted anomalies, once per process."""
    with tempfile.TemporaryDirectory(prefix="fees-in-force-") as d:
        export, truth = Path(d) / "export", Path(d) / "truth.csv"
        generate(export, seed=seed, truth=truth, progress=False, **SMALL)
        return tuple(ds.dataset(str(export)).to_table(columns=ENVELOPE_SCHEMA.names).to_pylist())


def scattered(rows: list[Row], seed: int) -> list[Row]:
    """Fee changes and trader re-registrations around a third of the assignments: at the
    assignment's own position (before or after it, by event id), or one position before or
    after it. The first assignment's trader and client lose their registration, and nothing is
    added around that assignment: nothing is in force for it."""
    rng = random.Random(seed)
    client_of = {
        r["aggregate_id"]: json.loads(r["payload"])["client_id"]
        for r in rows
        if r["kind"] == "payment_order.created"
    }
    registration = {r["aggregate_id"]: r for r in rows if r["kind"] == "trader.registered"}
    first = min((r for r in rows if r["kind"] == "payment_order.assigned"), key=_order)
    added: list[Row] = []
    for r in [r for r in rows if r["kind"] == "payment_order.assigned"]:
        if rng.random() > 1 / 3 or r["position"] <= first["position"] + 1:
            continue
        pos = r["position"] + rng.choice([-1, 0, 0, 1])
        event_id = f"{rng.getrandbits(128):032x}"
        event_id = (
            f"{event_id[:8]}-{event_id[8:12]}-4{event_id[13:16]}-8{event_id[17:20]}-{event_id[20:]}"
        )
        new = {
            **r,
            "event_id": event_id,
            "position": pos,
            "correlation_id": None,
            "causation_id": None,
        }
        trader_id = json.loads(r["payload"])["trader_id"]
        if rng.random() < 0.7 and r["aggregate_id"] in client_of:
            new |= {
                "stream": "client",
                "aggregate_id": client_of[r["aggregate_id"]],
                "kind": "client.fee_changed",
                "schema_version": 1,
                "payload": json.dumps({"fee_bps": rng.randrange(100, 400)}),
            }
        elif trader_id in registration:
            reg = registration[trader_id]
            payload = {**json.loads(reg["payload"]), "reward_bps": rng.randrange(20, 150)}
            new |= {
                "stream": "trader",
                "aggregate_id": trader_id,
                "kind": "trader.registered",
                "schema_version": reg["schema_version"],
                "payload": json.dumps(payload),
            }
        else:
            continue
        added.append(new)
    # the registrations dropped; the trader's re-registrations added above stay (his reward is in
    # force from the first of them on)
    gone = {
        ("trader", json.loads(first["payload"])["trader_id"], "trader.registered"),
        ("client", client_of[first["aggregate_id"]], "client.registered"),
    }
    kept = [r for r in rows if (r["stream"], r["aggregate_id"], r["kind"]) not in gone]
    return renumber(kept + added)


def _order(r: Row) -> tuple[int, str]:
    return r["position"], r["event_id"]


@pytest.mark.parametrize("seed", [1, 9])
def test_generated_histories(seed: int, tmp_path: Path) -> None:
    assert len(compare(list(generated(seed)), tmp_path)) > 150


@pytest.mark.parametrize("seed", [1, 4])
def test_scattered_fee_changes_and_registrations(seed: int, tmp_path: Path) -> None:
    plain = fold_in_force(generated(seed), decodable=False)
    got = compare(scattered([dict(r) for r in generated(seed)], seed), tmp_path)
    # The edits reach the rule: more fees and rewards in force than the plain history has, and
    # attempts with no fee or no reward in force.
    for i in (2, 3):
        assert len({v[i] for v in got.values()}) > len({v[i] for v in plain.values()}) + 3
        assert any(v[i] is None for v in got.values())


# ----------------------------------------------------------------------------- a hand-made one
T0 = datetime(2026, 11, 2, 10, tzinfo=UTC)
#: At one position, ``EARLY`` sorts before ``MID`` and ``MID`` before ``LATE`` (by event id).
EARLY, MID, LATE = "1", "8", "f"


def event(
    pos: int, stream: str, aggregate_id: str, kind: str, payload: dict[str, Any], tie: str = MID
) -> Row:
    at = T0 + timedelta(seconds=pos)
    return {
        "event_id": f"{tie}{pos:07x}-0000-4000-8000-000000000000",
        "position": pos,
        "stream": stream,
        "aggregate_id": aggregate_id,
        "seq": 0,  # renumbered
        "kind": kind,
        "schema_version": 1,
        "occurred_at": at,
        "recorded_at": at,
        "correlation_id": None,
        "causation_id": None,
        "payload": json.dumps(payload),
    }


def client(pos: int, cid: str, fee_bps: int, tie: str = MID, *, register: bool = False) -> Row:
    if register:
        payload = {"name": cid, "settlement_currency": "USDT", "fee_bps": fee_bps}
        return event(pos, "client", cid, "client.registered", payload, tie)
    return event(pos, "client", cid, "client.fee_changed", {"fee_bps": fee_bps}, tie)


def trader(pos: int, tid: str, reward_bps: int, tie: str = MID) -> Row:
    payload = {
        "name": tid,
        "fiat_currency": "RUB",
        "settlement_currency": "USDT",
        "min_amount": 100,
        "max_amount": 10**9,
        "max_active_orders": 9,
        "reward_bps": reward_bps,
    }
    return event(pos, "trader", tid, "trader.registered", payload, tie)


def created(pos: int, oid: str, cid: str) -> Row:
    payload = {
        "client_id": cid,
        "direction": "payin",
        "amount": 100_000,
        "currency": "RUB",
        "client_ref": oid,
        "expires_at": "2026-11-02T12:00:00Z",
    }
    return event(pos, "payment_order", oid, "payment_order.created", payload)


def assigned(pos: int, oid: str, tid: str, attempt: int = 1, tie: str = MID) -> Row:
    payload = {
        "trader_id": tid,
        "attempt": attempt,
        "rate": "100",
        "settlement_currency": "USDT",
        "settlement_amount": 10_000_000,
        "platform_fee": 100_000,
        "trader_reward": 50_000,
        "accept_by": "2026-11-02T12:00:00Z",
    }
    return event(pos, "payment_order", oid, "payment_order.assigned", payload, tie)


def declined(pos: int, oid: str, tid: str) -> Row:
    payload = {"trader_id": tid, "reason": "busy"}
    return event(pos, "payment_order", oid, "payment_order.assignment_declined", payload)


HAND_MADE = [
    client(1, "c1", 100, register=True),
    trader(2, "t1", 50),
    event(3, "trader", "t2", "trader.went_online", {}),  # t2 is never registered
    client(4, "c2", 120),  # a fee change, and no registration: the fold takes it all the same
    *(created(10 + i, f"o{i}", "c1") for i in range(1, 6)),
    created(16, "o6", "c2"),
    created(17, "o7", "c3"),  # c3 has no event at all
    created(18, "o8", "c1"),
    # a fee change at the assignment's position, before it by event id: in force
    client(20, "c1", 200, EARLY),
    assigned(20, "o1", "t1", tie=LATE),
    # ... and after it: not yet
    assigned(30, "o2", "t1", tie=EARLY),
    client(30, "c1", 300, LATE),
    # just before, by one position: in force
    client(39, "c1", 400),
    assigned(40, "o3", "t1"),
    # just after: not yet
    assigned(50, "o4", "t1"),
    client(51, "c1", 500),
    # a trader with events but no registration: no reward in force (the fold's state has 0)
    assigned(60, "o5", "t2"),
    # a second registration at the assignment's position, before it: its reward is in force
    declined(61, "o1", "t1"),
    trader(70, "t1", 70, EARLY),
    assigned(70, "o1", "t1", attempt=2, tie=LATE),
    # ... and after it: not yet
    declined(79, "o3", "t1"),
    assigned(80, "o3", "t1", attempt=2, tie=EARLY),
    trader(80, "t1", 90, LATE),
    # a client known only by a fee change, a trader with no event at all
    assigned(90, "o6", "t3"),
    # a client with no event at all
    assigned(100, "o7", "t1"),
    # two fee changes at one position, then an assignment: the later by event id holds
    client(110, "c1", 600, EARLY),
    client(110, "c1", 700, LATE),
    assigned(111, "o8", "t1"),
]

#: (order, attempt) -> (fee_bps, reward_bps) in force, as the catalog's "in force at the moment
#: of assignment" reads with the log's order, ``(position, event_id)``.
EXPECTED = {
    ("o1", 1): (200, 50),
    ("o2", 1): (200, 50),
    ("o3", 1): (400, 50),
    ("o4", 1): (400, 50),
    ("o5", 1): (500, None),
    ("o1", 2): (500, 70),
    ("o3", 2): (500, 70),
    ("o6", 1): (120, None),
    ("o7", 1): (None, 90),
    ("o8", 1): (700, 90),
}


def test_a_hand_made_history(tmp_path: Path) -> None:
    got = compare(renumber([dict(r) for r in HAND_MADE]), tmp_path)
    assert {(o, a): (f, r) for (o, a, _), (_, _, f, r) in got.items()} == EXPECTED


def test_an_order_created_after_its_assignment_or_twice(tmp_path: Path) -> None:
    """The order's client is the one it has at the assignment (none yet, or an earlier
    creation's), not the one it ends with (``audit_attempt_orders``)."""
    rows = [
        client(1, "c1", 100, register=True),
        client(2, "c2", 200, register=True),
        trader(3, "t1", 50),
        assigned(10, "o1", "t1"),  # not created yet
        created(11, "o1", "c1"),
        created(20, "o2", "c2"),
        assigned(21, "o2", "t1"),
        created(22, "o2", "c1"),  # created again, for another client
    ]
    compare(renumber(rows), tmp_path)
