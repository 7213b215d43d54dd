"""The whole platform as one fold: every aggregate, the account book and the indexes the rules need.

Aggregates are folded by their pure appliers; :class:`World` adds what no single aggregate can see:
account balances across plans (and the rule that ``client:*``/``trader:*`` never go below zero
available), each trader's active orders (the scheduler's capacity rule), the rating history (the
rating formula) and which orders used which receipt file. The generator, the simulator and the
per-event replay all fold through :meth:`World.apply`, so they cannot disagree on a rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import client, ledger, payment_order, payout, rating, receipt, trader
from .aggregate import AggregateState
from .catalog import upcast_event
from .clock import clock_violations
from .events import Event
from .money import fits_int64, format_money
from .violations import (
    AMOUNT_OVERFLOW,
    CONFLICTING_DUPLICATE,
    NEGATIVE_AVAILABLE,
    SEQUENCE_GAP,
    Violation,
)

Applier = Callable[[Any, Event], AggregateState]

APPLIERS: dict[str, Applier] = {
    "client": client.apply,
    "trader": trader.apply,
    "payment_order": payment_order.apply,
    "receipt": receipt.apply,
    "payout": payout.apply,
    "ledger_plan": ledger.apply,
    "trader_rating": rating.apply,
}


@dataclass
class World:
    """Current state of every aggregate, folded from events in ``position`` order."""

    aggregates: dict[str, dict[str, AggregateState]] = field(
        default_factory=lambda: {stream: {} for stream in APPLIERS}
    )
    book: ledger.AccountBook = field(default_factory=ledger.AccountBook)
    history: rating.RatingHistory = field(default_factory=rating.RatingHistory)
    active_orders: dict[str, set[str]] = field(default_factory=dict)
    orders_by_receipt_file: dict[str, set[str]] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    #: Money figures already flagged ``AMOUNT_OVERFLOW`` (once each, at the event after which
    #: they first left int64): trader deposits by trader id, ledger accounts by (account, currency).
    overflowed_deposits: set[str] = field(default_factory=set)
    overflowed_accounts: set[tuple[str, str]] = field(default_factory=set)
    #: Every ``trader_rating.published`` applied, in order (the rating state keeps only the
    #: latest one; the replay's ``trader_ratings`` table lists them all). The events themselves,
    #: so keeping them costs one reference each.
    published_ratings: list[Event] = field(default_factory=list)
    events_applied: int = 0
    ratings_applied: int = 0  # bumps on every published rating: scores may have changed

    # ------------------------------------------------------------------ typed accessors
    @property
    def clients(self) -> dict[str, client.ClientState]:
        return self.aggregates["client"]  # type: ignore[return-value]

    @property
    def traders(self) -> dict[str, trader.TraderState]:
        return self.aggregates["trader"]  # type: ignore[return-value]

    @property
    def orders(self) -> dict[str, payment_order.PaymentOrderState]:
        return self.aggregates["payment_order"]  # type: ignore[return-value]

    @property
    def receipts(self) -> dict[str, receipt.ReceiptState]:
        return self.aggregates["receipt"]  # type: ignore[return-value]

    @property
    def payouts(self) -> dict[str, payout.PayoutState]:
        return self.aggregates["payout"]  # type: ignore[return-value]

    @property
    def plans(self) -> dict[str, ledger.LedgerPlanState]:
        return self.aggregates["ledger_plan"]  # type: ignore[return-value]

    @property
    def ratings(self) -> dict[str, rating.RatingState]:
        return self.aggregates["trader_rating"]  # type: ignore[return-value]

    def version(self, stream: str, aggregate_id: str) -> int:
        """Last ``seq`` applied to an aggregate (0 if it has none yet)."""
        state = self.aggregates[stream].get(aggregate_id)
        return state.version if state else 0

    def score(self, trader_id: str) -> Any:
        """The trader's latest published score, or the catalog's default before any."""
        r = self.ratings.get(trader_id)
        return r.score if r else rating.DEFAULT_SCORE

    def active_count(self, trader_id: str) -> int:
        return len(self.active_orders.get(trader_id, ()))

    def bps_in_force(
        self, client_id: str | None, trader_id: str | None
    ) -> tuple[int | None, int | None]:
        """The client's ``fee_bps`` and the trader's ``reward_bps`` in force now (None where
        there is none): those of the latest ``client.registered`` or ``client.fee_changed`` and of
        the latest ``trader.registered`` folded so far.

        The catalog (section 2) prices an assignment at those in force at its moment: asked just
        before the assignment is folded (events in ``(position, event_id)`` order), this is that
        rule, once. The processors price through it (:func:`.scheduler.pricing_for`); the audit's
        ``audit_fees_in_force`` model is its SQL twin, held to it by
        ``tests/audit/test_fees_in_force.py``.
        """
        c = self.clients.get(client_id or "")
        t = self.traders.get(trader_id or "")
        return (
            c.fee_bps if c is not None else None,
            t.reward_bps if t is not None and t.registered else None,
        )

    # ------------------------------------------------------------------------ folding
    def apply(self, event: Event) -> list[Violation]:
        """Fold one event; returns the violations it produced (also kept in ``violations``)."""
        event = upcast_event(event)
        states = self.aggregates[event.stream]
        before = states.get(event.aggregate_id)
        new = _sequence(before.version if before else 0, event)
        new += clock_violations(event)
        after = APPLIERS[event.stream](before, event)
        states[event.aggregate_id] = after
        new += after.violations[len(before.violations) if before else 0 :]
        if event.stream == "ledger_plan":
            new += self._book(before, event)  # type: ignore[arg-type]
        elif event.stream == "trader" and isinstance(event.payload, trader.DepositMovement):
            new += self._deposit_overflow(after, event)  # type: ignore[arg-type]
        elif event.stream == "payment_order":
            self._index_order(before, after, event)  # type: ignore[arg-type]
        elif event.stream == "trader_rating":
            self.ratings_applied += 1
            self.published_ratings.append(event)
        elif event.stream == "receipt" and isinstance(event.payload, receipt.ReceiptUploaded):
            self.orders_by_receipt_file.setdefault(event.payload.file_sha256, set()).add(
                event.payload.order_id
            )
        self.violations.extend(new)
        self.events_applied += 1
        return new

    def apply_all(self, events: Iterable[Event]) -> World:
        for event in events:
            self.apply(event)
        return self

    def _book(self, before: ledger.LedgerPlanState | None, event: Event) -> list[Violation]:
        touched = self.book.apply(ledger.balance_effects(before, event))
        out = [
            Violation(
                NEGATIVE_AVAILABLE,
                event.event_id,
                bal.account,
                f"{bal.account} available {format_money(bal.available, bal.currency)} < 0 "
                f"(own {format_money(bal.own, bal.currency)}, "
                f"held {format_money(bal.held, bal.currency)}) "
                f"after {event.kind} of {event.aggregate_id}",
            )
            for bal in touched
            if ledger.is_guarded(bal.account) and bal.available < 0
        ]
        for bal in touched:
            key = (bal.account, bal.currency)
            figures = (("own", bal.own), ("held", bal.held), ("available", bal.available))
            past = [name for name, value in figures if not fits_int64(value)]
            if past and key not in self.overflowed_accounts:
                self.overflowed_accounts.add(key)
                out.append(
                    Violation(
                        AMOUNT_OVERFLOW,
                        event.event_id,
                        bal.account,
                        f"{bal.account} {bal.currency} own {bal.own}, held {bal.held}, "
                        f"available {bal.available} after {event.kind} of {event.aggregate_id}: "
                        f"{', '.join(past)} outside the int64 range",
                    )
                )
        return out

    def _deposit_overflow(self, s: trader.TraderState, event: Event) -> list[Violation]:
        """``AMOUNT_OVERFLOW`` the first time a trader's deposit figures leave int64."""
        held = s.held
        figures = (("deposit_balance", s.balance), ("held", held), ("available", s.balance - held))
        past = [name for name, value in figures if not fits_int64(value)]
        if not past or s.aggregate_id in self.overflowed_deposits:
            return []
        self.overflowed_deposits.add(s.aggregate_id)
        p = event.payload
        assert isinstance(p, trader.DepositMovement)
        return [
            Violation(
                AMOUNT_OVERFLOW,
                event.event_id,
                event.subject,
                f"deposit_balance {s.balance}, held {held}, available {s.balance - held} after "
                f"{event.kind} of {p.ref}: {', '.join(past)} outside the int64 range",
            )
        ]

    def _index_order(
        self,
        before: payment_order.PaymentOrderState | None,
        after: payment_order.PaymentOrderState,
        event: Event,
    ) -> None:
        oid = event.aggregate_id
        if (
            before is not None
            and before.status in payment_order.ACTIVE_STATUSES
            and before.trader_id
        ):
            self.active_orders.get(before.trader_id, set()).discard(oid)
        if after.status in payment_order.ACTIVE_STATUSES and after.trader_id:
            self.active_orders.setdefault(after.trader_id, set()).add(oid)
        p = event.payload
        if isinstance(p, payment_order.OrderAssigned):
            self.history.assigned(p.trader_id, event.occurred_at)
        elif isinstance(p, payment_order.OrderCompleted):
            accepted = next(
                (a for a in reversed(after.attempts) if a.trader_id == p.trader_id), None
            )
            self.history.completed(
                p.trader_id, event.occurred_at, accepted.complete_by if accepted else None
            )
        elif isinstance(p, payment_order.OrderDisputed) and after.completed_by:
            self.history.disputed(after.completed_by, event.occurred_at)


def _sequence(version: int, event: Event) -> list[Violation]:
    """``seq`` is 1-based and contiguous per aggregate (catalog section 1)."""
    expected = version + 1
    if event.seq == expected:
        return []
    if event.seq > expected:
        missing = (
            f"seq {expected}" if event.seq == expected + 1 else f"seq {expected}..{event.seq - 1}"
        )
        return [
            Violation(
                SEQUENCE_GAP,
                event.event_id,
                event.subject,
                f"{missing} missing before seq {event.seq}",
            )
        ]
    return [
        Violation(
            CONFLICTING_DUPLICATE,
            event.event_id,
            event.subject,
            f"seq {event.seq} was already taken (the aggregate is at seq {version})",
        )
    ]


def fold(events: Iterable[Event]) -> World:
    """A world folded from events (in the order given: sort by ``position`` first)."""
    return World().apply_all(events)
