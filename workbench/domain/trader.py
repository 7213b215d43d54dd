"""The ``trader`` stream (catalog 3.2): limits, presence, blocking and the deposit with its holds.

The trader service's own view of the deposit is ``balance``, ``held`` (open holds by ``ref``) and
``available = balance - held``; the scheduler's deposit rule reads ``available``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from .aggregate import AggregateState
from .events import Currency, Event, Int32, Int64, Payload, PositiveAmount
from .violations import INVALID_TRANSITION, TRADER_LEDGER_DRIFT


class Limits(Payload):
    min_amount: Int64
    max_amount: Int64
    max_active_orders: Int32


class TraderRegisteredV1(Payload):
    KIND = "trader.registered"
    VERSION = 1
    name: str
    fiat_currency: Currency
    settlement_currency: Currency
    min_amount: Int64
    max_amount: Int64
    max_active_orders: Int32
    reward_bps: Int32


class TraderRegistered(Payload):
    """``trader.registered`` v2, the version everything past decoding sees."""

    KIND = "trader.registered"
    VERSION = 2
    name: str
    fiat_currency: Currency
    settlement_currency: Currency
    limits: Limits
    reward_bps: Int32
    country: str | None


def upcast_registered_v1(p: TraderRegisteredV1) -> TraderRegistered:
    """v1 → v2: the limits become one object; the country was never asked, so it is null."""
    return TraderRegistered(
        name=p.name,
        fiat_currency=p.fiat_currency,
        settlement_currency=p.settlement_currency,
        limits=Limits(
            min_amount=p.min_amount, max_amount=p.max_amount, max_active_orders=p.max_active_orders
        ),
        reward_bps=p.reward_bps,
        country=None,
    )


class TraderLimitsChanged(Payload):
    KIND = "trader.limits_changed"
    min_amount: Int64
    max_amount: Int64
    max_active_orders: Int32


class TraderWentOnline(Payload):
    KIND = "trader.went_online"


class TraderWentOffline(Payload):
    KIND = "trader.went_offline"


class TraderBlocked(Payload):
    KIND = "trader.blocked"
    reason: str


class TraderUnblocked(Payload):
    KIND = "trader.unblocked"


class DepositMovement(Payload):
    """Shape shared by the deposit events: which ledger plan (``ref``) and how much."""

    ref: str
    amount: Int64


class DepositToppedUp(DepositMovement):
    KIND = "trader.deposit_topped_up"
    amount: PositiveAmount


class HoldPlaced(DepositMovement):
    KIND = "trader.hold_placed"


class HoldReleased(DepositMovement):
    KIND = "trader.hold_released"


class HoldCaptured(DepositMovement):
    KIND = "trader.hold_captured"


class DepositCredited(DepositMovement):
    KIND = "trader.deposit_credited"


class DepositDebited(DepositMovement):
    KIND = "trader.deposit_debited"


PAYLOADS: tuple[type[Payload], ...] = (
    TraderRegisteredV1,
    TraderRegistered,
    TraderLimitsChanged,
    TraderWentOnline,
    TraderWentOffline,
    TraderBlocked,
    TraderUnblocked,
    DepositToppedUp,
    HoldPlaced,
    HoldReleased,
    HoldCaptured,
    DepositCredited,
    DepositDebited,
)

_EMPTY: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True)
class TraderState(AggregateState):
    registered: bool = False
    name: str | None = None
    fiat_currency: str | None = None
    settlement_currency: str | None = None
    country: str | None = None
    min_amount: int = 0
    max_amount: int = 0
    max_active_orders: int = 0
    reward_bps: int = 0
    online: bool = False
    blocked: bool = False
    balance: int = 0
    holds: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    registered_at: datetime | None = None  # ``occurred_at`` of the first registration applied

    @property
    def held(self) -> int:
        return sum(self.holds.values())

    @property
    def available(self) -> int:
        return self.balance - self.held


def _without(holds: Mapping[str, int], ref: str) -> Mapping[str, int]:
    return MappingProxyType({k: v for k, v in holds.items() if k != ref})


def _end_hold(s: TraderState, event: Event, p: DepositMovement, verb: str) -> TraderState:
    """Release or capture: the hold must exist and the amount must be the held amount."""
    held = s.holds.get(p.ref)
    if held is None:
        s = s.flag(event, INVALID_TRANSITION, f"{verb} of {p.ref}, which has no open hold")
    elif held != p.amount:
        s = s.flag(event, TRADER_LEDGER_DRIFT, f"{verb} {p.amount} of {p.ref}, but {held} was held")
    return s


def apply(state: TraderState | None, event: Event) -> TraderState:
    """Fold one trader event; anything before registration, and hold misuse, is flagged."""
    s = state or TraderState(event.aggregate_id)
    p = event.payload
    if isinstance(p, TraderRegistered):
        if s.registered:
            s = s.illegal(event, "registered")
        return s.advanced(
            event,
            registered=True,
            name=p.name,
            fiat_currency=p.fiat_currency,
            settlement_currency=p.settlement_currency,
            country=p.country,
            min_amount=p.limits.min_amount,
            max_amount=p.limits.max_amount,
            max_active_orders=p.limits.max_active_orders,
            reward_bps=p.reward_bps,
            registered_at=s.registered_at or event.occurred_at,
        )
    if not s.registered:
        s = s.illegal(event, "unregistered")
    if isinstance(p, TraderLimitsChanged):
        return s.advanced(
            event,
            min_amount=p.min_amount,
            max_amount=p.max_amount,
            max_active_orders=p.max_active_orders,
        )
    if isinstance(p, TraderWentOnline):
        return s.advanced(event, online=True)
    if isinstance(p, TraderWentOffline):
        return s.advanced(event, online=False)
    if isinstance(p, TraderBlocked):
        if s.blocked:
            s = s.illegal(event, "blocked")
        return s.advanced(event, blocked=True)
    if isinstance(p, TraderUnblocked):
        if not s.blocked:
            s = s.illegal(event, "active")
        return s.advanced(event, blocked=False)
    if isinstance(p, DepositToppedUp | DepositCredited):
        return s.advanced(event, balance=s.balance + p.amount)
    if isinstance(p, DepositDebited):
        return s.advanced(event, balance=s.balance - p.amount)
    if isinstance(p, HoldPlaced):
        if p.ref in s.holds:
            s = s.flag(event, INVALID_TRANSITION, f"a hold on {p.ref} is already open")
        return s.advanced(event, holds=MappingProxyType({**s.holds, p.ref: p.amount}))
    if isinstance(p, HoldReleased):
        s = _end_hold(s, event, p, "release")
        return s.advanced(event, holds=_without(s.holds, p.ref))
    if isinstance(p, HoldCaptured):
        s = _end_hold(s, event, p, "capture")
        return s.advanced(event, balance=s.balance - p.amount, holds=_without(s.holds, p.ref))
    raise TypeError(f"not a trader event: {event.kind}")
