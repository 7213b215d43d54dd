"""Processors (commands → catalog events): a small scenario end to end with hand-computed money,
the envelope invariants of what they write, the scheduler rules they enforce, and determinism."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from workbench.domain import catalog
from workbench.domain.events import Event
from workbench.domain.processors import CommandRejected, IdSource, Platform
from workbench.domain.world import fold

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
USDT = 1_000_000  # minor units per USDT


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def scenario(seed: int = 7) -> tuple[Platform, list[list[Event]]]:
    """The brief's scenario; returns the platform and the events of each command."""
    p = Platform(ids=IdSource(seed=seed))
    cmds: list[list[Event]] = []

    def run(events: list[Event]) -> list[Event]:
        cmds.append(events)
        return events

    run(p.register_client("cl-1", "Merchant", "USDT", 150, at(0)))
    run(p.top_up_client("cl-1", "tu-c1", 5_000 * USDT, at(1)))
    run(
        p.register_trader(
            "tr-1", "Trader 1", "RUB", "USDT", 1_000_00, 1_000_000_00, 2, 50, at(2), version=1
        )
    )
    run(
        p.register_trader(
            "tr-2", "Trader 2", "RUB", "USDT", 1_000_00, 1_000_000_00, 2, 50, at(2), country="RU"
        )
    )
    run(p.top_up_trader("tr-1", "tu-t1", 2_000 * USDT, at(3)))
    run(p.top_up_trader("tr-2", "tu-t2", 2_000 * USDT, at(3)))
    run(p.go_online("tr-1", at(4)))
    run(p.go_online("tr-2", at(4)))
    # payin: 92 350.00 RUB at 92.35 = 1000 USDT; fee 1.5% = 15; reward 0.5% = 5
    run(p.create_order("po-1", "cl-1", "payin", 92_350_00, "RUB", "INV-1", at(5), version=1))
    # payout: 46 175.00 RUB at 92.35 = 500 USDT; fee 7.5; reward 2.5
    run(p.create_order("po-2", "cl-1", "payout", 46_175_00, "RUB", "INV-2", at(5), channel="sbp"))
    run(p.assign("po-1", "tr-1", "92.35", at(6)))
    run(p.accept("po-1", at(7)))
    run(p.upload_receipt("rc-1", "po-1", 92_350_00, "RUB", at(8), "Bank", "a" * 64, at(9)))
    run(p.analyze_receipt("rc-1", 92_350_00, at(8), Decimal("0.95"), [], at(10)))
    run(p.approve_receipt("rc-1", "auto", at(10)))
    run(p.complete("po-1", at(11)))
    run(p.assign("po-2", "tr-2", "92.35", at(12)))
    run(p.accept("po-2", at(13)))
    run(p.upload_receipt("rc-2", "po-2", 46_175_00, "RUB", at(14), "Bank", "b" * 64, at(15)))
    run(p.analyze_receipt("rc-2", 46_175_00, at(14), Decimal("0.8"), ["ok"], at(16)))
    run(p.approve_receipt("rc-2", "reviewer", at(17)))
    run(p.complete("po-2", at(18)))
    run(p.dispute("po-1", "customer says unpaid", at(20)))
    run(p.resolve_dispute("po-1", "reversed", "refunded", at(25)))
    # a trader payout and a client payout, each confirmed and then cancelled (reverted)
    run(
        p.create_payout("pay-1", "trader:tr-2", 100 * USDT, 1 * USDT, "USDT", "TRC20:T***1", at(30))
    )
    run(p.confirm_payout("pay-1", at(31)))
    run(p.cancel_payout("pay-1", "returned by bank", at(32)))
    run(
        p.create_payout("pay-2", "client:cl-1", 200 * USDT, 2 * USDT, "USDT", "TRC20:T***2", at(30))
    )
    run(p.mark_payout_paid("pay-2", "BR-2", at(31)))
    run(p.confirm_payout("pay-2", at(32)))
    run(p.cancel_payout("pay-2", "chargeback", at(33)))
    run(p.publish_rating("tr-1", at(40), 1, at(40)))
    return p, cmds


@pytest.fixture(scope="module")
def run() -> tuple[Platform, list[list[Event]]]:
    return scenario()


def test_scenario_has_no_violation(run: tuple[Platform, list[list[Event]]]) -> None:
    p, _ = run
    assert [str(v) for v in p.world.violations] == []
    assert p.world.events_applied == len(p.log)


def test_scenario_states(run: tuple[Platform, list[list[Event]]]) -> None:
    p, _ = run
    w = p.world
    o1, o2 = w.orders["po-1"], w.orders["po-2"]
    assert (o1.status, o1.dispute_outcome, o1.channel) == ("cancelled", "reversed", "card")
    assert (o2.status, o2.channel) == ("completed", "sbp")
    a1 = o1.attempts[0]
    assert (a1.settlement_amount, a1.platform_fee, a1.trader_reward) == (
        1_000 * USDT,
        15 * USDT,
        5 * USDT,
    )
    a2 = o2.attempts[0]
    assert (a2.settlement_amount, a2.platform_fee, a2.trader_reward) == (
        500 * USDT,
        7_500_000,
        2_500_000,
    )
    assert w.receipts["rc-1"].status == "approved" and w.receipts["rc-2"].status == "approved"
    assert (
        w.payouts["pay-1"].status == "cancelled"
        and w.payouts["pay-1"].cancelled_from == "confirmed"
    )
    assert (
        w.payouts["pay-2"].status == "cancelled"
        and w.payouts["pay-2"].cancelled_from == "confirmed"
    )
    assert w.traders["tr-1"].country is None and w.traders["tr-2"].country == "RU"
    plans = {pid: s.status for pid, s in w.plans.items()}
    assert plans == {
        "topup:tu-c1": "committed",
        "topup:tu-t1": "committed",
        "topup:tu-t2": "committed",
        "order:po-1:1": "committed",
        "order:po-2:1": "committed",
        "reverse:order:po-1": "committed",
        "payout:pay-1": "committed",
        "revert:payout:pay-1": "committed",
        "payout:pay-2": "committed",
        "revert:payout:pay-2": "committed",
    }


def test_scenario_money_by_hand(run: tuple[Platform, list[list[Event]]]) -> None:
    p, _ = run
    w = p.world
    # tr-1: 2000 top-up, 995 captured for po-1, 995 credited back by the reversal
    # tr-2: 2000 top-up, 502.5 credited for po-2; pay-1 (101) captured then credited back
    want_traders = {"tr-1": 2_000 * USDT, "tr-2": 2_502_500_000}
    for tid, balance in want_traders.items():
        t = w.traders[tid]
        acct = w.book.get(f"trader:{tid}", "USDT")
        assert (t.balance, t.held) == (balance, 0), tid
        assert (acct.own, acct.held) == (t.balance, t.held), tid  # ledger own == trader stream
    # cl-1: 5000 + 985 (po-1) - 985 (reversal) - 502.5 - 5 (po-2); pay-2 reverted
    assert w.book.get("client:cl-1", "USDT").own == 4_492_500_000
    # revenue: 10 (po-1) - 10 (reversal) + 5 (po-2); payout fees reverted
    assert w.book.get("platform:revenue", "USDT").own == 5 * USDT
    assert sum(b.own for b in w.book.accounts.values()) == 0


def test_scenario_rating(run: tuple[Platform, list[list[Event]]]) -> None:
    p, _ = run
    r = p.world.ratings["tr-1"]
    # tr-1 in (at(40) - 1 day, at(40)]: 1 assignment, 1 completion on time, 1 dispute
    # 100 * (0.6*2/3 + 0.3*2/3 + 0.1*(1 - 1/2)) = 40 + 20 + 5
    assert r.counts is not None
    assert (r.counts.assignments, r.counts.completed, r.counts.on_time, r.counts.disputed) == (
        1,
        1,
        1,
        1,
    )
    assert r.score == Decimal("65.00")
    assert p.world.score("tr-1") == Decimal("65.00")
    assert p.world.score("tr-2") == Decimal("55.00")


def test_scenario_trader_stream_kinds(run: tuple[Platform, list[list[Event]]]) -> None:
    p, _ = run
    moves = [
        (e.aggregate_id, e.kind.split(".")[1], e.payload.ref, e.payload.amount)  # type: ignore[attr-defined]
        for e in p.log
        if e.stream == "trader" and hasattr(e.payload, "ref")
    ]
    assert moves == [
        ("tr-1", "deposit_topped_up", "topup:tu-t1", 2_000 * USDT),
        ("tr-2", "deposit_topped_up", "topup:tu-t2", 2_000 * USDT),
        ("tr-1", "hold_placed", "order:po-1:1", 995 * USDT),
        ("tr-1", "hold_captured", "order:po-1:1", 995 * USDT),
        ("tr-2", "deposit_credited", "order:po-2:1", 502_500_000),
        ("tr-1", "deposit_credited", "reverse:order:po-1", 995 * USDT),
        ("tr-2", "hold_placed", "payout:pay-1", 101 * USDT),
        ("tr-2", "hold_captured", "payout:pay-1", 101 * USDT),
        ("tr-2", "deposit_credited", "revert:payout:pay-1", 101 * USDT),
    ]


def test_envelope_invariants(run: tuple[Platform, list[list[Event]]]) -> None:
    p, cmds = run
    assert [e for c in cmds for e in c] == p.log
    positions = [e.position for e in p.log]
    assert all(a < b for a, b in itertools.pairwise(positions))
    seqs: dict[tuple[str, str], list[int]] = defaultdict(list)
    for e in p.log:
        seqs[(e.stream, e.aggregate_id)].append(e.seq)
        assert e.recorded_at >= e.occurred_at
        assert e.kind.startswith(e.stream + ".")
    for key, s in seqs.items():
        assert s == list(range(1, len(s) + 1)), key
    assert len({e.event_id for e in p.log}) == len(p.log)


def test_causation_chains(run: tuple[Platform, list[list[Event]]]) -> None:
    _, cmds = run
    for events in cmds:
        assert events[0].causation_id is None
        for prev, e in itertools.pairwise(events):
            assert e.causation_id == prev.event_id, (prev.kind, e.kind)
            assert e.recorded_at >= prev.recorded_at


def test_correlation_ids(run: tuple[Platform, list[list[Event]]]) -> None:
    p, _ = run
    for e in p.log:
        if e.stream in ("payment_order", "receipt"):
            assert e.correlation_id is not None and e.correlation_id.startswith("order:po-")
        if e.stream == "payout":
            assert e.correlation_id == f"payout:{e.aggregate_id}"
        if e.stream == "ledger_plan" and e.aggregate_id.startswith("order:"):
            assert e.correlation_id == ":".join(e.aggregate_id.split(":")[:2])


def test_log_round_trips_through_rows_and_replays(run: tuple[Platform, list[list[Event]]]) -> None:
    p, _ = run
    decoded = [catalog.decode(e.to_row()) for e in p.log]
    assert decoded == [catalog.upcast_event(e) for e in p.log]
    assert {(e.kind, e.schema_version) for e in decoded} >= {
        ("trader.registered", 1),
        ("payment_order.created", 1),
    }
    w = fold(decoded)
    assert w.violations == []
    assert w.book.accounts == p.world.book.accounts


def test_same_seed_same_log() -> None:
    a, _ = scenario(seed=11)
    b, _ = scenario(seed=11)
    assert a.log == b.log
    c, _ = scenario(seed=12)
    assert [e.event_id for e in c.log] != [e.event_id for e in a.log]
    assert [(e.kind, e.aggregate_id, e.payload) for e in c.log] == [
        (e.kind, e.aggregate_id, e.payload) for e in a.log
    ]


# ------------------------------------------------------------------ scheduler rules enforced
def base(
    *, deposit: int = 2_000 * USDT, client_balance: int = 5_000 * USDT, max_active: int = 2
) -> Platform:
    p = Platform(ids=IdSource(seed=1))
    p.register_client("cl-1", "M", "USDT", 150, at(0))
    if client_balance:
        p.top_up_client("cl-1", "tu-c", client_balance, at(0))
    p.register_trader("tr-1", "T", "RUB", "USDT", 1_000_00, 100_000_00, max_active, 50, at(0))
    if deposit:
        p.top_up_trader("tr-1", "tu-t", deposit, at(0))
    p.go_online("tr-1", at(1))
    return p


def assert_rejected(p: Platform, order_id: str, rule: str) -> None:
    before = len(p.log)
    status = p.world.orders[order_id].status
    with pytest.raises(CommandRejected) as info:
        p.assign(order_id, "tr-1", "92.35", at(10))
    assert info.value.rules == (rule,), info.value.rules
    assert rule in str(info.value)
    assert len(p.log) == before and p.world.orders[order_id].status == status


def test_assignment_allowed_in_the_base_setup() -> None:
    p = base()
    p.create_order("po", "cl-1", "payin", 92_350_00, "RUB", "r", at(2))
    events = p.assign("po", "tr-1", "92.35", at(3))
    assert events[0].kind == "payment_order.assigned" and p.world.violations == []


def test_rejected_offline() -> None:
    p = base()
    p.go_offline("tr-1", at(2))
    p.create_order("po", "cl-1", "payin", 92_350_00, "RUB", "r", at(2))
    assert_rejected(p, "po", "online")


def test_rejected_blocked() -> None:
    p = base()
    p.block_trader("tr-1", "fraud", at(2))
    p.create_order("po", "cl-1", "payin", 92_350_00, "RUB", "r", at(2))
    assert_rejected(p, "po", "not_blocked")


def test_rejected_wrong_currency() -> None:
    p = base()
    p.create_order("po", "cl-1", "payin", 92_350_00, "KZT", "r", at(2))
    assert_rejected(p, "po", "currency")


@pytest.mark.parametrize("amount", [1_000_00 - 1, 100_000_00 + 1])
def test_rejected_amount_outside_limits(amount: int) -> None:
    p = base()
    p.create_order("po", "cl-1", "payin", amount, "RUB", "r", at(2))
    assert_rejected(p, "po", "amount_limits")


@pytest.mark.parametrize("amount", [1_000_00, 100_000_00])
def test_amount_limits_are_inclusive(amount: int) -> None:
    p = base()
    p.create_order("po", "cl-1", "payin", amount, "RUB", "r", at(2))
    p.assign("po", "tr-1", "92.35", at(3))


def test_rejected_capacity() -> None:
    p = base(max_active=1)
    p.create_order("po-a", "cl-1", "payin", 9_235_00, "RUB", "r", at(2))
    p.create_order("po", "cl-1", "payin", 9_235_00, "RUB", "r", at(2))
    p.assign("po-a", "tr-1", "92.35", at(3))
    assert_rejected(p, "po", "capacity")
    # an order in review still counts; a completed one no longer does
    p.accept("po-a", at(4))
    p.start_review("po-a", "manual", at(5))
    assert_rejected(p, "po", "capacity")
    p.complete("po-a", at(6))
    p.assign("po", "tr-1", "92.35", at(7))


def test_rejected_assigned_before() -> None:
    p = base()
    p.create_order("po", "cl-1", "payin", 9_235_00, "RUB", "r", at(2))
    p.assign("po", "tr-1", "92.35", at(3))
    p.decline("po", "busy", at(4))
    assert p.world.orders["po"].status == "pending"
    assert_rejected(p, "po", "not_assigned_before")


def test_rejected_insufficient_deposit_for_payin() -> None:
    # 9 235.00 RUB = 100 USDT; hold = 100 - 0.5 reward = 99.5 USDT
    p = base(deposit=99_499_999)
    p.create_order("po", "cl-1", "payin", 9_235_00, "RUB", "r", at(2))
    assert_rejected(p, "po", "trader_deposit")
    q = base(deposit=99_500_000)  # exactly enough
    q.create_order("po", "cl-1", "payin", 9_235_00, "RUB", "r", at(2))
    q.assign("po", "tr-1", "92.35", at(3))
    assert q.world.traders["tr-1"].available == 0


def test_rejected_insufficient_client_balance_for_payout() -> None:
    # 100 USDT settlement + 1.5 fee = 101.5 USDT needed from the client's available balance
    p = base(client_balance=101_499_999)
    p.create_order("po", "cl-1", "payout", 9_235_00, "RUB", "r", at(2))
    assert_rejected(p, "po", "client_balance")
    q = base(client_balance=101_500_000)
    q.create_order("po", "cl-1", "payout", 9_235_00, "RUB", "r", at(2))
    q.assign("po", "tr-1", "92.35", at(3))
    assert q.world.violations == []


def test_payout_deposit_is_not_needed_and_payin_balance_is_not_needed() -> None:
    p = base(deposit=0, client_balance=0)
    p.create_order("po-out", "cl-1", "payout", 9_235_00, "RUB", "r", at(2))
    assert_rejected(p, "po-out", "client_balance")
    p.create_order("po-in", "cl-1", "payin", 9_235_00, "RUB", "r", at(2))
    assert_rejected(p, "po-in", "trader_deposit")


def test_several_rules_are_all_named() -> None:
    p = base(deposit=0)
    p.go_offline("tr-1", at(2))
    p.block_trader("tr-1", "x", at(2))
    p.create_order("po", "cl-1", "payin", 1, "KZT", "r", at(2))
    with pytest.raises(CommandRejected) as info:
        p.assign("po", "tr-1", "92.35", at(3))
    assert set(info.value.rules) == {
        "not_blocked",
        "online",
        "currency",
        "amount_limits",
        "trader_deposit",
    }


def test_payout_order_cannot_complete_without_approved_receipt() -> None:
    p = base()
    p.create_order("po", "cl-1", "payout", 9_235_00, "RUB", "r", at(2))
    p.assign("po", "tr-1", "92.35", at(3))
    p.accept("po", at(4))
    with pytest.raises(CommandRejected) as info:
        p.complete("po", at(5))
    assert "receipt_missing" in info.value.rules
    p.upload_receipt("rc", "po", 9_235_01, "RUB", at(5), "B", "c" * 64, at(5))  # wrong amount
    p.analyze_receipt("rc", 9_235_01, at(5), Decimal("0.99"), [], at(6))
    assert p.world.orders["po"].status == "in_review"  # amount differs from the order's
    p.approve_receipt("rc", "reviewer", at(7))
    with pytest.raises(CommandRejected):
        p.complete("po", at(8))


def test_review_started_by_analysis_is_caused_by_it() -> None:
    p = base()
    p.create_order("po", "cl-1", "payin", 9_235_00, "RUB", "r", at(2))
    p.assign("po", "tr-1", "92.35", at(3))
    p.accept("po", at(4))
    p.upload_receipt("rc", "po", 9_235_00, "RUB", at(5), "B", "d" * 64, at(5))
    events = p.analyze_receipt("rc", 9_235_00, at(5), Decimal("0.5"), ["blurry"], at(6))
    assert [e.kind for e in events] == ["receipt.analyzed", "payment_order.review_started"]
    assert events[1].causation_id == events[0].event_id
