"""The entity SQL (clients, traders, receipts, payouts, ledger, ratings) equals the fold on
hand-made histories full of illegal events: what generated histories rarely contain."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.export import ENVELOPE_SCHEMA
from workbench.replay import connect, rebuild
from workbench.replay.bulk import differences

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


class History:
    """Envelope rows, one per call; positions increase unless given, seq is given."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.position = 100

    def add(
        self,
        kind: str,
        agg: str,
        seq: int,
        payload: dict[str, Any],
        *,
        v: int = 1,
        minute: float | None = None,
        position: int | None = None,
        event_id: str | None = None,
    ) -> None:
        self.position += 10
        pos = self.position if position is None else position
        at = T0 + timedelta(minutes=pos if minute is None else minute)
        self.rows.append(
            {
                "event_id": event_id or f"ev-{len(self.rows):05d}",
                "position": pos,
                "stream": kind.split(".")[0],
                "aggregate_id": agg,
                "seq": seq,
                "kind": kind,
                "schema_version": v,
                "occurred_at": at,
                "recorded_at": at + timedelta(seconds=1),
                "correlation_id": None,
                "causation_id": None,
                "payload": json.dumps(payload),
            }
        )

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        table = pa.Table.from_pylist(self.rows, schema=ENVELOPE_SCHEMA)
        pq.write_table(table, folder / "part-0.parquet")


def _ts(minute: int) -> str:
    return (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _posting(src: str, dst: str, amount: int, currency: str = "USDT") -> dict[str, Any]:
    return {"from": src, "to": dst, "amount": amount, "currency": currency, "description": "d"}


def _history() -> History:
    h = History()
    # clients: a second registration (earlier occurred_at), a change before any registration,
    # a stray event with an old seq, two events at one position (event_id decides)
    reg = {"name": "A", "settlement_currency": "USDT", "fee_bps": 100}
    h.add("client.registered", "c1", 1, reg, minute=50)
    h.add("client.fee_changed", "c1", 2, {"fee_bps": 120})
    h.add("client.registered", "c1", 3, {**reg, "name": "A2", "fee_bps": 90}, minute=5)
    h.add("client.fee_changed", "c1", 2, {"fee_bps": 130})
    h.add("client.fee_changed", "c2", 1, {"fee_bps": 7})
    h.add("client.registered", "c3", 1, reg, position=5000, event_id="z-late")
    h.add("client.fee_changed", "c3", 2, {"fee_bps": 11}, position=5000, event_id="a-early")

    # traders
    v1 = {
        "name": "T",
        "fiat_currency": "RUB",
        "settlement_currency": "USDT",
        "min_amount": 100,
        "max_amount": 1000,
        "max_active_orders": 3,
        "reward_bps": 50,
    }
    v2 = {
        "name": "T2",
        "fiat_currency": "KZT",
        "settlement_currency": "USDT",
        "limits": {"min_amount": 200, "max_amount": 2000, "max_active_orders": 4},
        "reward_bps": 60,
        "country": "KZ",
    }
    t = "trader.hold_placed"
    h.add("trader.registered", "t1", 1, v1)
    h.add("trader.registered", "t1", 2, v2, v=2)
    h.add(
        "trader.limits_changed", "t1", 3, {"min_amount": 1, "max_amount": 9, "max_active_orders": 1}
    )
    h.add("trader.blocked", "t1", 4, {"reason": "x"})
    h.add("trader.blocked", "t1", 5, {"reason": "y"})
    h.add("trader.unblocked", "t1", 6, {})
    h.add("trader.went_online", "t1", 7, {})
    h.add("trader.went_offline", "t1", 8, {})
    h.add("trader.went_online", "t1", 9, {})
    h.add("trader.deposit_topped_up", "t1", 10, {"ref": "topup:1", "amount": 10_000})
    h.add(t, "t1", 11, {"ref": "r1", "amount": 100})
    h.add(t, "t1", 12, {"ref": "r1", "amount": 150})
    h.add(t, "t1", 13, {"ref": "r2", "amount": 50})
    h.add("trader.hold_released", "t1", 14, {"ref": "r2", "amount": 999})
    h.add("trader.hold_captured", "t1", 15, {"ref": "r1", "amount": 200})
    h.add("trader.hold_released", "t1", 16, {"ref": "r3", "amount": 5})
    h.add("trader.deposit_debited", "t1", 17, {"ref": "x", "amount": 30})
    h.add("trader.deposit_credited", "t1", 18, {"ref": "y", "amount": 40})
    h.add(t, "t1", 19, {"ref": "r4", "amount": 70})
    h.add(t, "t1", 20, {"ref": "r5", "amount": 0})
    h.add("trader.hold_captured", "t1", 21, {"ref": "r2", "amount": 3})
    h.add(t, "t1", 22, {"ref": "r2", "amount": 8})
    h.add("trader.registered", "t2", 1, v2, v=2)
    h.add("trader.registered", "t2", 2, v1)
    h.add("trader.went_online", "t3", 1, {})
    h.add(t, "t3", 2, {"ref": "r1", "amount": 5})
    h.add("trader.registered", "t4", 1, {**v2, "country": None}, v=2)
    h.add("trader.went_offline", "t4", 2, {})
    h.add("trader.blocked", "t4", 3, {"reason": "z"})

    # orders, so that traders have active orders (payment_orders is read from its table)
    created = {
        "client_id": "c1",
        "direction": "payin",
        "money": {"amount": 500, "currency": "RUB"},
        "client_ref": "x",
        "expires_at": _ts(600),
        "channel": "card",
    }

    def assigned(tid: str, attempt: int) -> dict[str, Any]:
        return {
            "trader_id": tid,
            "attempt": attempt,
            "rate": "90.5",
            "settlement_currency": "USDT",
            "settlement_amount": 55,
            "platform_fee": 2,
            "trader_reward": 1,
            "accept_by": _ts(700),
        }

    for i, tids in enumerate((["t1"], ["t1", "t2"], ["t4"], ["t1"])):
        oid = f"o{i}"
        h.add("payment_order.created", oid, 1, created, v=2)
        for n, tid in enumerate(tids, start=1):
            h.add("payment_order.assigned", oid, 1 + n, assigned(tid, n))
    h.add("payment_order.accepted", "o3", 3, {"trader_id": "t1", "complete_by": _ts(800)})
    h.add("payment_order.completed", "o3", 4, {"trader_id": "t1", "paid_amount": 500})

    # receipts
    up = {
        "order_id": "o1",
        "trader_id": "t1",
        "amount": 500,
        "currency": "RUB",
        "paid_at": "2026-11-01T10:15:00.250Z",
        "bank": "B",
        "file_sha256": "ab",
    }
    an = {
        "extracted_amount": None,
        "extracted_paid_at": None,
        "confidence": 0.5,
        "flags": ["b", "a"],
    }
    h.add("receipt.uploaded", "r1", 1, up)
    h.add("receipt.analyzed", "r1", 2, an)
    h.add("receipt.approved", "r1", 3, {"by": "auto"})
    h.add("receipt.rejected", "r1", 4, {"reason": "no"})
    h.add("receipt.analyzed", "r2", 1, {**an, "confidence": 1, "extracted_amount": 3})
    h.add("receipt.uploaded", "r2", 2, {**up, "amount": 7})
    h.add("receipt.uploaded", "r3", 1, up)
    full = {**an, "extracted_amount": 5, "extracted_paid_at": _ts(3), "confidence": 0.99}
    h.add("receipt.analyzed", "r4", 1, full)
    h.add("receipt.analyzed", "r4", 2, {**an, "confidence": 0, "flags": []})
    h.add("receipt.rejected", "r5", 1, {"reason": "early"})

    # payouts
    cr = {
        "owner": "client:c1",
        "amount": 1000,
        "fee": 10,
        "currency": "USDT",
        "destination_masked": "T****",
        "plan_id": "payout:p1",
    }
    h.add("payout.created", "p1", 1, cr)
    h.add("payout.paid", "p1", 2, {"bank_ref": "b1"})
    h.add("payout.confirmed", "p1", 3, {})
    h.add("payout.cancelled", "p1", 4, {"details": "d1"})
    h.add("payout.cancelled", "p1", 5, {"details": "d2"})
    h.add("payout.created", "p2", 1, {**cr, "owner": "trader:t1"})
    h.add("payout.failed", "p2", 2, {"error": "e"})
    h.add("payout.cancelled", "p2", 3, {"details": "after failure"})
    h.add("payout.paid", "p3", 1, {"bank_ref": "b3"})
    h.add("payout.cancelled", "p4", 1, {"details": "first"})
    h.add("payout.created", "p4", 2, cr)
    h.add("payout.failed", "p5", 1, {"error": "e5"})

    # ledger plans
    held, commit, rollback = (
        "ledger_plan.batch_held",
        "ledger_plan.committed",
        "ledger_plan.rolled_back",
    )
    a, b, c = "client:c1", "trader:t1", "platform:revenue"
    # two batches, commit lists one, a rollback then ends the other, a commit comes too late
    h.add(held, "L1", 1, {"batch_id": 1, "postings": [_posting(a, b, 10), _posting(a, c, 1)]})
    h.add(held, "L1", 2, {"batch_id": 2, "postings": [_posting(b, a, 4)]})
    h.add(commit, "L1", 3, {"batch_ids": [1]})
    h.add(rollback, "L1", 4, {"batch_ids": [2]})
    h.add(commit, "L1", 5, {"batch_ids": [2, 1]})
    # ended before any batch, then a batch, then a commit of it
    h.add(commit, "L2", 1, {"batch_ids": [1]})
    h.add(held, "L2", 2, {"batch_id": 1, "postings": [_posting(b, c, 3)]})
    h.add(commit, "L2", 3, {"batch_ids": [1]})
    # one batch_id held twice, committed with a repeated and an unknown id
    h.add(held, "L3", 1, {"batch_id": 1, "postings": [_posting(a, b, 20)]})
    h.add(held, "L3", 2, {"batch_id": 1, "postings": [_posting(b, a, 5, "RUB")]})
    h.add(commit, "L3", 3, {"batch_ids": [1, 1, 99]})
    # rolled back, a batch held after the end (stays held), then committed by a second end
    h.add(held, "L4", 1, {"batch_id": 1, "postings": [_posting(a, c, 6)]})
    h.add(rollback, "L4", 2, {"batch_ids": [1]})
    h.add(held, "L4", 3, {"batch_id": 2, "postings": [_posting(c, a, 2)]})
    h.add(commit, "L4", 4, {"batch_ids": [2]})
    # rolled back, the same batch_id held again after the end and never ended
    h.add(held, "L5", 1, {"batch_id": 7, "postings": [_posting(a, c, 6)]})
    h.add(rollback, "L5", 2, {"batch_ids": [7]})
    h.add(held, "L5", 3, {"batch_id": 7, "postings": [_posting(b, "external:USDT", 9)]})
    # zero and self postings; an open plan; an empty batch; an end alone; a stray old seq
    zero = [_posting(a, c, 0), _posting(c, c, 1_000_000)]
    h.add(held, "L6", 1, {"batch_id": 3, "postings": zero})
    h.add(commit, "L6", 2, {"batch_ids": [3]})
    h.add(held, "L7", 1, {"batch_id": 4, "postings": [_posting("client:c9", b, 11, "KZT")]})
    h.add(held, "L8", 1, {"batch_id": 5, "postings": []})
    h.add(rollback, "L9", 1, {"batch_ids": [5]})
    h.add(held, "L10", 2, {"batch_id": 6, "postings": [_posting("client:c8", c, 1)]})
    h.add(held, "L10", 1, {"batch_id": 7, "postings": [_posting("client:c8", c, 2)]})
    h.add(commit, "L10", 3, {"batch_ids": [7, 6]})
    h.add(commit, "L10", 4, {"batch_ids": [6]})

    # ratings
    r = {
        "as_of": _ts(60),
        "window_days": 1,
        "assignments": 3,
        "completed": 2,
        "on_time": 1,
        "disputed": 0,
        "score": 72.35,
    }
    h.add("trader_rating.published", "t1", 1, r)
    h.add("trader_rating.published", "t1", 2, {**r, "score": 55})
    h.add("trader_rating.published", "t9", 1, {**r, "score": 0.5, "window_days": 7})
    return h


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sql_entities")
    _history().write(base / "export")
    rebuild([base / "export"], base / "h.duckdb", progress=False, engine="fold")
    return base / "h.duckdb"


def test_every_event_is_applied(db: Path) -> None:
    con = connect(db, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM quarantine").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(len(_history().rows),)]
    finally:
        con.close()


#: The entity projections this module's history exercises.
ENTITIES = (
    "account_balances",
    "clients",
    "ledger_plans",
    "ledger_postings",
    "payouts",
    "receipts",
    "trader_ratings",
    "traders",
)


@pytest.mark.parametrize("table", ENTITIES)
def test_sql_equals_fold_on_illegal_histories(db: Path, table: str) -> None:
    """:func:`workbench.replay.bulk.differences` for one table (the tables a model reads, e.g.
    payment_orders, are the fold's)."""
    con = connect(db)
    try:
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] > 0
        assert differences(con).get(table) is None
    finally:
        con.close()


def test_the_history_reaches_the_edge_cases(db: Path) -> None:
    """The fold's answers the SQL must match (so the cases above really are exercised)."""
    con = connect(db, read_only=True)
    try:

        def one(sql: str) -> tuple[Any, ...]:
            return tuple(con.execute(sql).fetchall()[0])

        assert one(
            "SELECT status, batches, open_batches, ended_at IS NULL FROM ledger_plans WHERE plan_id = 'L2'"
        ) == (
            "committed",
            1,
            0,
            True,
        )
        assert one("SELECT status, open_batches FROM ledger_plans WHERE plan_id = 'L5'") == (
            "rolled_back",
            1,
        )
        assert one(
            "SELECT held, open_holds, active_orders, country FROM traders WHERE trader_id = 't1'"
        ) == (
            78,
            3,
            1,  # o0; o1's latest attempt moved to t2, o3 is completed
            "KZ",
        )
        assert one("SELECT cancelled_from FROM payouts WHERE payout_id = 'p2'") == ("failed",)
        assert one("SELECT flags, extracted_amount FROM receipts WHERE receipt_id = 'r4'") == (
            [],
            None,
        )
    finally:
        con.close()
