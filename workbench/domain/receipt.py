"""The ``receipt`` stream (catalog 3.4): a trader's proof of a fiat transfer and its analysis."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final, Literal

from .aggregate import AggregateState, check_transition
from .events import Currency, Event, Int64, Payload, PositiveAmount, UnitInterval, UtcDatetime


class ReceiptUploaded(Payload):
    KIND = "receipt.uploaded"
    order_id: str
    trader_id: str
    amount: PositiveAmount
    currency: Currency
    paid_at: UtcDatetime
    bank: str
    file_sha256: str


class ReceiptAnalyzed(Payload):
    KIND = "receipt.analyzed"
    extracted_amount: Int64 | None
    extracted_paid_at: UtcDatetime | None
    confidence: UnitInterval
    flags: list[str]


class ReceiptApproved(Payload):
    KIND = "receipt.approved"
    by: Literal["auto", "reviewer"]


class ReceiptRejected(Payload):
    KIND = "receipt.rejected"
    reason: str


PAYLOADS: tuple[type[Payload], ...] = (
    ReceiptUploaded,
    ReceiptAnalyzed,
    ReceiptApproved,
    ReceiptRejected,
)

UPLOADED: Final = "uploaded"
ANALYZED: Final = "analyzed"
APPROVED: Final = "approved"
REJECTED: Final = "rejected"

#: Below this OCR confidence the scheduler sends the order to review (catalog section 4).
REVIEW_CONFIDENCE: Final = Decimal("0.8")

#: How long an order may stay in review before the audit calls it overdue (``REVIEW_OVERDUE``):
#: the default of the audit's ``review_overdue`` parameter. The catalog sets no limit; a day is
#: the risk desk's (issue 13), so it is a parameter, not a rule.
REVIEW_OVERDUE: Final = timedelta(hours=24)

ALLOWED: Final[dict[object, frozenset[str]]] = {
    None: frozenset({"receipt.uploaded"}),
    UPLOADED: frozenset({"receipt.analyzed"}),
    ANALYZED: frozenset({"receipt.approved", "receipt.rejected"}),
}


@dataclass(frozen=True)
class ReceiptState(AggregateState):
    status: str | None = None
    order_id: str | None = None
    trader_id: str | None = None
    amount: int = 0
    currency: str | None = None
    paid_at: datetime | None = None
    bank: str | None = None
    file_sha256: str | None = None
    uploaded_at: datetime | None = None
    extracted_amount: int | None = None
    extracted_paid_at: datetime | None = None
    confidence: Decimal | None = None
    flags: tuple[str, ...] = ()
    analyzed_at: datetime | None = None
    approved_by: str | None = None
    reject_reason: str | None = None
    decided_at: datetime | None = None


def apply(state: ReceiptState | None, event: Event) -> ReceiptState:
    """Fold one receipt event; approved and rejected are final."""
    s = state or ReceiptState(event.aggregate_id)
    s = check_transition(s, event, s.status, ALLOWED)
    p = event.payload
    at = event.occurred_at
    if isinstance(p, ReceiptUploaded):
        return s.advanced(
            event,
            status=UPLOADED,
            order_id=p.order_id,
            trader_id=p.trader_id,
            amount=p.amount,
            currency=p.currency,
            paid_at=p.paid_at,
            bank=p.bank,
            file_sha256=p.file_sha256,
            uploaded_at=at,
        )
    if isinstance(p, ReceiptAnalyzed):
        return s.advanced(
            event,
            status=ANALYZED,
            extracted_amount=p.extracted_amount,
            extracted_paid_at=p.extracted_paid_at,
            confidence=p.confidence,
            flags=tuple(p.flags),
            analyzed_at=at,
        )
    if isinstance(p, ReceiptApproved):
        return s.advanced(event, status=APPROVED, approved_by=p.by, decided_at=at)
    if isinstance(p, ReceiptRejected):
        return s.advanced(event, status=REJECTED, reject_reason=p.reason, decided_at=at)
    raise TypeError(f"not a receipt event: {event.kind}")
