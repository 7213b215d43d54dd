"""The ``client`` stream (catalog 3.1): merchants, their settlement currency and fee."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .aggregate import AggregateState
from .events import Currency, Event, Int32, Payload


class ClientRegistered(Payload):
    KIND = "client.registered"
    name: str
    settlement_currency: Currency
    fee_bps: Int32


class ClientFeeChanged(Payload):
    KIND = "client.fee_changed"
    fee_bps: Int32


PAYLOADS: tuple[type[Payload], ...] = (ClientRegistered, ClientFeeChanged)


@dataclass(frozen=True)
class ClientState(AggregateState):
    registered: bool = False
    name: str | None = None
    settlement_currency: str | None = None
    fee_bps: int | None = None
    registered_at: datetime | None = None  # ``occurred_at`` of the first registration applied


def apply(state: ClientState | None, event: Event) -> ClientState:
    """Fold one client event; a second registration or a change before one is flagged."""
    s = state or ClientState(event.aggregate_id)
    p = event.payload
    if isinstance(p, ClientRegistered):
        if s.registered:
            s = s.illegal(event, "registered")
        return s.advanced(
            event,
            registered=True,
            name=p.name,
            settlement_currency=p.settlement_currency,
            fee_bps=p.fee_bps,
            registered_at=s.registered_at or event.occurred_at,
        )
    if isinstance(p, ClientFeeChanged):
        if not s.registered:
            s = s.illegal(event, "unregistered")
        return s.advanced(event, fee_bps=p.fee_bps)
    raise TypeError(f"not a client event: {event.kind}")
