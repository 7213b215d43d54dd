"""The ``payout`` stream (catalog 3.5): withdrawals of a client balance or a trader deposit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final

from pydantic import AfterValidator

from .aggregate import AggregateState, check_transition
from .events import Currency, Event, Int64, Payload, PositiveAmount


def _owner(value: str) -> str:
    kind, _, ident = value.partition(":")
    if kind not in ("client", "trader") or not ident:
        raise ValueError(f"owner {value!r} is not client:<id> or trader:<id>")
    return value


Owner = Annotated[str, AfterValidator(_owner)]


class PayoutCreated(Payload):
    KIND = "payout.created"
    owner: Owner
    amount: PositiveAmount
    fee: Int64
    currency: Currency
    destination_masked: str
    plan_id: str


class PayoutPaid(Payload):
    KIND = "payout.paid"
    bank_ref: str


class PayoutConfirmed(Payload):
    KIND = "payout.confirmed"


class PayoutCancelled(Payload):
    KIND = "payout.cancelled"
    details: str


class PayoutFailed(Payload):
    KIND = "payout.failed"
    error: str


PAYLOADS: tuple[type[Payload], ...] = (
    PayoutCreated,
    PayoutPaid,
    PayoutConfirmed,
    PayoutCancelled,
    PayoutFailed,
)

UNPAID: Final = "unpaid"
PAID: Final = "paid"
CONFIRMED: Final = "confirmed"
CANCELLED: Final = "cancelled"
FAILED: Final = "failed"

ALLOWED: Final[dict[object, frozenset[str]]] = {
    None: frozenset({"payout.created"}),
    UNPAID: frozenset({"payout.paid", "payout.confirmed", "payout.cancelled", "payout.failed"}),
    PAID: frozenset({"payout.confirmed", "payout.cancelled"}),
    CONFIRMED: frozenset({"payout.cancelled"}),
}

_STATUS_AFTER: Final = {
    "payout.created": UNPAID,
    "payout.paid": PAID,
    "payout.confirmed": CONFIRMED,
    "payout.cancelled": CANCELLED,
    "payout.failed": FAILED,
}


def revert_plan_id(plan_id: str) -> str:
    """The plan that books a cancel after confirm: the committed plan's postings swapped."""
    return f"revert:{plan_id}"


@dataclass(frozen=True)
class PayoutState(AggregateState):
    status: str | None = None
    owner: str | None = None
    amount: int = 0
    fee: int = 0
    currency: str | None = None
    destination_masked: str | None = None
    plan_id: str | None = None
    bank_ref: str | None = None
    created_at: datetime | None = None
    paid_at: datetime | None = None
    confirmed_at: datetime | None = None
    ended_at: datetime | None = None
    cancelled_from: str | None = None  # the status a cancel came from (confirmed means a revert)
    details: str | None = None


def apply(state: PayoutState | None, event: Event) -> PayoutState:
    """Fold one payout event: the payout state machine, with illegal events flagged."""
    s = state or PayoutState(event.aggregate_id)
    s = check_transition(s, event, s.status, ALLOWED)
    p = event.payload
    at = event.occurred_at
    status = _STATUS_AFTER[event.kind]
    if isinstance(p, PayoutCreated):
        return s.advanced(
            event,
            status=status,
            owner=p.owner,
            amount=p.amount,
            fee=p.fee,
            currency=p.currency,
            destination_masked=p.destination_masked,
            plan_id=p.plan_id,
            created_at=at,
        )
    if isinstance(p, PayoutPaid):
        return s.advanced(event, status=status, bank_ref=p.bank_ref, paid_at=at)
    if isinstance(p, PayoutConfirmed):
        return s.advanced(event, status=status, confirmed_at=at)
    if isinstance(p, PayoutCancelled):
        return s.advanced(
            event, status=status, ended_at=at, cancelled_from=s.status, details=p.details
        )
    if isinstance(p, PayoutFailed):
        return s.advanced(event, status=status, ended_at=at, details=p.error)
    raise TypeError(f"not a payout event: {event.kind}")
