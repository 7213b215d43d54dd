"""The state machines of catalog 3.3, 3.4 and 3.5 as property tests.

The transition tables and the "status after" columns are written here again from the catalog's
text (not imported), random sequences of kinds are folded, and the number of violations must be
exactly the number of events the catalog does not allow where they stand; the status after every
event must follow the catalog, legal or not (an illegal event is recorded, then applied).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.domain import payment_order, payout, receipt
from workbench.domain.events import Event, Payload
from workbench.domain.violations import INVALID_TRANSITION

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)

# ----------------------------------------------------------------- catalog 3.3, by hand
PO = "payment_order."
PO_LEGAL: dict[str | None, set[str]] = {
    None: {"created"},
    "pending": {"assigned", "cancelled"},
    "assigned": {"accepted", "assignment_declined", "assignment_expired", "cancelled"},
    "in_progress": {"receipt_attached", "review_started", "completed", "cancelled"},
    "in_review": {"receipt_attached", "completed", "cancelled"},
    "completed": {"disputed"},
    "cancelled": {"disputed"},
    "disputed": {"dispute_resolved"},
}
PO_STATUS_AFTER: dict[str, str | None] = {  # None: unchanged
    "created": "pending",
    "assigned": "assigned",
    "accepted": "in_progress",
    "assignment_declined": "pending",
    "assignment_expired": "pending",
    "receipt_attached": None,
    "review_started": "in_review",
    "completed": "completed",
    "cancelled": "cancelled",
    "disputed": "disputed",
    # dispute_resolved: upheld -> completed, reversed -> cancelled (handled below)
}
PO_KINDS = [*PO_STATUS_AFTER, "dispute_resolved:upheld", "dispute_resolved:reversed"]
ENDS_ATTEMPT = {
    "assignment_declined": "declined",
    "assignment_expired": "expired",
    "cancelled": "cancelled",
    "completed": "completed",
}


def po_payload(name: str, attempt: int) -> Payload:
    at = T0 + timedelta(hours=1)
    match name:
        case "created":
            return payment_order.OrderCreated.model_validate(
                {
                    "client_id": "cl",
                    "direction": "payin",
                    "money": {"amount": 100, "currency": "RUB"},
                    "client_ref": "r",
                    "expires_at": at,
                    "channel": "card",
                }
            )
        case "assigned":
            return payment_order.OrderAssigned(
                trader_id=f"tr-{attempt}",
                attempt=attempt,
                rate="90",
                settlement_currency="USDT",
                settlement_amount=1_111_111,
                platform_fee=10,
                trader_reward=5,
                accept_by=at,
            )
        case "accepted":
            return payment_order.OrderAccepted(trader_id="tr", complete_by=at)
        case "assignment_declined":
            return payment_order.AssignmentDeclined(trader_id="tr", reason="busy")
        case "assignment_expired":
            return payment_order.AssignmentExpired(trader_id="tr")
        case "receipt_attached":
            return payment_order.ReceiptAttached(receipt_id=f"rc-{attempt}")
        case "review_started":
            return payment_order.ReviewStarted(reason="manual")
        case "completed":
            return payment_order.OrderCompleted(trader_id="tr", paid_amount=100)
        case "cancelled":
            return payment_order.OrderCancelled(reason="client_request")
        case "disputed":
            return payment_order.OrderDisputed(reason="claim")
        case "dispute_resolved:upheld":
            return payment_order.DisputeResolved(outcome="upheld", note="n")
        case "dispute_resolved:reversed":
            return payment_order.DisputeResolved(outcome="reversed", note="n")
    raise AssertionError(name)


def envelope(stream: str, seq: int, payload: Payload) -> Event:
    at = T0 + timedelta(seconds=seq)
    return Event(
        f"{stream}-ev-{seq}",
        seq,
        stream,
        "agg-1",
        seq,
        payload.KIND,
        payload.VERSION,
        at,
        at,
        None,
        None,
        payload,
    )


@st.composite
def walks(
    draw: st.DrawFn, legal: dict[str | None, set[str]], after: Any, kinds: list[str]
) -> list[str]:
    """Sequences that mostly follow the catalog (to reach deep states) with illegal steps mixed in."""
    n = draw(st.integers(0, 14))
    status: str | None = None
    out: list[str] = []
    for _ in range(n):
        allowed = sorted(k for k in kinds if k.split(":")[0] in legal.get(status, set()))
        if allowed and draw(st.integers(0, 3)) > 0:
            name = draw(st.sampled_from(allowed))
        else:
            name = draw(st.sampled_from(kinds))
        out.append(name)
        status = after(status, name)
    return out


def po_after(status: str | None, name: str) -> str | None:
    if name.startswith("dispute_resolved"):
        return "completed" if name.endswith("upheld") else "cancelled"
    new = PO_STATUS_AFTER[name]
    return status if new is None else new


@settings(max_examples=200, deadline=None)
@given(walks(PO_LEGAL, po_after, PO_KINDS))
def test_payment_order_state_machine(names: list[str]) -> None:
    state: payment_order.PaymentOrderState | None = None
    status: str | None = None
    illegal_ids: list[str] = []
    attempts: list[str | None] = []  # outcome per attempt, None while open, "?" ended otherwise
    receipts: list[str] = []
    # catalog 4, the order's stays in review: a review_started starts one unless the order's
    # previous status event (any kind but receipt_attached) was a review_started too; the next
    # status event that is not one ends it
    reviews: list[list[str | None]] = []  # [start, end] event ids
    # each attempt's events: [assigned, latest accepted, end, first review_started] while open
    spans: list[list[str | None]] = []
    previous: str | None = None
    for i, name in enumerate(names, start=1):
        kind = name.split(":")[0]
        attempt = sum(1 for n in names[:i] if n == "assigned")
        payload = po_payload(name, attempt)
        event = envelope("payment_order", i, payload)
        assert event.kind == PO + kind
        if kind not in PO_LEGAL.get(status, set()):
            illegal_ids.append(event.event_id)
        # the model of attempts
        if kind == "assigned":
            if attempts and attempts[-1] is None:
                attempts[-1] = "?"  # superseded by an (illegal) new assignment
            attempts.append(None)
        elif kind in ENDS_ATTEMPT and attempts and attempts[-1] is None:
            attempts[-1] = ENDS_ATTEMPT[kind]
        is_open = bool(spans) and spans[-1][2] is None
        if kind == "assigned" or kind in ENDS_ATTEMPT:
            if is_open:
                spans[-1][2] = event.event_id
            if kind == "assigned":
                spans.append([event.event_id, None, None, None])
        elif kind == "accepted" and is_open:
            spans[-1][1] = event.event_id
        elif kind == "review_started" and is_open and spans[-1][3] is None:
            spans[-1][3] = event.event_id
        if kind == "receipt_attached":
            receipts.append(payload.receipt_id)  # type: ignore[attr-defined]
        elif kind == "review_started":
            if previous != "review_started":
                reviews.append([event.event_id, None])
        elif reviews and reviews[-1][1] is None:
            reviews[-1][1] = event.event_id
        if kind != "receipt_attached":
            previous = kind

        state = payment_order.apply(state, event)
        status = po_after(status, name)
        assert state.status == status, (names[:i], state.status, status)
        assert state.version == i

    if state is None:
        return
    assert len(state.violations) == len(illegal_ids), [str(v) for v in state.violations]
    assert [v.event_id for v in state.violations] == illegal_ids
    assert {v.code for v in state.violations} <= {INVALID_TRANSITION}
    got = [a.outcome for a in state.attempts]
    assert len(got) == len(attempts)
    for g, want in zip(got, attempts, strict=True):
        if want == "?":
            assert g is not None
        else:
            assert g == want
    assert list(state.receipt_ids) == receipts
    assert [[r.start_event_id, r.end_event_id] for r in state.reviews] == reviews
    got_spans = [
        [a.assigned_event_id, a.accepted_event_id, a.end_event_id, a.review_event_id]
        for a in state.attempts
    ]
    assert got_spans == spans


# ----------------------------------------------------------------- catalog 3.5, by hand
PAYOUT_LEGAL: dict[str | None, set[str]] = {
    None: {"created"},
    "unpaid": {"paid", "confirmed", "cancelled", "failed"},
    "paid": {"confirmed", "cancelled"},
    "confirmed": {"cancelled"},
}
PAYOUT_STATUS_AFTER = {
    "created": "unpaid",
    "paid": "paid",
    "confirmed": "confirmed",
    "cancelled": "cancelled",
    "failed": "failed",
}


def payout_payload(name: str) -> Payload:
    return {
        "created": lambda: payout.PayoutCreated(
            owner="client:cl",
            amount=5,
            fee=1,
            currency="USDT",
            destination_masked="d",
            plan_id="payout:agg-1",
        ),
        "paid": lambda: payout.PayoutPaid(bank_ref="b"),
        "confirmed": lambda: payout.PayoutConfirmed(),
        "cancelled": lambda: payout.PayoutCancelled(details="d"),
        "failed": lambda: payout.PayoutFailed(error="e"),
    }[name]()


@settings(max_examples=200, deadline=None)
@given(walks(PAYOUT_LEGAL, lambda s, n: PAYOUT_STATUS_AFTER[n], list(PAYOUT_STATUS_AFTER)))
def test_payout_state_machine(names: list[str]) -> None:
    state: payout.PayoutState | None = None
    status: str | None = None
    illegal: list[str] = []
    for i, name in enumerate(names, start=1):
        event = envelope("payout", i, payout_payload(name))
        if name not in PAYOUT_LEGAL.get(status, set()):
            illegal.append(event.event_id)
        before_status = status
        state = payout.apply(state, event)
        status = PAYOUT_STATUS_AFTER[name]
        assert state.status == status
        assert state.version == i
        if name == "cancelled":
            assert state.cancelled_from == before_status
    if state is not None:
        assert [v.event_id for v in state.violations] == illegal
        assert {v.code for v in state.violations} <= {INVALID_TRANSITION}


# ----------------------------------------------------------------- catalog 3.4, by hand
RECEIPT_LEGAL: dict[str | None, set[str]] = {
    None: {"uploaded"},
    "uploaded": {"analyzed"},
    "analyzed": {"approved", "rejected"},
}


def receipt_payload(name: str) -> Payload:
    return {
        "uploaded": lambda: receipt.ReceiptUploaded(
            order_id="po",
            trader_id="tr",
            amount=1,
            currency="RUB",
            paid_at=T0,
            bank="b",
            file_sha256="0" * 64,
        ),
        "analyzed": lambda: receipt.ReceiptAnalyzed(
            extracted_amount=None, extracted_paid_at=None, confidence=Decimal("0.5"), flags=[]
        ),
        "approved": lambda: receipt.ReceiptApproved(by="auto"),
        "rejected": lambda: receipt.ReceiptRejected(reason="r"),
    }[name]()


@settings(max_examples=120, deadline=None)
@given(walks(RECEIPT_LEGAL, lambda s, n: n, ["uploaded", "analyzed", "approved", "rejected"]))
def test_receipt_state_machine(names: list[str]) -> None:
    state: receipt.ReceiptState | None = None
    status: str | None = None
    illegal: list[str] = []
    for i, name in enumerate(names, start=1):
        event = envelope("receipt", i, receipt_payload(name))
        if name not in RECEIPT_LEGAL.get(status, set()):
            illegal.append(event.event_id)
        state = receipt.apply(state, event)
        status = name  # every receipt kind's "status after" is its own name
        assert state.status == status and state.version == i
    if state is not None:
        assert [v.event_id for v in state.violations] == illegal
