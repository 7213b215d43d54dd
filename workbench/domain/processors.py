"""Processors: commands in, catalog events out (the platform's own services, in miniature).

:class:`Platform` holds a :class:`~workbench.domain.world.World` and turns each command into the
events the platform would write for it, with the ledger plan and the trader-stream moves that go
with it, then folds them into the world. The generator and the simulator produce events only
through here, so everything they write speaks the catalog.

A command that breaks a rule raises :class:`CommandRejected` naming the rules. The generator
plants anomalies on purpose with ``check=False`` (or explicit overrides), which books exactly what
was asked and nothing else; the events still go through the same appliers, which flag them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from . import bookings as bk
from . import ledger, payment_order, payout, rating, receipt, trader
from .client import ClientFeeChanged, ClientRegistered
from .events import Event, Payload
from .money import OrderPricing
from .payment_order import CancelReason, Direction, PaymentOrderState, ReviewReason
from .scheduler import Deadlines, broken_rules, pricing_for
from .world import World

# Version 4 and the RFC 4122 variant, set on 128 random bits (what uuid.UUID(version=4) does).
_UUID4_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_BITS = (0x4000 << 64) | (0x8000 << 48)


class CommandRejected(Exception):
    """A command the platform would refuse; ``rules`` names what it breaks."""

    def __init__(self, command: str, rules: Sequence[str], detail: str = "") -> None:
        self.command = command
        self.rules = tuple(rules)
        super().__init__(
            f"{command} rejected: {', '.join(rules)}" + (f" ({detail})" if detail else "")
        )


@dataclass
class IdSource:
    """Deterministic event ids, positions and batch ids from one seeded generator."""

    seed: int = 0
    position: int = 0
    batch_id: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def event_id(self) -> str:
        """A random (version 4) UUID drawn from the seeded generator."""
        h = f"{(self.rng.getrandbits(128) & _UUID4_MASK) | _UUID4_BITS:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def next_position(self) -> int:
        self.position += 1
        return self.position

    def next_batch_id(self) -> int:
        self.batch_id += 1
        return self.batch_id

    def jitter(self) -> timedelta:
        """Store latency between business time and the event store's write."""
        return timedelta(microseconds=self.rng.randrange(1, 900_000))


class Platform:
    """The platform's services behind one command interface, folding into one world."""

    def __init__(
        self,
        world: World | None = None,
        ids: IdSource | None = None,
        deadlines: Deadlines | None = None,
    ) -> None:
        self.world = world or World()
        self.ids = ids or IdSource()
        self.deadlines = deadlines or Deadlines()
        self.log: list[Event] = []
        self._tamper: dict[str, list[Callable[[Payload], Payload]]] = {}
        self._seq_skips: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------- planting anomalies
    @contextmanager
    def tampered(self, kind: str, change: Callable[[Payload], Payload]) -> Iterator[None]:
        """Within the block, the next event of ``kind`` is written with ``change(payload)``.

        This is how a history gets a planted anomaly that the platform's services would never
        write (a wrong amount on one event, say) while everything else is booked as usual.
        """
        self._tamper.setdefault(kind, []).append(change)
        try:
            yield
        finally:
            pending = self._tamper.get(kind)
            if pending and change in pending:
                pending.remove(change)

    def skip_seq(self, stream: str, aggregate_id: str, by: int = 1) -> None:
        """Leave a hole of ``by`` in the aggregate's ``seq`` before its next event."""
        self._seq_skips[(stream, aggregate_id)] = by

    # ------------------------------------------------------------------------ emitting
    def _emit(
        self,
        stream: str,
        aggregate_id: str,
        payload: Payload,
        at: datetime,
        correlation: str | None,
        cause: Event | None = None,
        recorded_after: datetime | None = None,
    ) -> Event:
        if self._tamper:
            pending = self._tamper.get(payload.KIND)
            if pending:
                payload = pending.pop(0)(payload)
        seq = self.world.version(stream, aggregate_id) + 1
        if self._seq_skips:
            seq += self._seq_skips.pop((stream, aggregate_id), 0)
        recorded = max(at, recorded_after or at) + self.ids.jitter()
        event = Event(
            event_id=self.ids.event_id(),
            position=self.ids.next_position(),
            stream=stream,
            aggregate_id=aggregate_id,
            seq=seq,
            kind=payload.KIND,
            schema_version=payload.VERSION,
            occurred_at=at,
            recorded_at=recorded,
            correlation_id=correlation,
            causation_id=cause.event_id if cause else None,
            payload=payload,
        )
        self.world.apply(event)
        self.log.append(event)
        return event

    def _chain(self, first: Event) -> _Chain:
        return _Chain(self, first)

    # -------------------------------------------------------------------------- helpers
    def order(self, order_id: str) -> PaymentOrderState:
        o = self.world.orders.get(order_id)
        if o is None or o.status is None:
            raise CommandRejected("order", ["unknown_order"], order_id)
        return o

    @staticmethod
    def _require(command: str, ok: bool, rule: str, detail: str = "") -> None:
        if not ok:
            raise CommandRejected(command, [rule], detail)

    def _book_plan(
        self,
        chain: _Chain,
        plan_id: str,
        moves: list[bk.Move],
        at: datetime,
        corr: str,
        *,
        split: bool = False,
        commit: bool = False,
    ) -> list[int]:
        """Hold a plan (in one batch, or one batch per posting with ``split``), maybe commit it."""
        groups = [[m] for m in moves] if split else [moves]
        batch_ids: list[int] = []
        for group in groups:
            bid = self.ids.next_batch_id()
            batch_ids.append(bid)
            chain.emit(
                "ledger_plan",
                plan_id,
                ledger.BatchHeld.model_validate(
                    {"batch_id": bid, "postings": [m.as_payload() for m in group]}
                ),
                at,
                corr,
            )
        if commit:
            chain.emit("ledger_plan", plan_id, ledger.PlanCommitted(batch_ids=batch_ids), at, corr)
        return batch_ids

    def _end_plan(
        self, chain: _Chain, plan_id: str, at: datetime, corr: str, *, commit: bool
    ) -> None:
        plan = self.world.plans.get(plan_id)
        ids = list(plan.open_batch_ids) if plan else []
        payload: Payload = (
            ledger.PlanCommitted(batch_ids=ids) if commit else ledger.PlanRolledBack(batch_ids=ids)
        )
        chain.emit("ledger_plan", plan_id, payload, at, corr)

    # --------------------------------------------------------------------------- client
    def register_client(
        self, client_id: str, name: str, settlement_currency: str, fee_bps: int, at: datetime
    ) -> list[Event]:
        self._require(
            "register_client", client_id not in self.world.clients, "already_registered", client_id
        )
        p = ClientRegistered(name=name, settlement_currency=settlement_currency, fee_bps=fee_bps)
        return [self._emit("client", client_id, p, at, None)]

    def change_client_fee(self, client_id: str, fee_bps: int, at: datetime) -> list[Event]:
        self._require(
            "change_client_fee", client_id in self.world.clients, "unknown_client", client_id
        )
        return [self._emit("client", client_id, ClientFeeChanged(fee_bps=fee_bps), at, None)]

    def top_up_client(
        self, client_id: str, topup_id: str, amount: int, at: datetime
    ) -> list[Event]:
        c = self.world.clients.get(client_id)
        self._require(
            "top_up_client",
            c is not None and c.settlement_currency is not None,
            "unknown_client",
            client_id,
        )
        assert c is not None and c.settlement_currency is not None
        plan_id = bk.topup_plan_id(topup_id)
        chain = _Chain(self, None)
        self._book_plan(
            chain,
            plan_id,
            bk.topup_moves(bk.client_account(client_id), amount, c.settlement_currency),
            at,
            plan_id,
            commit=True,
        )
        return chain.events

    # --------------------------------------------------------------------------- trader
    def register_trader(
        self,
        trader_id: str,
        name: str,
        fiat_currency: str,
        settlement_currency: str,
        min_amount: int,
        max_amount: int,
        max_active_orders: int,
        reward_bps: int,
        at: datetime,
        *,
        country: str | None = None,
        version: int = 2,
    ) -> list[Event]:
        self._require(
            "register_trader", trader_id not in self.world.traders, "already_registered", trader_id
        )
        common: dict[str, Any] = {
            "name": name,
            "fiat_currency": fiat_currency,
            "settlement_currency": settlement_currency,
            "reward_bps": reward_bps,
        }
        limits = {
            "min_amount": min_amount,
            "max_amount": max_amount,
            "max_active_orders": max_active_orders,
        }
        p: Payload
        if version == 1:
            p = trader.TraderRegisteredV1.model_validate({**common, **limits})
        else:
            p = trader.TraderRegistered.model_validate(
                {**common, "limits": limits, "country": country}
            )
        return [self._emit("trader", trader_id, p, at, None)]

    def _trader(self, command: str, trader_id: str) -> trader.TraderState:
        t = self.world.traders.get(trader_id)
        self._require(command, t is not None and t.registered, "unknown_trader", trader_id)
        assert t is not None
        return t

    def change_limits(
        self, trader_id: str, min_amount: int, max_amount: int, max_active_orders: int, at: datetime
    ) -> list[Event]:
        self._trader("change_limits", trader_id)
        p = trader.TraderLimitsChanged(
            min_amount=min_amount, max_amount=max_amount, max_active_orders=max_active_orders
        )
        return [self._emit("trader", trader_id, p, at, None)]

    def go_online(self, trader_id: str, at: datetime) -> list[Event]:
        self._trader("go_online", trader_id)
        return [self._emit("trader", trader_id, trader.TraderWentOnline(), at, None)]

    def go_offline(self, trader_id: str, at: datetime) -> list[Event]:
        self._trader("go_offline", trader_id)
        return [self._emit("trader", trader_id, trader.TraderWentOffline(), at, None)]

    def block_trader(
        self, trader_id: str, reason: str, at: datetime, *, check: bool = True
    ) -> list[Event]:
        t = self._trader("block_trader", trader_id)
        if check:
            self._require("block_trader", not t.blocked, "already_blocked", trader_id)
        return [self._emit("trader", trader_id, trader.TraderBlocked(reason=reason), at, None)]

    def unblock_trader(self, trader_id: str, at: datetime, *, check: bool = True) -> list[Event]:
        t = self._trader("unblock_trader", trader_id)
        if check:
            self._require("unblock_trader", t.blocked, "not_blocked", trader_id)
        return [self._emit("trader", trader_id, trader.TraderUnblocked(), at, None)]

    def top_up_trader(
        self, trader_id: str, topup_id: str, amount: int, at: datetime
    ) -> list[Event]:
        t = self._trader("top_up_trader", trader_id)
        assert t.settlement_currency is not None
        plan_id = bk.topup_plan_id(topup_id)
        chain = _Chain(self, None)
        self._book_plan(
            chain,
            plan_id,
            bk.topup_moves(bk.trader_account(trader_id), amount, t.settlement_currency),
            at,
            plan_id,
            commit=True,
        )
        chain.emit(
            "trader", trader_id, trader.DepositToppedUp(ref=plan_id, amount=amount), at, plan_id
        )
        return chain.events

    # ---------------------------------------------------------------------------- order
    def create_order(
        self,
        order_id: str,
        client_id: str,
        direction: Direction,
        amount: int,
        currency: str,
        client_ref: str,
        at: datetime,
        *,
        channel: Literal["card", "sbp"] = "card",
        version: int = 2,
        expires_at: datetime | None = None,
    ) -> list[Event]:
        self._require(
            "create_order", order_id not in self.world.orders, "duplicate_order", order_id
        )
        self._require("create_order", client_id in self.world.clients, "unknown_client", client_id)
        expires = expires_at or at + self.deadlines.expire
        p: Payload
        if version == 1:
            p = payment_order.OrderCreatedV1(
                client_id=client_id,
                direction=direction,
                amount=amount,
                currency=currency,
                client_ref=client_ref,
                expires_at=expires,
            )
        else:
            p = payment_order.OrderCreated.model_validate(
                {
                    "client_id": client_id,
                    "direction": direction,
                    "money": {"amount": amount, "currency": currency},
                    "client_ref": client_ref,
                    "expires_at": expires,
                    "channel": channel,
                }
            )
        return [self._emit("payment_order", order_id, p, at, f"order:{order_id}")]

    def assign(
        self,
        order_id: str,
        trader_id: str,
        rate: str,
        at: datetime,
        *,
        check: bool = True,
        pricing: OrderPricing | None = None,
        split_batches: bool = False,
        accept_by: datetime | None = None,
        book: bool = True,
    ) -> list[Event]:
        """Assign an order: the assignment, its plan held, and for a payin the deposit hold."""
        o = self.order(order_id)
        t = self._trader("assign", trader_id)
        computed = pricing_for(self.world, o, trader_id, rate)
        if check:
            self._require(
                "assign",
                o.status == payment_order.PENDING,
                "order_not_pending",
                f"{order_id} is {o.status}",
            )
            broken = broken_rules(self.world, o, trader_id, computed)
            if broken:
                raise CommandRejected("assign", broken, f"{order_id} → {trader_id}")
        price = pricing or computed
        if price is None:
            raise CommandRejected("assign", ["unpriceable"], order_id)
        assert (
            o.direction is not None
            and o.client_id is not None
            and t.settlement_currency is not None
        )
        attempt = len(o.attempts) + 1
        corr = f"order:{order_id}"
        payload = payment_order.OrderAssigned(
            trader_id=trader_id,
            attempt=attempt,
            rate=rate,
            settlement_currency=t.settlement_currency,
            settlement_amount=price.settlement_amount,
            platform_fee=price.platform_fee,
            trader_reward=price.trader_reward,
            accept_by=accept_by or at + self.deadlines.accept,
        )
        chain = self._chain(self._emit("payment_order", order_id, payload, at, corr))
        if book:
            moves = bk.order_moves(
                o.direction, o.client_id, trader_id, price, t.settlement_currency
            )
            self._book_plan(
                chain, bk.order_plan_id(order_id, attempt), moves, at, corr, split=split_batches
            )
            hold = bk.trader_hold_at_assignment(o.direction, price)
            if hold is not None:
                chain.emit(
                    "trader",
                    trader_id,
                    trader.HoldPlaced(ref=bk.order_plan_id(order_id, attempt), amount=hold),
                    at,
                    corr,
                )
        return chain.events

    def accept(
        self,
        order_id: str,
        at: datetime,
        *,
        check: bool = True,
        complete_by: datetime | None = None,
    ) -> list[Event]:
        o = self.order(order_id)
        cur = o.open_attempt
        if check:
            self._require(
                "accept",
                o.status == payment_order.ASSIGNED and cur is not None,
                "order_not_assigned",
                f"{order_id} is {o.status}",
            )
            assert cur is not None
            self._require("accept", at <= cur.accept_by, "accept_deadline_passed", order_id)
        trader_id = cur.trader_id if cur else (o.trader_id or "")
        p = payment_order.OrderAccepted(
            trader_id=trader_id, complete_by=complete_by or at + self.deadlines.complete
        )
        return [self._emit("payment_order", order_id, p, at, f"order:{order_id}")]

    def _end_attempt(
        self,
        chain: _Chain,
        o: PaymentOrderState,
        attempt: payment_order.Attempt,
        at: datetime,
        *,
        commit: bool,
    ) -> None:
        """Book the end of an attempt: its plan committed or rolled back, the deposit moved."""
        corr = f"order:{o.aggregate_id}"
        plan_id = bk.order_plan_id(o.aggregate_id, attempt.attempt)
        self._end_plan(chain, plan_id, at, corr, commit=commit)
        price = OrderPricing(attempt.settlement_amount, attempt.platform_fee, attempt.trader_reward)
        assert o.direction is not None
        hold = bk.trader_hold_at_assignment(o.direction, price)
        if hold is not None:
            cls = trader.HoldCaptured if commit else trader.HoldReleased
            chain.emit("trader", attempt.trader_id, cls(ref=plan_id, amount=hold), at, corr)
        elif commit:
            credit = bk.trader_credit_at_completion(o.direction, price)
            assert credit is not None
            chain.emit(
                "trader",
                attempt.trader_id,
                trader.DepositCredited(ref=plan_id, amount=credit),
                at,
                corr,
            )

    def decline(
        self, order_id: str, reason: str, at: datetime, *, book: bool = True
    ) -> list[Event]:
        """The trader says no: the attempt ends, its plan is rolled back, the hold released."""
        return self._end_assignment(
            "decline",
            order_id,
            at,
            book,
            lambda tid: payment_order.AssignmentDeclined(trader_id=tid, reason=reason),
        )

    def expire_assignment(self, order_id: str, at: datetime, *, book: bool = True) -> list[Event]:
        """Not accepted by ``accept_by``: the scheduler ends the attempt as a decline would."""
        return self._end_assignment(
            "expire_assignment",
            order_id,
            at,
            book,
            lambda tid: payment_order.AssignmentExpired(trader_id=tid),
        )

    def _end_assignment(
        self,
        command: str,
        order_id: str,
        at: datetime,
        book: bool,
        payload: Callable[[str], Payload],
    ) -> list[Event]:
        o = self.order(order_id)
        cur = o.open_attempt
        self._require(
            command,
            o.status == payment_order.ASSIGNED and cur is not None,
            "order_not_assigned",
            order_id,
        )
        assert cur is not None
        chain = self._chain(
            self._emit("payment_order", order_id, payload(cur.trader_id), at, f"order:{order_id}")
        )
        if book:
            self._end_attempt(chain, o, cur, at, commit=False)
        return chain.events

    def start_review(self, order_id: str, reason: ReviewReason, at: datetime) -> list[Event]:
        o = self.order(order_id)
        self._require(
            "start_review", o.status == payment_order.IN_PROGRESS, "order_not_in_progress", order_id
        )
        return [
            self._emit(
                "payment_order",
                order_id,
                payment_order.ReviewStarted(reason=reason),
                at,
                f"order:{order_id}",
            )
        ]

    def complete(
        self,
        order_id: str,
        at: datetime,
        *,
        check: bool = True,
        paid_amount: int | None = None,
        book: bool = True,
    ) -> list[Event]:
        """Complete on the current attempt: the order, its plan committed, the deposit moved."""
        o = self.order(order_id)
        cur = o.open_attempt
        if check:
            self._require(
                "complete",
                o.status in (payment_order.IN_PROGRESS, payment_order.IN_REVIEW)
                and cur is not None,
                "order_not_in_progress",
                f"{order_id} is {o.status}",
            )
            if o.direction == "payout":
                self._require(
                    "complete", self.approved_receipt(o) is not None, "receipt_missing", order_id
                )
        trader_id = cur.trader_id if cur else (o.trader_id or "")
        p = payment_order.OrderCompleted(
            trader_id=trader_id, paid_amount=o.amount if paid_amount is None else paid_amount
        )
        chain = self._chain(self._emit("payment_order", order_id, p, at, f"order:{order_id}"))
        if book and cur is not None:
            self._end_attempt(chain, o, cur, at, commit=True)
        return chain.events

    def approved_receipt(self, o: PaymentOrderState) -> receipt.ReceiptState | None:
        """An approved receipt of this order whose amount and currency equal the order's."""
        for rid in o.receipt_ids:
            r = self.world.receipts.get(rid)
            if (
                r
                and r.status == receipt.APPROVED
                and r.amount == o.amount
                and r.currency == o.currency
            ):
                return r
        return None

    def cancel(
        self, order_id: str, reason: CancelReason, at: datetime, *, book: bool = True
    ) -> list[Event]:
        o = self.order(order_id)
        self._require(
            "cancel",
            o.status in payment_order.ALLOWED
            and "payment_order.cancelled" in payment_order.ALLOWED[o.status],
            "order_final",
            f"{order_id} is {o.status}",
        )
        chain = self._chain(
            self._emit(
                "payment_order",
                order_id,
                payment_order.OrderCancelled(reason=reason),
                at,
                f"order:{order_id}",
            )
        )
        cur = o.open_attempt
        if book and cur is not None:
            self._end_attempt(chain, o, cur, at, commit=False)
        return chain.events

    def dispute(self, order_id: str, reason: str, at: datetime) -> list[Event]:
        o = self.order(order_id)
        self._require(
            "dispute", o.status in payment_order.FINAL_STATUSES, "order_not_final", order_id
        )
        return [
            self._emit(
                "payment_order",
                order_id,
                payment_order.OrderDisputed(reason=reason),
                at,
                f"order:{order_id}",
            )
        ]

    def resolve_dispute(
        self,
        order_id: str,
        outcome: Literal["upheld", "reversed"],
        note: str,
        at: datetime,
        *,
        book: bool = True,
    ) -> list[Event]:
        """Resolve a dispute; reversing a completed order books the reverse plan at once."""
        o = self.order(order_id)
        self._require(
            "resolve_dispute", o.status == payment_order.DISPUTED, "order_not_disputed", order_id
        )
        corr = f"order:{order_id}"
        chain = self._chain(
            self._emit(
                "payment_order",
                order_id,
                payment_order.DisputeResolved(outcome=outcome, note=note),
                at,
                corr,
            )
        )
        if book and outcome == "reversed" and o.status_before_dispute == payment_order.COMPLETED:
            done = next((a for a in reversed(o.attempts) if a.outcome == "completed"), None)
            plan = self.world.plans.get(bk.order_plan_id(order_id, done.attempt)) if done else None
            if done is not None and plan is not None and o.direction is not None:
                moves = [
                    bk.Move(p.from_, p.to, p.amount, p.currency, p.description).swapped()
                    for p in plan.postings()
                ]
                self._book_plan(chain, bk.reverse_plan_id(order_id), moves, at, corr, commit=True)
                price = OrderPricing(done.settlement_amount, done.platform_fee, done.trader_reward)
                kind, amount = bk.reversal_deposit_move(o.direction, price)
                cls = (
                    trader.DepositCredited
                    if kind == "trader.deposit_credited"
                    else trader.DepositDebited
                )
                chain.emit(
                    "trader",
                    done.trader_id,
                    cls(ref=bk.reverse_plan_id(order_id), amount=amount),
                    at,
                    corr,
                )
        return chain.events

    # -------------------------------------------------------------------------- receipt
    def upload_receipt(
        self,
        receipt_id: str,
        order_id: str,
        amount: int,
        currency: str,
        paid_at: datetime,
        bank: str,
        file_sha256: str,
        at: datetime,
    ) -> list[Event]:
        o = self.order(order_id)
        self._require(
            "upload_receipt", receipt_id not in self.world.receipts, "duplicate_receipt", receipt_id
        )
        trader_id = o.trader_id or ""
        corr = f"order:{order_id}"
        up = receipt.ReceiptUploaded(
            order_id=order_id,
            trader_id=trader_id,
            amount=amount,
            currency=currency,
            paid_at=paid_at,
            bank=bank,
            file_sha256=file_sha256,
        )
        chain = self._chain(self._emit("receipt", receipt_id, up, at, corr))
        chain.emit(
            "payment_order",
            order_id,
            payment_order.ReceiptAttached(receipt_id=receipt_id),
            at,
            corr,
        )
        return chain.events

    def analyze_receipt(
        self,
        receipt_id: str,
        extracted_amount: int | None,
        extracted_paid_at: datetime | None,
        confidence: Decimal,
        flags: list[str],
        at: datetime,
        *,
        review: bool = True,
    ) -> list[Event]:
        """Record the OCR result; a doubtful receipt sends its order to review (catalog 4).
        ``review=False`` is a platform that forgot to (a planted ``REVIEW_SKIPPED``)."""
        r = self.world.receipts.get(receipt_id)
        self._require(
            "analyze_receipt",
            r is not None and r.status == receipt.UPLOADED,
            "receipt_not_uploaded",
            receipt_id,
        )
        assert r is not None and r.order_id is not None
        corr = f"order:{r.order_id}"
        p = receipt.ReceiptAnalyzed(
            extracted_amount=extracted_amount,
            extracted_paid_at=extracted_paid_at,
            confidence=confidence,
            flags=flags,
        )
        chain = self._chain(self._emit("receipt", receipt_id, p, at, corr))
        o = self.world.orders.get(r.order_id)
        reason = review_reason(o, r, confidence, extracted_amount)
        if (
            review
            and o is not None
            and reason is not None
            and o.status == payment_order.IN_PROGRESS
        ):
            chain.emit(
                "payment_order", r.order_id, payment_order.ReviewStarted(reason=reason), at, corr
            )
        return chain.events

    def approve_receipt(
        self, receipt_id: str, by: Literal["auto", "reviewer"], at: datetime
    ) -> list[Event]:
        r = self.world.receipts.get(receipt_id)
        self._require(
            "approve_receipt",
            r is not None and r.status == receipt.ANALYZED,
            "receipt_not_analyzed",
            receipt_id,
        )
        assert r is not None
        return [
            self._emit(
                "receipt", receipt_id, receipt.ReceiptApproved(by=by), at, f"order:{r.order_id}"
            )
        ]

    def reject_receipt(self, receipt_id: str, reason: str, at: datetime) -> list[Event]:
        r = self.world.receipts.get(receipt_id)
        self._require(
            "reject_receipt",
            r is not None and r.status == receipt.ANALYZED,
            "receipt_not_analyzed",
            receipt_id,
        )
        assert r is not None
        return [
            self._emit(
                "receipt",
                receipt_id,
                receipt.ReceiptRejected(reason=reason),
                at,
                f"order:{r.order_id}",
            )
        ]

    # --------------------------------------------------------------------------- payout
    def owner_available(self, owner: str, currency: str) -> int:
        """What an owner may withdraw: the ledger's available (and the deposit's, for a trader)."""
        avail = self.world.book.available(owner, currency)
        kind, _, ident = owner.partition(":")
        if kind == "trader":
            t = self.world.traders.get(ident)
            avail = min(avail, t.available if t else 0)
        return avail

    def create_payout(
        self,
        payout_id: str,
        owner: str,
        amount: int,
        fee: int,
        currency: str,
        destination_masked: str,
        at: datetime,
        *,
        check: bool = True,
    ) -> list[Event]:
        self._require(
            "create_payout", payout_id not in self.world.payouts, "duplicate_payout", payout_id
        )
        if check:
            self._require(
                "create_payout",
                self.owner_available(owner, currency) >= amount + fee,
                "insufficient_funds",
                owner,
            )
        plan_id = bk.payout_plan_id(payout_id)
        corr = plan_id
        p = payout.PayoutCreated(
            owner=owner,
            amount=amount,
            fee=fee,
            currency=currency,
            destination_masked=destination_masked,
            plan_id=plan_id,
        )
        chain = self._chain(self._emit("payout", payout_id, p, at, corr))
        self._book_plan(chain, plan_id, bk.payout_moves(owner, amount, fee, currency), at, corr)
        kind, _, ident = owner.partition(":")
        if kind == "trader":
            chain.emit(
                "trader", ident, trader.HoldPlaced(ref=plan_id, amount=amount + fee), at, corr
            )
        return chain.events

    def _payout(self, command: str, payout_id: str, allowed: set[str]) -> payout.PayoutState:
        s = self.world.payouts.get(payout_id)
        self._require(
            command,
            s is not None and s.status in allowed,
            "payout_state",
            f"{payout_id} is {s.status if s else 'unknown'}",
        )
        assert s is not None
        return s

    def mark_payout_paid(self, payout_id: str, bank_ref: str, at: datetime) -> list[Event]:
        self._payout("mark_payout_paid", payout_id, {payout.UNPAID})
        return [
            self._emit(
                "payout",
                payout_id,
                payout.PayoutPaid(bank_ref=bank_ref),
                at,
                bk.payout_plan_id(payout_id),
            )
        ]

    def confirm_payout(self, payout_id: str, at: datetime, *, book: bool = True) -> list[Event]:
        s = self._payout("confirm_payout", payout_id, {payout.UNPAID, payout.PAID})
        assert s.plan_id is not None and s.owner is not None
        chain = self._chain(
            self._emit("payout", payout_id, payout.PayoutConfirmed(), at, s.plan_id)
        )
        if book:
            self._end_payout_plan(chain, s, at, commit=True)
        return chain.events

    def _end_payout_plan(
        self, chain: _Chain, s: payout.PayoutState, at: datetime, *, commit: bool
    ) -> None:
        """The withdrawal's plan committed (confirmed) or rolled back (cancelled before confirmation,
        failed), and a trader owner's hold captured or released with it."""
        assert s.plan_id is not None and s.owner is not None
        self._end_plan(chain, s.plan_id, at, s.plan_id, commit=commit)
        kind, _, ident = s.owner.partition(":")
        if kind == "trader":
            cls = trader.HoldCaptured if commit else trader.HoldReleased
            chain.emit("trader", ident, cls(ref=s.plan_id, amount=s.amount + s.fee), at, s.plan_id)

    def cancel_payout(
        self, payout_id: str, details: str, at: datetime, *, book: bool = True
    ) -> list[Event]:
        """Cancel: roll back before confirmation, or book a revert plan after it."""
        s = self._payout("cancel_payout", payout_id, {payout.UNPAID, payout.PAID, payout.CONFIRMED})
        assert s.plan_id is not None and s.owner is not None and s.currency is not None
        chain = self._chain(
            self._emit("payout", payout_id, payout.PayoutCancelled(details=details), at, s.plan_id)
        )
        kind, _, ident = s.owner.partition(":")
        if not book:
            return chain.events
        if s.status == payout.CONFIRMED:
            revert = bk.revert_plan_id(s.plan_id)
            self._book_plan(
                chain,
                revert,
                bk.payout_revert_moves(s.owner, s.amount, s.fee, s.currency),
                at,
                s.plan_id,
                commit=True,
            )
            if kind == "trader":
                chain.emit(
                    "trader",
                    ident,
                    trader.DepositCredited(ref=revert, amount=s.amount + s.fee),
                    at,
                    s.plan_id,
                )
        else:
            self._end_payout_plan(chain, s, at, commit=False)
        return chain.events

    def fail_payout(self, payout_id: str, error: str, at: datetime) -> list[Event]:
        s = self._payout("fail_payout", payout_id, {payout.UNPAID})
        assert s.plan_id is not None and s.owner is not None
        chain = self._chain(
            self._emit("payout", payout_id, payout.PayoutFailed(error=error), at, s.plan_id)
        )
        self._end_payout_plan(chain, s, at, commit=False)
        return chain.events

    # --------------------------------------------------------------------------- rating
    def publish_rating(
        self,
        trader_id: str,
        as_of: datetime,
        window_days: int,
        at: datetime,
        *,
        score: Decimal | None = None,
    ) -> list[Event]:
        """Publish the catalog formula over the window (``score`` overrides it, for planting)."""
        self._trader("publish_rating", trader_id)
        c = self.world.history.counts(trader_id, as_of, window_days)
        p = rating.RatingPublished(
            as_of=as_of,
            window_days=window_days,
            assignments=c.assignments,
            completed=c.completed,
            on_time=c.on_time,
            disputed=c.disputed,
            score=rating.score(c) if score is None else score,
        )
        return [self._emit("trader_rating", trader_id, p, at, None)]


def review_reason(
    o: PaymentOrderState | None,
    r: receipt.ReceiptState,
    confidence: Decimal,
    extracted_amount: int | None,
) -> ReviewReason | None:
    """Why a receipt sends its order to review, if it does (catalog section 4)."""
    if confidence < receipt.REVIEW_CONFIDENCE:
        return "low_confidence"
    if o is not None and (
        r.amount != o.amount
        or r.currency != o.currency
        or (extracted_amount is not None and extracted_amount != o.amount)
    ):
        return "amount_mismatch"
    return None


class _Chain:
    """Events of one command, each caused by the one before (as the platform links them)."""

    def __init__(self, platform: Platform, first: Event | None) -> None:
        self.platform = platform
        self.events: list[Event] = [first] if first else []

    def emit(
        self, stream: str, aggregate_id: str, payload: Payload, at: datetime, corr: str | None
    ) -> Event:
        last = self.events[-1] if self.events else None
        event = self.platform._emit(
            stream, aggregate_id, payload, at, corr, last, last.recorded_at if last else None
        )
        self.events.append(event)
        return event
