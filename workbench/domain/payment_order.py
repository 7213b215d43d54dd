"""The ``payment_order`` stream (catalog 3.3): an order's life from creation to its last dispute.

The state keeps every assignment attempt, because the money of an order is booked per attempt
(plan ``order:<id>:<attempt>``) and the audit, the ratings and the simulator all ask how each
attempt ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from .aggregate import AggregateState, check_transition, evolve
from .events import Currency, Event, Int32, Int64, Payload, PositiveAmount, Rate, UtcDatetime
from .violations import INVALID_TRANSITION

Direction = Literal["payin", "payout"]


class Money(Payload):
    amount: PositiveAmount
    currency: Currency


class OrderCreatedV1(Payload):
    KIND = "payment_order.created"
    VERSION = 1
    client_id: str
    direction: Direction
    amount: PositiveAmount
    currency: Currency
    client_ref: str
    expires_at: UtcDatetime


class OrderCreated(Payload):
    """``payment_order.created`` v2, the version everything past decoding sees."""

    KIND = "payment_order.created"
    VERSION = 2
    client_id: str
    direction: Direction
    money: Money
    client_ref: str
    expires_at: UtcDatetime
    channel: Literal["card", "sbp"]


def upcast_created_v1(p: OrderCreatedV1) -> OrderCreated:
    """v1 → v2: the amount becomes a money object; v1 orders could only come by card."""
    return OrderCreated(
        client_id=p.client_id,
        direction=p.direction,
        money=Money(amount=p.amount, currency=p.currency),
        client_ref=p.client_ref,
        expires_at=p.expires_at,
        channel="card",
    )


class OrderAssigned(Payload):
    KIND = "payment_order.assigned"
    trader_id: str
    attempt: Int32
    rate: Rate
    settlement_currency: Currency
    settlement_amount: Int64
    platform_fee: Int64
    trader_reward: Int64
    accept_by: UtcDatetime


class OrderAccepted(Payload):
    KIND = "payment_order.accepted"
    trader_id: str
    complete_by: UtcDatetime


class AssignmentDeclined(Payload):
    KIND = "payment_order.assignment_declined"
    trader_id: str
    reason: str


class AssignmentExpired(Payload):
    KIND = "payment_order.assignment_expired"
    trader_id: str


class ReceiptAttached(Payload):
    KIND = "payment_order.receipt_attached"
    receipt_id: str


ReviewReason = Literal["deadline", "low_confidence", "amount_mismatch", "manual"]
CancelReason = Literal["client_request", "expired", "no_trader", "review_rejected"]


class ReviewStarted(Payload):
    KIND = "payment_order.review_started"
    reason: ReviewReason


class OrderCompleted(Payload):
    KIND = "payment_order.completed"
    trader_id: str
    paid_amount: Int64


class OrderCancelled(Payload):
    KIND = "payment_order.cancelled"
    reason: CancelReason


class OrderDisputed(Payload):
    KIND = "payment_order.disputed"
    reason: str


class DisputeResolved(Payload):
    KIND = "payment_order.dispute_resolved"
    outcome: Literal["upheld", "reversed"]
    note: str


PAYLOADS: tuple[type[Payload], ...] = (
    OrderCreatedV1,
    OrderCreated,
    OrderAssigned,
    OrderAccepted,
    AssignmentDeclined,
    AssignmentExpired,
    ReceiptAttached,
    ReviewStarted,
    OrderCompleted,
    OrderCancelled,
    OrderDisputed,
    DisputeResolved,
)

# ------------------------------------------------------------------ the state machine (3.3)
PENDING: Final = "pending"
ASSIGNED: Final = "assigned"
IN_PROGRESS: Final = "in_progress"
IN_REVIEW: Final = "in_review"
COMPLETED: Final = "completed"
CANCELLED: Final = "cancelled"
DISPUTED: Final = "disputed"

#: Statuses in which an order counts against its trader's ``max_active_orders``.
ACTIVE_STATUSES: Final = frozenset({ASSIGNED, IN_PROGRESS, IN_REVIEW})
FINAL_STATUSES: Final = frozenset({COMPLETED, CANCELLED})

ALLOWED: Final[dict[object, frozenset[str]]] = {
    None: frozenset({"payment_order.created"}),
    PENDING: frozenset({"payment_order.assigned", "payment_order.cancelled"}),
    ASSIGNED: frozenset(
        {
            "payment_order.accepted",
            "payment_order.assignment_declined",
            "payment_order.assignment_expired",
            "payment_order.cancelled",
        }
    ),
    IN_PROGRESS: frozenset(
        {
            "payment_order.receipt_attached",
            "payment_order.review_started",
            "payment_order.completed",
            "payment_order.cancelled",
        }
    ),
    IN_REVIEW: frozenset(
        {"payment_order.receipt_attached", "payment_order.completed", "payment_order.cancelled"}
    ),
    COMPLETED: frozenset({"payment_order.disputed"}),
    CANCELLED: frozenset({"payment_order.disputed"}),
    DISPUTED: frozenset({"payment_order.dispute_resolved"}),
}

#: How an attempt ended, by the kind that ended it. An assignment while an attempt is still open
#: is illegal (flagged) but still applied: it supersedes the open attempt.
ATTEMPT_OUTCOMES: Final[dict[str, str]] = {
    "payment_order.assignment_declined": "declined",
    "payment_order.assignment_expired": "expired",
    "payment_order.cancelled": "cancelled",
    "payment_order.completed": "completed",
    "payment_order.assigned": "superseded",
}


@dataclass(frozen=True)
class Attempt:
    """One assignment of the order to one trader, priced at that moment."""

    attempt: int
    trader_id: str
    rate: str
    settlement_currency: str
    settlement_amount: int
    platform_fee: int
    trader_reward: int
    assigned_at: datetime
    accept_by: datetime
    assigned_event_id: str
    assigned_pos: int
    accepted_at: datetime | None = None
    complete_by: datetime | None = None
    accepted_event_id: str | None = None  # the latest acceptance while open, as `accepted_at`
    ended_at: datetime | None = None
    outcome: str | None = None  # declined, expired, cancelled, completed, superseded; None if open
    end_event_id: str | None = None
    end_pos: int | None = None
    review_event_id: str | None = None  # the first `review_started` while it was open
    review_pos: int | None = None

    @property
    def open(self) -> bool:
        return self.outcome is None


@dataclass(frozen=True)
class Review:
    """One stay of the order in review (catalog 4): the `review_started` that put it there, and
    the order's next event that sets a status (`end_*`; None while it is still in review). A
    `receipt_attached` keeps it in review; a second `review_started` while in review starts
    nothing. REVIEW_SKIPPED and REVIEW_OVERDUE judge these, through ``order_reviews``."""

    reason: str
    start_event_id: str
    start_pos: int
    started_at: datetime
    end_event_id: str | None = None
    end_kind: str | None = None
    end_pos: int | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class PaymentOrderState(AggregateState):
    status: str | None = None
    client_id: str | None = None
    direction: str | None = None
    amount: int = 0
    currency: str | None = None
    client_ref: str | None = None
    channel: str | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    attempts: tuple[Attempt, ...] = ()
    receipt_ids: tuple[str, ...] = ()
    reviews: tuple[Review, ...] = ()
    review_reason: str | None = None
    review_started_at: datetime | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    paid_amount: int | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    disputed_at: datetime | None = None
    dispute_reason: str | None = None
    status_before_dispute: str | None = None
    resolved_at: datetime | None = None
    dispute_outcome: str | None = None

    @property
    def current(self) -> Attempt | None:
        """The latest attempt (open or not)."""
        return self.attempts[-1] if self.attempts else None

    @property
    def open_attempt(self) -> Attempt | None:
        cur = self.current
        return cur if cur is not None and cur.open else None

    @property
    def trader_id(self) -> str | None:
        cur = self.current
        return cur.trader_id if cur else None

    def plan_id(self, attempt: int) -> str:
        return f"order:{self.aggregate_id}:{attempt}"

    @property
    def traders_tried(self) -> frozenset[str]:
        return frozenset(a.trader_id for a in self.attempts)


_STATUS_AFTER: Final[dict[str, str]] = {
    "payment_order.created": PENDING,
    "payment_order.assigned": ASSIGNED,
    "payment_order.accepted": IN_PROGRESS,
    "payment_order.assignment_declined": PENDING,
    "payment_order.assignment_expired": PENDING,
    "payment_order.review_started": IN_REVIEW,
    "payment_order.completed": COMPLETED,
    "payment_order.cancelled": CANCELLED,
    "payment_order.disputed": DISPUTED,
}


def _end_attempt(s: PaymentOrderState, event: Event) -> PaymentOrderState:
    """Close the open attempt with the outcome this event gives it (if one is open)."""
    cur = s.open_attempt
    if cur is None:
        return s
    ended = evolve(
        cur,
        ended_at=event.occurred_at,
        outcome=ATTEMPT_OUTCOMES[event.kind],
        end_event_id=event.event_id,
        end_pos=event.position,
    )
    return evolve(s, attempts=(*s.attempts[:-1], ended))


def _reviewed(s: PaymentOrderState, event: Event) -> PaymentOrderState:
    """The order's reviews after ``event``: a `review_started` opens one unless one is open (the
    order's last status event was a `review_started` too); any other event that sets a status,
    legal or not, ends the open one. A `receipt_attached` sets none."""
    if event.kind == ReceiptAttached.KIND:
        return s
    last = s.reviews[-1] if s.reviews else None
    is_open = last is not None and last.end_event_id is None
    if isinstance(event.payload, ReviewStarted):
        if is_open:
            return s
        review = Review(event.payload.reason, event.event_id, event.position, event.occurred_at)
        return evolve(s, reviews=(*s.reviews, review))
    if last is None or not is_open:
        return s
    ended = evolve(
        last,
        end_event_id=event.event_id,
        end_kind=event.kind,
        end_pos=event.position,
        ended_at=event.occurred_at,
    )
    return evolve(s, reviews=(*s.reviews[:-1], ended))


def apply(state: PaymentOrderState | None, event: Event) -> PaymentOrderState:
    """Fold one order event: the catalog's state machine, with illegal events flagged."""
    s = state or PaymentOrderState(event.aggregate_id)
    s = check_transition(s, event, s.status, ALLOWED)
    s = _reviewed(s, event)
    p = event.payload
    status = _STATUS_AFTER.get(event.kind, s.status)
    at = event.occurred_at

    if isinstance(p, OrderCreated):
        return s.advanced(
            event,
            status=status,
            client_id=p.client_id,
            direction=p.direction,
            amount=p.money.amount,
            currency=p.money.currency,
            client_ref=p.client_ref,
            channel=p.channel,
            expires_at=p.expires_at,
            created_at=at,
        )
    if isinstance(p, OrderAssigned):
        expected = len(s.attempts) + 1
        if p.attempt != expected:
            s = s.flag(
                event, INVALID_TRANSITION, f"attempt {p.attempt} follows attempt {expected - 1}"
            )
        s = _end_attempt(s, event) if s.open_attempt else s
        attempt = Attempt(
            attempt=p.attempt,
            trader_id=p.trader_id,
            rate=p.rate,
            settlement_currency=p.settlement_currency,
            settlement_amount=p.settlement_amount,
            platform_fee=p.platform_fee,
            trader_reward=p.trader_reward,
            assigned_at=at,
            accept_by=p.accept_by,
            assigned_event_id=event.event_id,
            assigned_pos=event.position,
        )
        return s.advanced(event, status=status, attempts=(*s.attempts, attempt))
    if isinstance(p, OrderAccepted):
        cur = s.open_attempt
        if cur is not None:
            cur = evolve(
                cur, accepted_at=at, complete_by=p.complete_by, accepted_event_id=event.event_id
            )
            s = evolve(s, attempts=(*s.attempts[:-1], cur))
        return s.advanced(event, status=status)
    if isinstance(p, AssignmentDeclined | AssignmentExpired):
        return _end_attempt(s, event).advanced(event, status=status)
    if isinstance(p, ReceiptAttached):
        return s.advanced(event, receipt_ids=(*s.receipt_ids, p.receipt_id))
    if isinstance(p, ReviewStarted):
        cur = s.open_attempt
        if cur is not None and cur.review_event_id is None:
            cur = evolve(cur, review_event_id=event.event_id, review_pos=event.position)
            s = evolve(s, attempts=(*s.attempts[:-1], cur))
        return s.advanced(event, status=status, review_reason=p.reason, review_started_at=at)
    if isinstance(p, OrderCompleted):
        return _end_attempt(s, event).advanced(
            event,
            status=status,
            completed_at=at,
            completed_by=p.trader_id,
            paid_amount=p.paid_amount,
        )
    if isinstance(p, OrderCancelled):
        return _end_attempt(s, event).advanced(
            event, status=status, cancelled_at=at, cancel_reason=p.reason
        )
    if isinstance(p, OrderDisputed):
        return s.advanced(
            event,
            status=status,
            disputed_at=at,
            dispute_reason=p.reason,
            status_before_dispute=s.status,
        )
    if isinstance(p, DisputeResolved):
        after = COMPLETED if p.outcome == "upheld" else CANCELLED
        return s.advanced(event, status=after, resolved_at=at, dispute_outcome=p.outcome)
    raise TypeError(f"not a payment_order event: {event.kind}")
