"""The per-event projection rows (``workbench.replay.rows``) against expectations computed by hand.

Each scenario is a short history written with the platform's commands (or hand-made events);
every expected figure is worked out from the event catalog in the comments, never read back from
the code under test. Ids the platform draws (event ids, batch ids) are inputs: they are taken
from the events written. The fixture export is checked for shape: no violations, every row has
the schema's columns with values DuckDB stores and reads back unchanged.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.domain.catalog import decode
from workbench.domain.client import ClientFeeChanged, ClientRegistered
from workbench.domain.events import Event, Payload
from workbench.domain.payment_order import OrderAccepted, OrderCreated
from workbench.domain.processors import IdSource, Platform
from workbench.domain.world import World, fold
from workbench.replay.rows import project
from workbench.replay.schema import PROJECTIONS

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
USDT = 1_000_000  # minor units per USDT

_DEFAULT_EXPORT = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "platform-export-3d"
FIXTURE_EXPORT = Path(os.environ.get("WORKBENCH_FIXTURE_EXPORT", _DEFAULT_EXPORT))

TABLES = {t.name: t for t in PROJECTIONS}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def row(table: str, **values: Any) -> tuple[Any, ...]:
    """An expected row given by column name, laid out in the schema's column order."""
    names = TABLES[table].column_names
    assert set(values) == set(names), set(values) ^ set(names)
    return tuple(values[n] for n in names)


def find(log: list[Event], kind: str, aggregate_id: str) -> list[Event]:
    return [e for e in log if e.kind == kind and e.aggregate_id == aggregate_id]


def one(log: list[Event], kind: str, aggregate_id: str) -> Event:
    (e,) = find(log, kind, aggregate_id)
    return e


# ------------------------------------------------------------------ scenario A: orders and deposits
@pytest.fixture(scope="module")
def orders_run() -> Platform:
    """Two traders, a payin declined then completed on its second attempt (through a rejected
    receipt, review and an upheld dispute), a payin left assigned in two batches, a payin
    cancelled before any assignment, a blocked trader, a fee change and three ratings."""
    p = Platform(ids=IdSource(seed=11))
    p.register_client("cl-1", "Merchant", "USDT", 150, at(0))  # fee 1.5%
    p.top_up_client("cl-1", "tu-c1", 500 * USDT, at(1))
    # limits: 1 000.00 .. 1 000 000.00 RUB, 2 active orders, reward 0.5%
    p.register_trader(
        "tr-1", "Trader 1", "RUB", "USDT", 1_000_00, 1_000_000_00, 2, 50, at(1), version=1
    )
    p.register_trader(
        "tr-2", "Trader 2", "RUB", "USDT", 1_000_00, 1_000_000_00, 2, 50, at(1), country="KZ"
    )
    p.top_up_trader("tr-1", "tu-t1", 2_000 * USDT, at(2))
    p.top_up_trader("tr-2", "tu-t2", 2_000 * USDT, at(2))
    p.go_online("tr-1", at(3))
    p.go_online("tr-2", at(3))

    p.create_order("po-1", "cl-1", "payin", 92_350_00, "RUB", "INV-1", at(5), channel="sbp")
    p.assign("po-1", "tr-1", "92.35", at(6))
    p.decline("po-1", "busy", at(7))
    p.assign("po-1", "tr-2", "92.50", at(9))
    p.accept("po-1", at(10))
    p.upload_receipt("rc-0", "po-1", 92_350_00, "RUB", at(10), "Bank A", "0" * 64, at(11))
    p.analyze_receipt("rc-0", None, None, Decimal("0.5"), ["blurry"], at(12))  # → review
    p.reject_receipt("rc-0", "unreadable", at(13))
    p.upload_receipt("rc-1", "po-1", 92_350_00, "RUB", at(10), "Bank A", "a" * 64, at(14))
    p.analyze_receipt("rc-1", 92_350_00, at(10), Decimal("0.95"), [], at(15))
    p.approve_receipt("rc-1", "auto", at(16))
    p.complete("po-1", at(17))

    p.create_order("po-2", "cl-1", "payin", 46_175_00, "RUB", "INV-2", at(20), version=1)
    p.assign("po-2", "tr-1", "92.35", at(21), split_batches=True)

    p.create_order("po-3", "cl-1", "payin", 5_000_00, "RUB", "INV-3", at(22))
    p.cancel("po-3", "client_request", at(23))

    p.change_client_fee("cl-1", 175, at(25))
    p.block_trader("tr-2", "fraud check", at(30))
    p.go_offline("tr-2", at(31))

    p.dispute("po-1", "customer says unpaid", at(45))
    p.resolve_dispute("po-1", "upheld", "receipt is genuine", at(46))

    p.publish_rating("tr-1", at(50), 1, at(50))
    p.publish_rating("tr-2", at(50), 1, at(50))
    p.publish_rating("tr-1", at(60), 1, at(60), score=Decimal("99.5"))
    return p


@pytest.fixture(scope="module")
def orders_rows(orders_run: Platform) -> dict[str, list[tuple[Any, ...]]]:
    return project(orders_run.world)


# po-1, attempt 1 (tr-1 at 92.35): 92 350.00 RUB / 92.35 = 1 000 USDT; fee 1.5% = 15; reward
# 0.5% = 5. Attempt 2 (tr-2 at 92.50): 92 350.00 / 92.50 = 998.378378378… USDT → 998 378 378
# minor units; fee 998 378 378 * 150 / 10000 = 14 975 675.67 → 14 975 676; reward
# 998 378 378 * 50 / 10000 = 4 991 891.89 → 4 991 892.
# Its plan: trader → client 998 378 378 - 14 975 676 = 983 402 702; trader → revenue
# 14 975 676 - 4 991 892 = 9 983 784; the trader's hold 998 378 378 - 4 991 892 = 993 386 486.
PO1_A2 = (998_378_378, 14_975_676, 4_991_892)
# po-2 (tr-1 at 92.35): 46 175.00 / 92.35 = 500 USDT; fee 7.5; reward 2.5; hold 497.5.
PO2 = (500 * USDT, 7_500_000, 2_500_000)


def test_scenario_is_clean(orders_rows: dict[str, list[tuple[Any, ...]]]) -> None:
    assert orders_rows["violations"] == []


def test_clients(orders_rows: dict[str, list[tuple[Any, ...]]]) -> None:
    # registered at 0, fee changed at 25 (top-ups are ledger plans, not client events)
    assert orders_rows["clients"] == [
        row(
            "clients",
            client_id="cl-1",
            registered=True,
            name="Merchant",
            settlement_currency="USDT",
            fee_bps=175,
            registered_at=at(0),
            updated_at=at(25),
            version=2,
        )
    ]


def test_traders_deposit_after_hold_release_and_capture(
    orders_rows: dict[str, list[tuple[Any, ...]]],
) -> None:
    common = {
        "registered": True,
        "fiat_currency": "RUB",
        "settlement_currency": "USDT",
        "min_amount": 1_000_00,
        "max_amount": 1_000_000_00,
        "max_active_orders": 2,
        "reward_bps": 50,
        "registered_at": at(1),
    }
    # tr-1: 2000 topped up; 995 held for po-1 and released at the decline; 497.5 held for po-2,
    # which is still assigned. Events: registered, topped_up, online, hold, release, hold.
    tr1 = row(
        "traders",
        trader_id="tr-1",
        name="Trader 1",
        country=None,  # a v1 registration
        status="active",
        online=True,
        deposit_balance=2_000 * USDT,
        held=497_500_000,
        available=1_502_500_000,
        open_holds=1,
        active_orders=1,
        updated_at=at(21),
        version=6,
        **common,
    )
    # tr-2: 2000 topped up; 993.386486 held for po-1 and captured at completion; blocked, then
    # offline. Events: registered, topped_up, online, hold, capture, blocked, offline.
    tr2 = row(
        "traders",
        trader_id="tr-2",
        name="Trader 2",
        country="KZ",
        status="blocked",
        online=False,
        deposit_balance=2_000 * USDT - 993_386_486,
        held=0,
        available=1_006_613_514,
        open_holds=0,
        active_orders=0,
        updated_at=at(31),
        version=7,
        **common,
    )
    assert orders_rows["traders"] == [tr1, tr2]


def test_payment_orders(orders_rows: dict[str, list[tuple[Any, ...]]]) -> None:
    none_after_creation = {
        "review_started_at": None,
        "review_reason": None,
        "completed_at": None,
        "completed_by": None,
        "paid_amount": None,
        "cancelled_at": None,
        "cancel_reason": None,
        "disputed_at": None,
        "dispute_reason": None,
        "resolved_at": None,
        "dispute_outcome": None,
    }
    # po-1: created, assigned, declined, assigned, accepted, receipt attached, review started,
    # receipt attached, completed, disputed, resolved: 11 events, the last at 46.
    po1 = row(
        "payment_orders",
        order_id="po-1",
        client_id="cl-1",
        direction="payin",
        amount=92_350_00,
        currency="RUB",
        client_ref="INV-1",
        channel="sbp",
        status="completed",  # the dispute was upheld
        attempts=2,
        attempt=2,
        trader_id="tr-2",
        rate="92.50",
        settlement_currency="USDT",
        settlement_amount=PO1_A2[0],
        platform_fee=PO1_A2[1],
        trader_reward=PO1_A2[2],
        expires_at=at(5 + 60),
        accept_by=at(9 + 2),
        complete_by=at(10 + 30),
        created_at=at(5),
        assigned_at=at(9),
        accepted_at=at(10),
        review_started_at=at(12),
        review_reason="low_confidence",
        completed_at=at(17),
        completed_by="tr-2",
        paid_amount=92_350_00,
        cancelled_at=None,
        cancel_reason=None,
        disputed_at=at(45),
        dispute_reason="customer says unpaid",
        resolved_at=at(46),
        dispute_outcome="upheld",
        receipt_ids=["rc-0", "rc-1"],
        updated_at=at(46),
        version=11,
    )
    po2 = row(
        "payment_orders",
        order_id="po-2",
        client_id="cl-1",
        direction="payin",
        amount=46_175_00,
        currency="RUB",
        client_ref="INV-2",
        channel="card",  # a v1 creation
        status="assigned",
        attempts=1,
        attempt=1,
        trader_id="tr-1",
        rate="92.35",
        settlement_currency="USDT",
        settlement_amount=PO2[0],
        platform_fee=PO2[1],
        trader_reward=PO2[2],
        expires_at=at(20 + 60),
        accept_by=at(21 + 2),
        complete_by=None,
        created_at=at(20),
        assigned_at=at(21),
        accepted_at=None,
        receipt_ids=[],
        updated_at=at(21),
        version=2,
        **none_after_creation,
    )
    po3 = row(
        "payment_orders",
        order_id="po-3",
        client_id="cl-1",
        direction="payin",
        amount=5_000_00,
        currency="RUB",
        client_ref="INV-3",
        channel="card",
        status="cancelled",
        attempts=0,
        attempt=None,
        trader_id=None,
        rate=None,
        settlement_currency=None,
        settlement_amount=None,
        platform_fee=None,
        trader_reward=None,
        expires_at=at(22 + 60),
        accept_by=None,
        complete_by=None,
        created_at=at(22),
        assigned_at=None,
        accepted_at=None,
        receipt_ids=[],
        updated_at=at(23),
        version=2,
        **{**none_after_creation, "cancelled_at": at(23), "cancel_reason": "client_request"},
    )
    assert orders_rows["payment_orders"] == [po1, po2, po3]


def test_order_attempts(
    orders_run: Platform, orders_rows: dict[str, list[tuple[Any, ...]]]
) -> None:
    log = orders_run.log
    a1, a2 = find(log, "payment_order.assigned", "po-1")
    b1 = one(log, "payment_order.assigned", "po-2")
    declined = one(log, "payment_order.assignment_declined", "po-1")
    accepted = one(log, "payment_order.accepted", "po-1")
    review = one(log, "payment_order.review_started", "po-1")  # while attempt 2 was open
    completed = one(log, "payment_order.completed", "po-1")
    expected = [
        row(
            "order_attempts",
            order_id="po-1",
            attempt=1,
            trader_id="tr-1",
            rate="92.35",
            settlement_currency="USDT",
            settlement_amount=1_000 * USDT,
            platform_fee=15 * USDT,
            trader_reward=5 * USDT,
            assigned_at=at(6),
            accept_by=at(8),
            accepted_at=None,
            complete_by=None,
            ended_at=at(7),
            outcome="declined",
            assigned_event_id=a1.event_id,
            assigned_pos=a1.position,
            accepted_event_id=None,
            end_event_id=declined.event_id,
            end_pos=declined.position,
            review_event_id=None,
            review_pos=None,
        ),
        row(
            "order_attempts",
            order_id="po-1",
            attempt=2,
            trader_id="tr-2",
            rate="92.50",
            settlement_currency="USDT",
            settlement_amount=PO1_A2[0],
            platform_fee=PO1_A2[1],
            trader_reward=PO1_A2[2],
            assigned_at=at(9),
            accept_by=at(11),
            accepted_at=at(10),
            complete_by=at(40),
            ended_at=at(17),
            outcome="completed",
            assigned_event_id=a2.event_id,
            assigned_pos=a2.position,
            accepted_event_id=accepted.event_id,
            end_event_id=completed.event_id,
            end_pos=completed.position,
            review_event_id=review.event_id,
            review_pos=review.position,
        ),
        row(
            "order_attempts",
            order_id="po-2",
            attempt=1,
            trader_id="tr-1",
            rate="92.35",
            settlement_currency="USDT",
            settlement_amount=PO2[0],
            platform_fee=PO2[1],
            trader_reward=PO2[2],
            assigned_at=at(21),
            accept_by=at(23),
            accepted_at=None,
            complete_by=None,
            ended_at=None,
            outcome=None,  # still open
            assigned_event_id=b1.event_id,
            assigned_pos=b1.position,
            accepted_event_id=None,
            end_event_id=None,
            end_pos=None,
            review_event_id=None,
            review_pos=None,
        ),
    ]
    assert orders_rows["order_attempts"] == expected


def test_receipts(orders_rows: dict[str, list[tuple[Any, ...]]]) -> None:
    common = {
        "order_id": "po-1",
        "trader_id": "tr-2",  # the order's trader when uploaded
        "amount": 92_350_00,
        "currency": "RUB",
        "paid_at": at(10),
        "bank": "Bank A",
        "version": 3,  # uploaded, analyzed, approved or rejected
    }
    assert orders_rows["receipts"] == [
        row(
            "receipts",
            receipt_id="rc-0",
            file_sha256="0" * 64,
            status="rejected",
            uploaded_at=at(11),
            extracted_amount=None,
            extracted_paid_at=None,
            confidence=Decimal("0.5"),
            flags=["blurry"],
            analyzed_at=at(12),
            approved_by=None,
            reject_reason="unreadable",
            decided_at=at(13),
            **common,
        ),
        row(
            "receipts",
            receipt_id="rc-1",
            file_sha256="a" * 64,
            status="approved",
            uploaded_at=at(14),
            extracted_amount=92_350_00,
            extracted_paid_at=at(10),
            confidence=Decimal("0.95"),
            flags=[],
            analyzed_at=at(15),
            approved_by="auto",
            reject_reason=None,
            decided_at=at(16),
            **common,
        ),
    ]


def test_ledger_plans_and_postings(
    orders_run: Platform, orders_rows: dict[str, list[tuple[Any, ...]]]
) -> None:
    log = orders_run.log

    def end_id(plan: str) -> str:
        (e,) = [x for x in log if x.aggregate_id == plan and x.kind != "ledger_plan.batch_held"]
        return e.event_id

    def plan(
        plan_id: str,
        status: str,
        batches: int,
        open_: int,
        postings: int,
        t0: float,
        t1: float | None,
    ) -> tuple[Any, ...]:
        return row(
            "ledger_plans",
            plan_id=plan_id,
            status=status,
            batches=batches,
            open_batches=open_,
            postings=postings,
            created_at=at(t0),
            ended_at=at(t1) if t1 is not None else None,
            end_event_id=end_id(plan_id) if t1 is not None else None,
            version=batches + (1 if t1 is not None else 0),  # batches held, then the end
        )

    assert orders_rows["ledger_plans"] == [
        plan("order:po-1:1", "rolled_back", 1, 0, 2, 6, 7),
        plan("order:po-1:2", "committed", 1, 0, 2, 9, 17),
        plan("order:po-2:1", "held", 2, 2, 2, 21, None),  # split: one batch per posting
        plan("topup:tu-c1", "committed", 1, 0, 1, 1, 1),
        plan("topup:tu-t1", "committed", 1, 0, 1, 2, 2),
        plan("topup:tu-t2", "committed", 1, 0, 1, 2, 2),
    ]

    def postings(
        plan_id: str, moves: list[tuple[str, str, int, str]], held_at: float, status: str
    ) -> list[tuple[Any, ...]]:
        """Expected rows of a plan: ``moves`` in order, split evenly over its held batches."""
        out = []
        held = find(log, "ledger_plan.batch_held", plan_id)
        per_batch = len(moves) // len(held)
        for b, ev in enumerate(held):
            for i in range(per_batch):
                frm, to, amount, desc = moves[b * per_batch + i]
                out.append(
                    row(
                        "ledger_postings",
                        plan_id=plan_id,
                        batch_id=ev.payload.batch_id,  # type: ignore[attr-defined]
                        posting_index=i,
                        from_account=frm,
                        to_account=to,
                        amount=amount,
                        currency="USDT",
                        description=desc,
                        held_at=at(held_at),
                        batch_status=status,
                        held_event_id=ev.event_id,
                    )
                )
        return out

    net, rev = "payin: settlement net of platform fee", "payin: platform fee net of trader reward"
    expected = [
        # attempt 1: 1000 - 15 = 985 to the client, 15 - 5 = 10 to revenue; rolled back
        *postings(
            "order:po-1:1",
            [
                ("trader:tr-1", "client:cl-1", 985 * USDT, net),
                ("trader:tr-1", "platform:revenue", 10 * USDT, rev),
            ],
            6,
            "rolled_back",
        ),
        *postings(
            "order:po-1:2",
            [
                ("trader:tr-2", "client:cl-1", 983_402_702, net),
                ("trader:tr-2", "platform:revenue", 9_983_784, rev),
            ],
            9,
            "committed",
        ),
        # po-2: 500 - 7.5 = 492.5 to the client, 7.5 - 2.5 = 5 to revenue; two open batches
        *postings(
            "order:po-2:1",
            [
                ("trader:tr-1", "client:cl-1", 492_500_000, net),
                ("trader:tr-1", "platform:revenue", 5 * USDT, rev),
            ],
            21,
            "held",
        ),
        *postings(
            "topup:tu-c1", [("external:USDT", "client:cl-1", 500 * USDT, "top-up")], 1, "committed"
        ),
        *postings(
            "topup:tu-t1",
            [("external:USDT", "trader:tr-1", 2_000 * USDT, "top-up")],
            2,
            "committed",
        ),
        *postings(
            "topup:tu-t2",
            [("external:USDT", "trader:tr-2", 2_000 * USDT, "top-up")],
            2,
            "committed",
        ),
    ]
    # the table's key: (held_event_id, posting_index)
    expected.sort(key=lambda r: (r[-1], r[2]))
    assert orders_rows["ledger_postings"] == expected


def test_account_balances(orders_rows: dict[str, list[tuple[Any, ...]]]) -> None:
    # client: 500 top-up + 983.402702 from po-1's committed attempt; never debited
    # external:USDT: -(500 + 2000 + 2000)
    # revenue: 9.983784 from po-1's committed attempt (attempt 1 was rolled back)
    # tr-1: 2000 own; po-2's plan holds 492.5 + 5 of it
    # tr-2: 2000 - 983.402702 - 9.983784
    assert orders_rows["account_balances"] == [
        ("client:cl-1", "USDT", 1_483_402_702, 0, 1_483_402_702),
        ("external:USDT", "USDT", -4_500 * USDT, 0, -4_500 * USDT),
        ("platform:revenue", "USDT", 9_983_784, 0, 9_983_784),
        ("trader:tr-1", "USDT", 2_000 * USDT, 497_500_000, 1_502_500_000),
        ("trader:tr-2", "USDT", 1_006_613_514, 0, 1_006_613_514),
    ]


def test_every_published_rating(
    orders_run: Platform, orders_rows: dict[str, list[tuple[Any, ...]]]
) -> None:
    log = orders_run.log
    r1, r3 = find(log, "trader_rating.published", "tr-1")
    r2 = one(log, "trader_rating.published", "tr-2")
    # window (as_of - 1 day, as_of] holds the whole history.
    # tr-1: 2 assignments, nothing completed: 100*(0.6*1/4 + 0.3*1/2 + 0.1*1) = 40.00
    # tr-2: 1 assignment, 1 completion at 17 <= complete_by 40, 1 dispute at 45:
    #       100*(0.6*2/3 + 0.3*2/3 + 0.1*(1 - 1/2)) = 65.00
    # tr-1 again at 60, the score overridden to 99.5 (published as written)
    expected = [
        row(
            "trader_ratings",
            trader_id="tr-1",
            seq=1,
            as_of=at(50),
            window_days=1,
            assignments=2,
            completed=0,
            on_time=0,
            disputed=0,
            score=Decimal("40.00"),
            published_at=at(50),
            event_id=r1.event_id,
        ),
        row(
            "trader_ratings",
            trader_id="tr-2",
            seq=1,
            as_of=at(50),
            window_days=1,
            assignments=1,
            completed=1,
            on_time=1,
            disputed=1,
            score=Decimal("65.00"),
            published_at=at(50),
            event_id=r2.event_id,
        ),
        row(
            "trader_ratings",
            trader_id="tr-1",
            seq=2,
            as_of=at(60),
            window_days=1,
            assignments=2,
            completed=0,
            on_time=0,
            disputed=0,
            score=Decimal("99.5"),
            published_at=at(60),
            event_id=r3.event_id,
        ),
    ]
    expected.sort(key=lambda r: r[-1])  # the table's key: event_id
    assert orders_rows["trader_ratings"] == expected
    # the rating state itself keeps only the latest publication
    assert orders_run.world.ratings["tr-1"].score == Decimal("99.5")


# ------------------------------------------------------------------------ scenario B: payouts
@pytest.fixture(scope="module")
def payouts_run() -> Platform:
    p = Platform(ids=IdSource(seed=12))
    p.register_client("cl-1", "Merchant", "USDT", 150, at(0))
    p.top_up_client("cl-1", "tu-c1", 1_000 * USDT, at(1))
    p.register_trader("tr-1", "Trader 1", "RUB", "USDT", 1_000_00, 1_000_000_00, 2, 50, at(0))
    p.top_up_trader("tr-1", "tu-t1", 500 * USDT, at(1))
    # a trader payout paid, confirmed, then cancelled: reverted after capture
    p.create_payout("pay-1", "trader:tr-1", 100 * USDT, 1 * USDT, "USDT", "TRC20:T***1", at(10))
    p.mark_payout_paid("pay-1", "BR-1", at(11))
    p.confirm_payout("pay-1", at(12))
    p.cancel_payout("pay-1", "returned by bank", at(13))
    # a client payout confirmed straight from unpaid
    p.create_payout("pay-2", "client:cl-1", 200 * USDT, 2 * USDT, "USDT", "TRC20:T***2", at(20))
    p.confirm_payout("pay-2", at(21))
    # a client payout that failed
    p.create_payout("pay-3", "client:cl-1", 50 * USDT, 1 * USDT, "USDT", "TRC20:T***3", at(30))
    p.fail_payout("pay-3", "bank down", at(31))
    return p


def test_payouts(payouts_run: Platform) -> None:
    rows = project(payouts_run.world)
    assert rows["violations"] == []
    assert rows["payouts"] == [
        row(
            "payouts",
            payout_id="pay-1",
            owner="trader:tr-1",
            amount=100 * USDT,
            fee=1 * USDT,
            currency="USDT",
            destination_masked="TRC20:T***1",
            plan_id="payout:pay-1",
            status="cancelled",
            bank_ref="BR-1",
            created_at=at(10),
            paid_at=at(11),
            confirmed_at=at(12),
            ended_at=at(13),
            cancelled_from="confirmed",
            details="returned by bank",
            version=4,
        ),
        row(
            "payouts",
            payout_id="pay-2",
            owner="client:cl-1",
            amount=200 * USDT,
            fee=2 * USDT,
            currency="USDT",
            destination_masked="TRC20:T***2",
            plan_id="payout:pay-2",
            status="confirmed",
            bank_ref=None,
            created_at=at(20),
            paid_at=None,
            confirmed_at=at(21),
            ended_at=None,
            cancelled_from=None,
            details=None,
            version=2,
        ),
        row(
            "payouts",
            payout_id="pay-3",
            owner="client:cl-1",
            amount=50 * USDT,
            fee=1 * USDT,
            currency="USDT",
            destination_masked="TRC20:T***3",
            plan_id="payout:pay-3",
            status="failed",
            bank_ref=None,
            created_at=at(30),
            paid_at=None,
            confirmed_at=None,
            ended_at=at(31),
            cancelled_from=None,
            details="bank down",
            version=2,
        ),
    ]
    # pay-1 committed, then its revert held and committed at once; pay-3 rolled back
    statuses = {r[0]: (r[1], r[2], r[3], r[4]) for r in rows["ledger_plans"]}
    assert statuses == {
        "topup:tu-c1": ("committed", 1, 0, 1),
        "topup:tu-t1": ("committed", 1, 0, 1),
        "payout:pay-1": ("committed", 1, 0, 2),
        "revert:payout:pay-1": ("committed", 1, 0, 2),
        "payout:pay-2": ("committed", 1, 0, 2),
        "payout:pay-3": ("rolled_back", 1, 0, 2),
    }
    revert = [r for r in rows["ledger_postings"] if r[0] == "revert:payout:pay-1"]
    assert [(r[2], r[3], r[4], r[5], r[9]) for r in revert] == [
        (0, "external:USDT", "trader:tr-1", 100 * USDT, "committed"),
        (1, "platform:revenue", "trader:tr-1", 1 * USDT, "committed"),
    ]
    failed = [r for r in rows["ledger_postings"] if r[0] == "payout:pay-3"]
    assert [(r[3], r[4], r[5], r[9]) for r in failed] == [
        ("client:cl-1", "external:USDT", 50 * USDT, "rolled_back"),
        ("client:cl-1", "platform:revenue", 1 * USDT, "rolled_back"),
    ]
    # client: 1000 - (200 + 2) = 798 (pay-3 rolled back)
    # external: -(1000 + 500) top-ups + 100 (pay-1) - 100 (its revert) + 200 (pay-2) = -1300
    # revenue: 1 (pay-1) - 1 (its revert) + 2 (pay-2) = 2
    # trader: 500 - 101 (pay-1) + 101 (its revert) = 500
    assert rows["account_balances"] == [
        ("client:cl-1", "USDT", 798 * USDT, 0, 798 * USDT),
        ("external:USDT", "USDT", -1_300 * USDT, 0, -1_300 * USDT),
        ("platform:revenue", "USDT", 2 * USDT, 0, 2 * USDT),
        ("trader:tr-1", "USDT", 500 * USDT, 0, 500 * USDT),
    ]
    # trader stream: registered, topped_up, hold 101, capture 101, credited 101 (the revert)
    (tr1,) = rows["traders"]
    t = dict(zip(TABLES["traders"].column_names, tr1, strict=True))
    assert (t["deposit_balance"], t["held"], t["available"], t["open_holds"], t["version"]) == (
        500 * USDT,
        0,
        500 * USDT,
        0,
        5,
    )
    assert (t["online"], t["updated_at"]) == (False, at(13))


def test_open_payout_holds_money() -> None:
    """A payout not yet confirmed: the trader's deposit and the ledger both hold amount + fee."""
    p = Platform(ids=IdSource(seed=13))
    p.register_trader("tr-1", "Trader 1", "RUB", "USDT", 1_000_00, 1_000_000_00, 2, 50, at(0))
    p.top_up_trader("tr-1", "tu-t1", 500 * USDT, at(1))
    p.create_payout("pay-9", "trader:tr-1", 30 * USDT, 1 * USDT, "USDT", "TRC20:T***9", at(2))
    rows = project(p.world)
    t = dict(zip(TABLES["traders"].column_names, rows["traders"][0], strict=True))
    assert (t["deposit_balance"], t["held"], t["available"], t["open_holds"]) == (
        500 * USDT,
        31 * USDT,
        469 * USDT,
        1,
    )
    assert ("trader:tr-1", "USDT", 500 * USDT, 31 * USDT, 469 * USDT) in rows["account_balances"]
    (plan,) = [r for r in rows["ledger_plans"] if r[0] == "payout:pay-9"]
    assert plan[1:5] == ("held", 1, 1, 2)
    assert [r[9] for r in rows["ledger_postings"] if r[0] == "payout:pay-9"] == ["held", "held"]


# --------------------------------------------------------------- scenario C: illegal events
def _event(n: int, stream: str, aggregate_id: str, seq: int, payload: Payload) -> Event:
    return Event(
        event_id=f"ev-{n:03d}",
        position=n,
        stream=stream,
        aggregate_id=aggregate_id,
        seq=seq,
        kind=payload.KIND,
        schema_version=payload.VERSION,
        occurred_at=at(n),
        recorded_at=at(n),
        correlation_id=None,
        causation_id=None,
        payload=payload,
    )


def test_violations_and_rows_of_illegal_events() -> None:
    created = OrderCreated.model_validate(
        {
            "client_id": "cl-1",
            "direction": "payin",
            "money": {"amount": 5_000_00, "currency": "RUB"},
            "client_ref": "X",
            "expires_at": at(60),
            "channel": "card",
        }
    )
    events = [
        _event(
            1,
            "client",
            "cl-1",
            1,
            ClientRegistered(name="M", settlement_currency="USDT", fee_bps=100),
        ),
        _event(2, "payment_order", "po-1", 1, created),
        # accepted while pending: illegal, applied anyway
        _event(3, "payment_order", "po-1", 2, OrderAccepted(trader_id="tr-9", complete_by=at(40))),
        # a fee change before any registration
        _event(4, "client", "cl-ghost", 1, ClientFeeChanged(fee_bps=120)),
        # cl-1 jumps from seq 1 to seq 3
        _event(5, "client", "cl-1", 3, ClientFeeChanged(fee_bps=130)),
    ]
    rows = project(fold(events))
    assert rows["violations"] == [
        (
            "INVALID_TRANSITION",
            "ev-003",
            "payment_order:po-1",
            "payment_order.accepted is not allowed in status pending",
        ),
        (
            "INVALID_TRANSITION",
            "ev-004",
            "client:cl-ghost",
            "client.fee_changed is not allowed in status unregistered",
        ),
        ("SEQUENCE_GAP", "ev-005", "client:cl-1", "seq 2 missing before seq 3"),
    ]
    assert rows["clients"] == [
        row(
            "clients",
            client_id="cl-1",
            registered=True,
            name="M",
            settlement_currency="USDT",
            fee_bps=130,
            registered_at=at(1),
            updated_at=at(5),
            version=3,
        ),
        row(
            "clients",
            client_id="cl-ghost",
            registered=False,
            name=None,
            settlement_currency=None,
            fee_bps=120,
            registered_at=None,
            updated_at=at(4),
            version=1,
        ),
    ]
    (po,) = rows["payment_orders"]
    o = dict(zip(TABLES["payment_orders"].column_names, po, strict=True))
    # the acceptance is a fact: the order is in progress, with no attempt to carry a deadline
    assert (o["status"], o["attempts"], o["attempt"], o["complete_by"]) == (
        "in_progress",
        0,
        None,
        None,
    )
    assert (o["updated_at"], o["version"]) == (at(3), 2)
    assert rows["order_attempts"] == []


def test_a_score_finer_than_the_column_is_refused_not_rounded() -> None:
    """DECIMAL(18,6) holds six places: a score with more is refused by the payload model (the
    decoder quarantines it as out_of_range), one with six places or fewer is kept as published."""
    from pydantic import ValidationError

    from workbench.domain.rating import RatingPublished

    def pub(n: int, score: str) -> Event:
        p = RatingPublished(
            as_of=at(n),
            window_days=1,
            assignments=0,
            completed=0,
            on_time=0,
            disputed=0,
            score=Decimal(score),
        )
        return _event(n, "trader_rating", "tr-1", n, p)

    for finer in ("12.3456785", "1.0000005"):
        with pytest.raises(ValidationError, match="more than 6 decimal places"):
            pub(1, finer)
    rows = project(fold([pub(1, "12.345678"), pub(2, "7.5")]))
    assert [r[8] for r in rows["trader_ratings"]] == [Decimal("12.345678"), Decimal("7.5")]
    _duckdb_round_trip(rows)


def test_empty_world() -> None:
    assert project(World()) == {t.name: [] for t in PROJECTIONS}


# ----------------------------------------------------------------------- the fixture export
@pytest.fixture(scope="module")
def fixture_events() -> list[Event]:
    files = sorted(FIXTURE_EXPORT.glob("date=*/*.parquet"))
    if not files:
        pytest.fail(f"fixture export not found under {FIXTURE_EXPORT}")
    by_id: dict[str, dict[str, Any]] = {}
    for f in files:
        for r in pq.read_table(f, partitioning=None).to_pylist():
            by_id.setdefault(r["event_id"], r)
    return sorted((decode(r) for r in by_id.values()), key=lambda e: e.position)


@pytest.fixture(scope="module")
def fixture_rows(fixture_events: list[Event]) -> dict[str, list[tuple[Any, ...]]]:
    return project(fold(fixture_events))


def _check_value(table: str, column: str, type_: str, value: Any) -> None:
    where = f"{table}.{column} = {value!r}"
    if value is None:
        return
    if type_ == "VARCHAR":
        assert isinstance(value, str), where
    elif type_ in ("BIGINT", "INTEGER"):
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif type_ == "BOOLEAN":
        assert isinstance(value, bool), where
    elif type_ == "TIMESTAMPTZ":
        assert isinstance(value, datetime) and value.utcoffset() == timedelta(0), where
    elif type_ == "DECIMAL(18,6)":
        assert isinstance(value, Decimal) and value.is_finite(), where
        assert -value.as_tuple().exponent <= 6, where  # type: ignore[operator]
    elif type_ == "VARCHAR[]":
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), where
    else:  # pragma: no cover
        pytest.fail(f"unexpected column type {type_} for {table}.{column}")


def _check_shape(rows: dict[str, list[tuple[Any, ...]]]) -> None:
    assert list(rows) == [t.name for t in PROJECTIONS]
    for t in PROJECTIONS:
        for r in rows[t.name]:
            assert isinstance(r, tuple) and len(r) == len(t.columns), (t.name, r)
            for c, v in zip(t.columns, r, strict=True):
                _check_value(t.name, c.name, c.type, v)


_ARROW = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "DECIMAL(18,6)": pa.decimal128(18, 6),
    "VARCHAR[]": pa.list_(pa.string()),
}


def _duckdb_round_trip(rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """Every table stored in DuckDB under the schema's DDL and read back in key order
    (``NULLS FIRST``) is exactly the rows: types DuckDB accepts, in the key's order."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for t in PROJECTIONS:
            con.execute(t.ddl())
            data = rows[t.name]
            cols = list(zip(*data, strict=True)) if data else [() for _ in t.columns]
            arrow = pa.table(
                {
                    c.name: pa.array(list(col), type=_ARROW[c.type])
                    for c, col in zip(t.columns, cols, strict=True)
                }
            )
            con.register("incoming", arrow)
            con.execute(f"INSERT INTO {t.name} SELECT * FROM incoming")
            con.unregister("incoming")
            order = ", ".join(f"{k} NULLS FIRST" for k in t.key)
            back = con.sql(f"SELECT * FROM {t.name} ORDER BY {order}").to_arrow_table()
            assert [tuple(r.values()) for r in back.to_pylist()] == data, t.name
    finally:
        con.close()


def test_scenario_rows_have_the_schema_shape(
    orders_rows: dict[str, list[tuple[Any, ...]]], payouts_run: Platform
) -> None:
    _check_shape(orders_rows)
    _duckdb_round_trip(orders_rows)
    payout_rows = project(payouts_run.world)
    _check_shape(payout_rows)
    _duckdb_round_trip(payout_rows)


def test_fixture_has_no_violations(fixture_rows: dict[str, list[tuple[Any, ...]]]) -> None:
    assert fixture_rows["violations"] == []


def test_fixture_rows_have_the_schema_shape(
    fixture_rows: dict[str, list[tuple[Any, ...]]],
) -> None:
    _check_shape(fixture_rows)
    _duckdb_round_trip(fixture_rows)


def test_fixture_row_counts_follow_the_events(
    fixture_events: list[Event], fixture_rows: dict[str, list[tuple[Any, ...]]]
) -> None:
    """One row per aggregate, per assignment, per posting held, per publication."""
    aggregates = Counter(
        stream for stream, _ in {(e.stream, e.aggregate_id) for e in fixture_events}
    )
    kinds = Counter(e.kind for e in fixture_events)
    held = sum(
        len(e.payload.postings)  # type: ignore[attr-defined]
        for e in fixture_events
        if e.kind == "ledger_plan.batch_held"
    )
    accounts = {
        (p.from_, p.currency)
        for e in fixture_events
        if e.kind == "ledger_plan.batch_held"
        for p in e.payload.postings  # type: ignore[attr-defined]
    } | {
        (p.to, p.currency)
        for e in fixture_events
        if e.kind == "ledger_plan.batch_held"
        for p in e.payload.postings  # type: ignore[attr-defined]
    }
    counts = {name: len(r) for name, r in fixture_rows.items()}
    assert counts["clients"] == aggregates["client"]
    assert counts["traders"] == aggregates["trader"]
    assert counts["payment_orders"] == aggregates["payment_order"]
    assert counts["receipts"] == aggregates["receipt"]
    assert counts["payouts"] == aggregates["payout"]
    assert counts["ledger_plans"] == aggregates["ledger_plan"]
    assert counts["order_attempts"] == kinds["payment_order.assigned"]
    assert counts["ledger_postings"] == held
    assert counts["trader_ratings"] == kinds["trader_rating.published"]
    # every plan in a clean export ends committed or rolled back, or stays held: every account
    # touched by a posting has a balance row once its plan is committed; "to" accounts of plans
    # still held have none yet, so the rows are at most the accounts named
    assert counts["account_balances"] <= len(accounts)
    # the ledger sums to zero in every currency: money only moves between accounts
    by_currency: Counter[str] = Counter()
    for _account, currency, own, _held, _available in fixture_rows["account_balances"]:
        by_currency[currency] += own
    assert all(v == 0 for v in by_currency.values()), by_currency
