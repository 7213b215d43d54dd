"""Appliers per stream (catalog section 3): states after legal events, computed by hand from the
catalog, and illegal events recorded as violations (never raised), with the event still applied."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from workbench.domain import client, ledger, payment_order, payout, rating, receipt, trader
from workbench.domain.aggregate import AggregateState
from workbench.domain.events import Event, Payload
from workbench.domain.violations import (
    INVALID_TRANSITION,
    LEDGER_PLAN_MISMATCH,
    NEGATIVE_AVAILABLE,
    TRADER_LEDGER_DRIFT,
)
from workbench.domain.world import World

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)  # the same origin as the conftest factory
EventFactory = Callable[..., Event]  # the ``make_event`` fixture of conftest


def new_violations(before: AggregateState | None, after: AggregateState) -> list[Any]:
    return list(after.violations[len(before.violations) if before else 0 :])


def assert_flagged(
    before: AggregateState | None, after: AggregateState, event: Event, code: str
) -> None:
    """Exactly one new violation, with ``code``, naming ``event``; and the event was applied."""
    new = new_violations(before, after)
    assert [(v.code, v.event_id) for v in new] == [(code, event.event_id)], new
    assert new[0].subject == f"{event.stream}:{event.aggregate_id}"
    assert after.version == event.seq


def assert_clean(before: AggregateState | None, after: AggregateState, event: Event) -> None:
    assert new_violations(before, after) == []
    assert after.version == event.seq


def fold(apply: Any, events: list[Event], state: Any = None) -> Any:
    for e in events:
        before = state
        state = apply(state, e)
        assert state.version == e.seq
        assert before is None or len(state.violations) >= len(before.violations)
    return state


# ------------------------------------------------------------------------------- client
def test_client_registered_and_fee_changed(make_event: EventFactory) -> None:
    e1 = make_event(
        "client", "cl-1", client.ClientRegistered(name="M", settlement_currency="USDT", fee_bps=150)
    )
    s1 = client.apply(None, e1)
    assert_clean(None, s1, e1)
    assert (s1.registered, s1.name, s1.settlement_currency, s1.fee_bps) == (True, "M", "USDT", 150)
    e2 = make_event("client", "cl-1", client.ClientFeeChanged(fee_bps=90))
    s2 = client.apply(s1, e2)
    assert_clean(s1, s2, e2)
    assert s2.fee_bps == 90 and s2.version == 2


def test_client_illegal_events_are_recorded(make_event: EventFactory) -> None:
    e1 = make_event("client", "cl-1", client.ClientFeeChanged(fee_bps=90))
    s1 = client.apply(None, e1)
    assert_flagged(None, s1, e1, INVALID_TRANSITION)
    assert s1.fee_bps == 90
    e2 = make_event(
        "client", "cl-1", client.ClientRegistered(name="M", settlement_currency="USDT", fee_bps=150)
    )
    s2 = client.apply(s1, e2)
    assert_clean(s1, s2, e2)
    e3 = make_event(
        "client", "cl-1", client.ClientRegistered(name="N", settlement_currency="USDT", fee_bps=10)
    )
    s3 = client.apply(s2, e3)
    assert_flagged(s2, s3, e3, INVALID_TRANSITION)
    assert s3.name == "N" and s3.fee_bps == 10


# ------------------------------------------------------------------------------- trader
def registered(version: int = 2) -> Payload:
    if version == 1:
        return trader.TraderRegisteredV1(
            name="T",
            fiat_currency="RUB",
            settlement_currency="USDT",
            min_amount=100,
            max_amount=1000,
            max_active_orders=2,
            reward_bps=50,
        )
    return trader.TraderRegistered.model_validate(
        {
            "name": "T",
            "fiat_currency": "RUB",
            "settlement_currency": "USDT",
            "limits": {"min_amount": 100, "max_amount": 1000, "max_active_orders": 2},
            "reward_bps": 50,
            "country": "RU",
        }
    )


def test_trader_registration_limits_and_presence(make_event: EventFactory) -> None:
    events = [make_event("trader", "tr-1", registered())]
    s = fold(trader.apply, events)
    assert (s.registered, s.fiat_currency, s.settlement_currency, s.country) == (
        True,
        "RUB",
        "USDT",
        "RU",
    )
    assert (s.min_amount, s.max_amount, s.max_active_orders, s.reward_bps) == (100, 1000, 2, 50)
    assert (s.online, s.blocked, s.balance, s.held, s.available) == (False, False, 0, 0, 0)
    steps: list[tuple[Payload, dict[str, Any]]] = [
        (
            trader.TraderLimitsChanged(min_amount=5, max_amount=50, max_active_orders=7),
            {"min_amount": 5, "max_amount": 50, "max_active_orders": 7},
        ),
        (trader.TraderWentOnline(), {"online": True}),
        (trader.TraderBlocked(reason="r"), {"blocked": True, "online": True}),
        (trader.TraderUnblocked(), {"blocked": False}),
        (trader.TraderWentOffline(), {"online": False}),
    ]
    for payload, expected in steps:
        e = make_event("trader", "tr-1", payload)
        after = trader.apply(s, e)
        assert_clean(s, after, e)
        for name, value in expected.items():
            assert getattr(after, name) == value, (payload.KIND, name)
        s = after


def test_trader_deposit_balance_held_available(make_event: EventFactory) -> None:
    s = trader.apply(None, make_event("trader", "tr-1", registered()))
    # (payload, balance, held, available) after it, computed from the catalog by hand
    steps: list[tuple[Payload, int, int, int]] = [
        (trader.DepositToppedUp(ref="topup:1", amount=1000), 1000, 0, 1000),
        (trader.HoldPlaced(ref="order:o1:1", amount=300), 1000, 300, 700),
        (trader.HoldPlaced(ref="payout:p1", amount=200), 1000, 500, 500),
        (trader.HoldCaptured(ref="order:o1:1", amount=300), 700, 200, 500),
        (trader.HoldReleased(ref="payout:p1", amount=200), 700, 0, 700),
        (trader.DepositCredited(ref="order:o2:1", amount=55), 755, 0, 755),
        (trader.DepositDebited(ref="reverse:order:o2", amount=105), 650, 0, 650),
        (trader.HoldPlaced(ref="payout:p2", amount=650), 650, 650, 0),
        (trader.HoldCaptured(ref="payout:p2", amount=650), 0, 0, 0),
        (trader.DepositCredited(ref="revert:payout:p2", amount=650), 650, 0, 650),
    ]
    for payload, balance, held, available in steps:
        e = make_event("trader", "tr-1", payload)
        after = trader.apply(s, e)
        assert_clean(s, after, e)
        assert (after.balance, after.held, after.available) == (balance, held, available), payload
        s = after
    assert dict(s.holds) == {}


def test_trader_v1_registration_after_upcast(make_event: EventFactory) -> None:
    from workbench.domain.catalog import upcast

    e = make_event("trader", "tr-1", upcast(registered(1)))
    s = trader.apply(None, e)
    assert s.country is None and (s.min_amount, s.max_amount, s.max_active_orders) == (100, 1000, 2)


def test_trader_event_before_registration(make_event: EventFactory) -> None:
    e = make_event("trader", "tr-9", trader.DepositToppedUp(ref="topup:1", amount=10))
    s = trader.apply(None, e)
    assert_flagged(None, s, e, INVALID_TRANSITION)
    assert s.balance == 10 and not s.registered


def test_trader_hold_misuse(make_event: EventFactory) -> None:
    s = fold(
        trader.apply,
        [
            make_event("trader", "tr-1", registered()),
            make_event("trader", "tr-1", trader.DepositToppedUp(ref="topup:1", amount=1000)),
            make_event("trader", "tr-1", trader.HoldPlaced(ref="a", amount=100)),
        ],
    )
    assert s.violations == ()
    # release of a ref that has no hold
    e = make_event("trader", "tr-1", trader.HoldReleased(ref="nope", amount=5))
    after = trader.apply(s, e)
    assert_flagged(s, after, e, INVALID_TRANSITION)
    assert after.held == 100
    s = after
    # capture of a ref that has no hold still takes the money off the balance
    e = make_event("trader", "tr-1", trader.HoldCaptured(ref="ghost", amount=40))
    after = trader.apply(s, e)
    assert_flagged(s, after, e, INVALID_TRANSITION)
    assert (after.balance, after.held) == (960, 100)
    s = after
    # capture of a different amount than held
    e = make_event("trader", "tr-1", trader.HoldCaptured(ref="a", amount=90))
    after = trader.apply(s, e)
    assert_flagged(s, after, e, TRADER_LEDGER_DRIFT)
    assert (after.balance, after.held) == (870, 0)
    s = after
    # a second hold on an open ref
    e1 = make_event("trader", "tr-1", trader.HoldPlaced(ref="b", amount=10))
    s1 = trader.apply(s, e1)
    assert_clean(s, s1, e1)
    e2 = make_event("trader", "tr-1", trader.HoldPlaced(ref="b", amount=20))
    s2 = trader.apply(s1, e2)
    assert_flagged(s1, s2, e2, INVALID_TRANSITION)


def test_trader_block_state_misuse(make_event: EventFactory) -> None:
    s = trader.apply(None, make_event("trader", "tr-1", registered()))
    e = make_event("trader", "tr-1", trader.TraderUnblocked())
    after = trader.apply(s, e)
    assert_flagged(s, after, e, INVALID_TRANSITION)
    s = trader.apply(after, make_event("trader", "tr-1", trader.TraderBlocked(reason="a")))
    e = make_event("trader", "tr-1", trader.TraderBlocked(reason="b"))
    after = trader.apply(s, e)
    assert_flagged(s, after, e, INVALID_TRANSITION)
    assert after.blocked
    e = make_event("trader", "tr-1", registered())
    again = trader.apply(after, e)
    assert_flagged(after, again, e, INVALID_TRANSITION)


# ------------------------------------------------------------------------ payment_order
def created(direction: str = "payin", amount: int = 10_000) -> Payload:
    return payment_order.OrderCreated.model_validate(
        {
            "client_id": "cl-1",
            "direction": direction,
            "money": {"amount": amount, "currency": "RUB"},
            "client_ref": "INV",
            "expires_at": T0 + timedelta(hours=1),
            "channel": "sbp",
        }
    )


def assigned(attempt: int, trader_id: str = "tr-1", accept_by: datetime | None = None) -> Payload:
    return payment_order.OrderAssigned(
        trader_id=trader_id,
        attempt=attempt,
        rate="92.35",
        settlement_currency="USDT",
        settlement_amount=1_000_000 + attempt,
        platform_fee=15_000,
        trader_reward=5_000,
        accept_by=accept_by or T0 + timedelta(minutes=2),
    )


def test_payment_order_full_life(make_event: EventFactory) -> None:
    at = [T0 + timedelta(minutes=i) for i in range(20)]
    o = "po-1"
    s: payment_order.PaymentOrderState | None = None

    def step(payload: Payload, i: int, status: str) -> payment_order.PaymentOrderState:
        nonlocal s
        e = make_event("payment_order", o, payload, at[i])
        after = payment_order.apply(s, e)
        assert_clean(s, after, e)
        assert after.status == status, payload.KIND
        s = after
        return after

    st = step(created(), 0, "pending")
    assert (st.client_id, st.direction, st.amount, st.currency, st.channel) == (
        "cl-1",
        "payin",
        10_000,
        "RUB",
        "sbp",
    )
    assert st.created_at == at[0] and st.expires_at == T0 + timedelta(hours=1)
    st = step(assigned(1, "tr-1"), 1, "assigned")
    assert len(st.attempts) == 1 and st.open_attempt is not None
    a1 = st.attempts[0]
    assert (
        a1.attempt,
        a1.trader_id,
        a1.rate,
        a1.settlement_amount,
        a1.platform_fee,
        a1.trader_reward,
    ) == (1, "tr-1", "92.35", 1_000_001, 15_000, 5_000)
    assert a1.assigned_at == at[1] and a1.outcome is None
    st = step(payment_order.AssignmentDeclined(trader_id="tr-1", reason="busy"), 2, "pending")
    assert st.attempts[0].outcome == "declined" and st.attempts[0].ended_at == at[2]
    assert st.open_attempt is None
    st = step(assigned(2, "tr-2"), 3, "assigned")
    st = step(payment_order.AssignmentExpired(trader_id="tr-2"), 4, "pending")
    assert [a.outcome for a in st.attempts] == ["declined", "expired"]
    st = step(assigned(3, "tr-3"), 5, "assigned")
    assert st.trader_id == "tr-3" and st.traders_tried == {"tr-1", "tr-2", "tr-3"}
    complete_by = at[5] + timedelta(minutes=30)
    st = step(
        payment_order.OrderAccepted(trader_id="tr-3", complete_by=complete_by), 6, "in_progress"
    )
    assert st.attempts[2].accepted_at == at[6] and st.attempts[2].complete_by == complete_by
    st = step(payment_order.ReceiptAttached(receipt_id="rc-1"), 7, "in_progress")
    st = step(payment_order.ReviewStarted(reason="amount_mismatch"), 8, "in_review")
    assert st.review_reason == "amount_mismatch" and st.review_started_at == at[8]
    st = step(payment_order.ReceiptAttached(receipt_id="rc-2"), 9, "in_review")
    assert st.receipt_ids == ("rc-1", "rc-2")
    st = step(payment_order.OrderCompleted(trader_id="tr-3", paid_amount=9_999), 10, "completed")
    assert (st.completed_by, st.paid_amount, st.completed_at) == ("tr-3", 9_999, at[10])
    assert [a.outcome for a in st.attempts] == ["declined", "expired", "completed"]
    assert st.attempts[2].ended_at == at[10]
    st = step(payment_order.OrderDisputed(reason="claim"), 11, "disputed")
    assert (st.status_before_dispute, st.dispute_reason, st.disputed_at) == (
        "completed",
        "claim",
        at[11],
    )
    st = step(payment_order.DisputeResolved(outcome="reversed", note="n"), 12, "cancelled")
    assert st.dispute_outcome == "reversed" and st.resolved_at == at[12]
    st = step(payment_order.OrderDisputed(reason="again"), 13, "disputed")
    assert st.status_before_dispute == "cancelled"
    st = step(payment_order.DisputeResolved(outcome="upheld", note="n"), 14, "completed")
    assert st.version == 15


def test_payment_order_cancel_ends_the_open_attempt(make_event: EventFactory) -> None:
    s = fold(
        payment_order.apply,
        [
            make_event("payment_order", "po-1", created()),
            make_event("payment_order", "po-1", assigned(1)),
            make_event("payment_order", "po-1", payment_order.OrderCancelled(reason="expired")),
        ],
    )
    assert s.violations == ()
    assert s.status == "cancelled" and s.cancel_reason == "expired"
    assert [a.outcome for a in s.attempts] == ["cancelled"]


def test_payment_order_completed_while_pending(make_event: EventFactory) -> None:
    s = payment_order.apply(None, make_event("payment_order", "po-1", created()))
    e = make_event(
        "payment_order", "po-1", payment_order.OrderCompleted(trader_id="tr-1", paid_amount=1)
    )
    after = payment_order.apply(s, e)
    assert_flagged(s, after, e, INVALID_TRANSITION)
    assert after.status == "completed" and after.completed_by == "tr-1"


def test_payment_order_accepted_twice(make_event: EventFactory) -> None:
    s = fold(
        payment_order.apply,
        [
            make_event("payment_order", "po-1", created()),
            make_event("payment_order", "po-1", assigned(1)),
            make_event(
                "payment_order",
                "po-1",
                payment_order.OrderAccepted(trader_id="tr-1", complete_by=T0),
            ),
        ],
    )
    e = make_event(
        "payment_order", "po-1", payment_order.OrderAccepted(trader_id="tr-1", complete_by=T0)
    )
    after = payment_order.apply(s, e)
    assert_flagged(s, after, e, INVALID_TRANSITION)
    assert after.status == "in_progress"


def test_payment_order_event_before_created(make_event: EventFactory) -> None:
    e = make_event("payment_order", "po-1", payment_order.OrderCancelled(reason="no_trader"))
    s = payment_order.apply(None, e)
    assert_flagged(None, s, e, INVALID_TRANSITION)
    assert s.status == "cancelled"
    e2 = make_event("payment_order", "po-1", created())
    s2 = payment_order.apply(s, e2)
    assert_flagged(s, s2, e2, INVALID_TRANSITION)  # created is legal only first
    assert s2.status == "pending"


def test_payment_order_wrong_attempt_number(make_event: EventFactory) -> None:
    s = payment_order.apply(None, make_event("payment_order", "po-1", created()))
    e = make_event("payment_order", "po-1", assigned(2))
    after = payment_order.apply(s, e)
    assert_flagged(s, after, e, INVALID_TRANSITION)
    assert after.status == "assigned" and after.attempts[-1].attempt == 2


def test_payment_order_assigned_while_assigned(make_event: EventFactory) -> None:
    """A second assignment without the first ending: flagged, applied, never a crash."""
    s = fold(
        payment_order.apply,
        [
            make_event("payment_order", "po-1", created()),
            make_event("payment_order", "po-1", assigned(1)),
        ],
    )
    e = make_event("payment_order", "po-1", assigned(2, "tr-2"))
    after = payment_order.apply(s, e)
    assert_flagged(s, after, e, INVALID_TRANSITION)
    assert after.status == "assigned"
    assert [a.trader_id for a in after.attempts] == ["tr-1", "tr-2"]
    assert after.attempts[0].outcome is not None  # the first attempt is no longer the open one
    assert after.open_attempt is not None and after.open_attempt.trader_id == "tr-2"


def test_payment_order_disputed_while_in_progress(make_event: EventFactory) -> None:
    s = fold(
        payment_order.apply,
        [
            make_event("payment_order", "po-1", created()),
            make_event("payment_order", "po-1", assigned(1)),
            make_event(
                "payment_order",
                "po-1",
                payment_order.OrderAccepted(trader_id="tr-1", complete_by=T0),
            ),
        ],
    )
    e = make_event("payment_order", "po-1", payment_order.OrderDisputed(reason="x"))
    after = payment_order.apply(s, e)
    assert_flagged(s, after, e, INVALID_TRANSITION)
    assert after.status == "disputed"


# ------------------------------------------------------------------------------ receipt
def uploaded() -> Payload:
    return receipt.ReceiptUploaded(
        order_id="po-1",
        trader_id="tr-1",
        amount=10_000,
        currency="RUB",
        paid_at=T0,
        bank="B",
        file_sha256="f" * 64,
    )


def analyzed(conf: str = "0.93") -> Payload:
    return receipt.ReceiptAnalyzed(
        extracted_amount=10_000, extracted_paid_at=T0, confidence=Decimal(conf), flags=["x"]
    )


def test_receipt_statuses(make_event: EventFactory) -> None:
    e1 = make_event("receipt", "rc-1", uploaded())
    s1 = receipt.apply(None, e1)
    assert_clean(None, s1, e1)
    assert (s1.status, s1.order_id, s1.amount, s1.currency, s1.file_sha256) == (
        "uploaded",
        "po-1",
        10_000,
        "RUB",
        "f" * 64,
    )
    e2 = make_event("receipt", "rc-1", analyzed())
    s2 = receipt.apply(s1, e2)
    assert_clean(s1, s2, e2)
    assert (s2.status, s2.confidence, s2.extracted_amount, s2.flags) == (
        "analyzed",
        Decimal("0.93"),
        10_000,
        ("x",),
    )
    e3 = make_event("receipt", "rc-1", receipt.ReceiptApproved(by="auto"))
    s3 = receipt.apply(s2, e3)
    assert_clean(s2, s3, e3)
    assert (s3.status, s3.approved_by, s3.decided_at) == ("approved", "auto", e3.occurred_at)
    # final: a rejection after approval is recorded
    e4 = make_event("receipt", "rc-1", receipt.ReceiptRejected(reason="late"))
    s4 = receipt.apply(s3, e4)
    assert_flagged(s3, s4, e4, INVALID_TRANSITION)
    assert s4.status == "rejected"


def test_receipt_rejected(make_event: EventFactory) -> None:
    s = fold(
        receipt.apply,
        [
            make_event("receipt", "rc-1", uploaded()),
            make_event("receipt", "rc-1", analyzed("0.5")),
            make_event("receipt", "rc-1", receipt.ReceiptRejected(reason="forged")),
        ],
    )
    assert s.violations == () and s.status == "rejected" and s.reject_reason == "forged"


def test_receipt_approved_before_analyzed(make_event: EventFactory) -> None:
    s = receipt.apply(None, make_event("receipt", "rc-1", uploaded()))
    e = make_event("receipt", "rc-1", receipt.ReceiptApproved(by="reviewer"))
    after = receipt.apply(s, e)
    assert_flagged(s, after, e, INVALID_TRANSITION)
    assert after.status == "approved"
    e2 = make_event("receipt", "rc-1", analyzed())
    again = receipt.apply(after, e2)
    assert_flagged(after, again, e2, INVALID_TRANSITION)


# ------------------------------------------------------------------------------- payout
def payout_created(owner: str = "trader:tr-1") -> Payload:
    return payout.PayoutCreated(
        owner=owner,
        amount=500,
        fee=10,
        currency="USDT",
        destination_masked="x",
        plan_id="payout:pay-1",
    )


@pytest.mark.parametrize(
    ("kinds", "final"),
    [
        (["paid", "confirmed"], "confirmed"),
        (["confirmed"], "confirmed"),
        (["paid", "cancelled"], "cancelled"),
        (["paid", "confirmed", "cancelled"], "cancelled"),
        (["cancelled"], "cancelled"),
        (["failed"], "failed"),
    ],
)
def test_payout_legal_paths(make_event: EventFactory, kinds: list[str], final: str) -> None:
    payloads = {
        "paid": payout.PayoutPaid(bank_ref="BR"),
        "confirmed": payout.PayoutConfirmed(),
        "cancelled": payout.PayoutCancelled(details="d"),
        "failed": payout.PayoutFailed(error="e"),
    }
    s = payout.apply(None, make_event("payout", "pay-1", payout_created()))
    assert (s.status, s.owner, s.amount, s.fee, s.plan_id) == (
        "unpaid",
        "trader:tr-1",
        500,
        10,
        "payout:pay-1",
    )
    statuses = [s.status]
    for k in kinds:
        e = make_event("payout", "pay-1", payloads[k])
        after = payout.apply(s, e)
        assert_clean(s, after, e)
        statuses.append(after.status)
        s = after
    assert s.status == final
    if kinds[-1] == "cancelled":
        assert s.cancelled_from == statuses[-2]
    if "paid" in kinds:
        assert s.bank_ref == "BR"


def test_payout_paid_after_confirmed(make_event: EventFactory) -> None:
    s = fold(
        payout.apply,
        [
            make_event("payout", "pay-1", payout_created()),
            make_event("payout", "pay-1", payout.PayoutConfirmed()),
        ],
    )
    e = make_event("payout", "pay-1", payout.PayoutPaid(bank_ref="late"))
    after = payout.apply(s, e)
    assert_flagged(s, after, e, INVALID_TRANSITION)
    assert after.status == "paid" and after.bank_ref == "late"


def test_payout_anything_after_failed(make_event: EventFactory) -> None:
    s = fold(
        payout.apply,
        [
            make_event("payout", "pay-1", payout_created()),
            make_event("payout", "pay-1", payout.PayoutFailed(error="x")),
        ],
    )
    e = make_event("payout", "pay-1", payout.PayoutConfirmed())
    after = payout.apply(s, e)
    assert_flagged(s, after, e, INVALID_TRANSITION)
    assert after.status == "confirmed"


# ------------------------------------------------------------------------------- ledger
def posting(frm: str, to: str, amount: int, currency: str = "USDT") -> dict[str, Any]:
    return {"from": frm, "to": to, "amount": amount, "currency": currency, "description": "d"}


def held(batch_id: int, *postings: dict[str, Any]) -> Payload:
    return ledger.BatchHeld.model_validate({"batch_id": batch_id, "postings": list(postings)})


def test_ledger_plan_held_in_two_batches_then_committed(make_event: EventFactory) -> None:
    s: Any = None
    e1 = make_event("ledger_plan", "order:po-1:1", held(10, posting("trader:t", "client:c", 90)))
    s1 = ledger.apply(s, e1)
    assert_clean(None, s1, e1)
    assert s1.status == "held" and s1.open_batch_ids == (10,)
    e2 = make_event(
        "ledger_plan", "order:po-1:1", held(11, posting("trader:t", "platform:revenue", 5))
    )
    s2 = ledger.apply(s1, e2)
    assert_clean(s1, s2, e2)
    assert s2.held_batch_ids == (10, 11) and len(s2.postings()) == 2
    e3 = make_event("ledger_plan", "order:po-1:1", ledger.PlanCommitted(batch_ids=[11, 10]))
    s3 = ledger.apply(s2, e3)
    assert_clean(s2, s3, e3)
    assert s3.status == "committed" and s3.open_batch_ids == () and s3.end_event_id == e3.event_id
    assert {b.ended for b in s3.batches} == {"committed"}


def test_ledger_plan_rolled_back(make_event: EventFactory) -> None:
    s = fold(
        ledger.apply,
        [
            make_event("ledger_plan", "payout:p", held(1, posting("client:c", "external:USDT", 5))),
            make_event("ledger_plan", "payout:p", ledger.PlanRolledBack(batch_ids=[1])),
        ],
    )
    assert s.violations == () and s.status == "rolled_back"


def test_ledger_plan_committed_twice(make_event: EventFactory) -> None:
    s = fold(
        ledger.apply,
        [
            make_event("ledger_plan", "p", held(1, posting("a:1", "b:1", 5))),
            make_event("ledger_plan", "p", ledger.PlanCommitted(batch_ids=[1])),
        ],
    )
    e = make_event("ledger_plan", "p", ledger.PlanCommitted(batch_ids=[1]))
    after = ledger.apply(s, e)
    # "A plan ends once": a second end is an illegal transition of the plan
    assert_flagged(s, after, e, INVALID_TRANSITION)
    assert after.status == "committed" and after.end_event_id == s.end_event_id
    e2 = make_event("ledger_plan", "p", ledger.PlanRolledBack(batch_ids=[1]))
    after2 = ledger.apply(after, e2)
    assert_flagged(after, after2, e2, INVALID_TRANSITION)
    assert after2.status == "committed"


@pytest.mark.parametrize("listed", [[1], [1, 2, 3], [2, 3], []])
def test_ledger_commit_lists_other_batches(make_event: EventFactory, listed: list[int]) -> None:
    s = fold(
        ledger.apply,
        [
            make_event("ledger_plan", "p", held(1, posting("a:1", "b:1", 5))),
            make_event("ledger_plan", "p", held(2, posting("a:1", "b:1", 6))),
        ],
    )
    e = make_event("ledger_plan", "p", ledger.PlanCommitted(batch_ids=listed))
    after = ledger.apply(s, e)
    assert_flagged(s, after, e, LEDGER_PLAN_MISMATCH)
    assert after.status == "committed"


@pytest.mark.parametrize(
    "bad",
    [
        posting("trader:t", "trader:t", 5),
        posting("client:c", "platform:revenue", 0),
        posting("client:c", "platform:revenue", -3),
    ],
)
def test_ledger_bad_posting(make_event: EventFactory, bad: dict[str, Any]) -> None:
    e = make_event("ledger_plan", "p", held(1, posting("a:1", "b:1", 5), bad))
    s = ledger.apply(None, e)
    assert_flagged(None, s, e, LEDGER_PLAN_MISMATCH)
    assert s.held_batch_ids == (1,)
    assert "posting 1" in s.violations[0].detail


def test_ledger_batch_misuse(make_event: EventFactory) -> None:
    e0 = make_event("ledger_plan", "p", ledger.PlanCommitted(batch_ids=[1]))
    s0 = ledger.apply(None, e0)
    assert_flagged(None, s0, e0, INVALID_TRANSITION)  # nothing was held
    s = fold(ledger.apply, [make_event("ledger_plan", "q", held(1, posting("a:1", "b:1", 5)))])
    e = make_event("ledger_plan", "q", held(1, posting("a:1", "b:1", 7)))
    after = ledger.apply(s, e)
    assert_flagged(s, after, e, LEDGER_PLAN_MISMATCH)  # batch 1 held twice
    e = make_event("ledger_plan", "q", held(2))
    after2 = ledger.apply(after, e)
    assert_flagged(after, after2, e, LEDGER_PLAN_MISMATCH)  # no postings
    done = ledger.apply(
        after2, make_event("ledger_plan", "q", ledger.PlanRolledBack(batch_ids=[1, 1, 2]))
    )
    e = make_event("ledger_plan", "q", held(3, posting("a:1", "b:1", 1)))
    late = ledger.apply(done, e)
    assert_flagged(done, late, e, INVALID_TRANSITION)  # a batch after the plan ended
    assert late.status == done.status


def test_account_book_from_plan_events(make_event: EventFactory) -> None:
    """own = committed credits - committed debits; available = own - debits held (catalog 3.6)."""
    w = World()
    events = [
        make_event("ledger_plan", "topup:1", held(1, posting("external:USDT", "client:c", 1000))),
        make_event("ledger_plan", "topup:1", ledger.PlanCommitted(batch_ids=[1])),
        make_event(
            "ledger_plan",
            "payout:p",
            held(
                2,
                posting("client:c", "external:USDT", 600),
                posting("client:c", "platform:revenue", 10),
            ),
        ),
    ]
    for e in events:
        assert w.apply(e) == []
    c = w.book.get("client:c", "USDT")
    assert (c.own, c.held, c.available) == (1000, 610, 390)
    assert w.book.available("external:USDT", "USDT") == -1000
    assert w.apply(make_event("ledger_plan", "payout:p", ledger.PlanCommitted(batch_ids=[2]))) == []
    assert (c.own, c.held, c.available) == (390, 0, 390)
    assert w.book.get("platform:revenue", "USDT").own == 10
    assert w.book.get("external:USDT", "USDT").own == -400
    # rollback frees the hold, moves nothing
    w.apply(
        make_event("ledger_plan", "payout:q", held(3, posting("client:c", "external:USDT", 300)))
    )
    assert c.available == 90
    w.apply(make_event("ledger_plan", "payout:q", ledger.PlanRolledBack(batch_ids=[3])))
    assert (c.own, c.held) == (390, 0)
    # a second end books nothing
    w.apply(make_event("ledger_plan", "payout:q", ledger.PlanCommitted(batch_ids=[3])))
    assert (c.own, c.held) == (390, 0)


def test_negative_available_is_a_world_violation(make_event: EventFactory) -> None:
    w = World()
    w.apply(
        make_event("ledger_plan", "topup:1", held(1, posting("external:USDT", "trader:t", 100)))
    )
    w.apply(make_event("ledger_plan", "topup:1", ledger.PlanCommitted(batch_ids=[1])))
    e = make_event("ledger_plan", "order:o:1", held(2, posting("trader:t", "client:c", 101)))
    new = w.apply(e)
    assert [(v.code, v.event_id, v.subject) for v in new] == [
        (NEGATIVE_AVAILABLE, e.event_id, "trader:t")
    ]
    assert w.plans["order:o:1"].status == "held"  # still applied
    # platform and external accounts may go negative
    e2 = make_event("ledger_plan", "x", held(3, posting("platform:revenue", "external:USDT", 5)))
    assert w.apply(e2) == []


# ------------------------------------------------------------------------------- rating
def test_rating_published(make_event: EventFactory) -> None:
    p = rating.RatingPublished(
        as_of=T0,
        window_days=7,
        assignments=4,
        completed=3,
        on_time=2,
        disputed=1,
        score=Decimal("61.17"),
    )
    e = make_event("trader_rating", "tr-1", p)
    s = rating.apply(None, e)
    assert_clean(None, s, e)
    assert (s.published, s.score, s.window_days, s.as_of) == (1, Decimal("61.17"), 7, T0)
    assert s.counts == rating.RatingCounts(4, 3, 2, 1)


# ------------------------------------------------------------------------- world indexes
def test_world_tracks_active_orders_and_rating_history(make_event: EventFactory) -> None:
    w = World()
    t = [T0 + timedelta(minutes=i) for i in range(10)]
    complete_by = t[2] + timedelta(minutes=30)
    for payload, i in [
        (created(), 0),
        (assigned(1, "tr-1"), 1),
        (payment_order.OrderAccepted(trader_id="tr-1", complete_by=complete_by), 2),
    ]:
        assert w.apply(make_event("payment_order", "po-1", payload, t[i])) == []
    assert w.active_count("tr-1") == 1
    assert (
        w.apply(
            make_event(
                "payment_order",
                "po-1",
                payment_order.OrderCompleted(trader_id="tr-1", paid_amount=1),
                t[3],
            )
        )
        == []
    )
    assert w.active_count("tr-1") == 0
    w.apply(make_event("payment_order", "po-1", payment_order.OrderDisputed(reason="x"), t[4]))
    c = w.history.counts("tr-1", t[9], 1)
    assert c == rating.RatingCounts(assignments=1, completed=1, on_time=1, disputed=1)
    assert w.score("tr-1") == Decimal("55.00")  # nothing published yet
    assert w.version("payment_order", "po-1") == 5 and w.version("payment_order", "nope") == 0


def test_world_apply_upcasts_v1_payloads(make_event: EventFactory) -> None:
    w = World()
    w.apply(make_event("trader", "tr-1", registered(1)))
    s = w.traders["tr-1"]
    assert s.registered and s.max_amount == 1000 and s.country is None
    v1 = payment_order.OrderCreatedV1(
        client_id="cl-1",
        direction="payout",
        amount=77,
        currency="KZT",
        client_ref="r",
        expires_at=T0,
    )
    w.apply(make_event("payment_order", "po-1", v1))
    o = w.orders["po-1"]
    assert (o.amount, o.currency, o.channel, o.direction) == (77, "KZT", "card", "payout")


def test_offending_event_ids_are_kept_in_world(make_event: EventFactory) -> None:
    w = World()
    e = make_event("receipt", "rc-1", receipt.ReceiptApproved(by="auto"))
    new = w.apply(e)
    assert [(v.code, v.event_id) for v in new] == [(INVALID_TRANSITION, e.event_id)]
    assert w.violations == new and w.events_applied == 1


def test_payment_order_dispute_at_time(make_event: EventFactory) -> None:
    """A dispute counts for the trader who completed the order, at the dispute's own time."""
    w = World()
    day = timedelta(days=1)
    seq = [
        (created(), T0),
        (assigned(1, "tr-1"), T0 + timedelta(minutes=1)),
        (
            payment_order.OrderAccepted(trader_id="tr-1", complete_by=T0 + timedelta(minutes=2)),
            T0 + timedelta(minutes=1),
        ),
        (payment_order.OrderCompleted(trader_id="tr-1", paid_amount=1), T0 + timedelta(minutes=5)),
        (payment_order.OrderDisputed(reason="x"), T0 + 3 * day),
    ]
    for p, at in seq:
        w.apply(make_event("payment_order", "po-1", p, at))
    assert w.history.counts("tr-1", T0 + day, 1) == rating.RatingCounts(
        1, 1, 0, 0
    )  # late: not on time
    assert w.history.counts("tr-1", T0 + 3 * day, 1) == rating.RatingCounts(0, 0, 0, 1)
