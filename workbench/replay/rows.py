"""The per-event ("reference") path of replay: a folded :class:`World` → rows of every projection.

This is the definition of the projections: each row is read straight off the domain's states
(nothing is recomputed here), laid out in the column order of :mod:`workbench.replay.schema`,
and each table's rows are sorted by the table's key. The columnar SQL path must produce the same
rows.

Values are what DuckDB takes for the declared column types: money and counts are ``int``,
``DECIMAL(18,6)`` is :class:`~decimal.Decimal`, ``TIMESTAMPTZ`` is a UTC-aware ``datetime``,
``VARCHAR[]`` is a ``list`` of ``str``, and an unknown value is ``None``. A summed amount whose
exact value does not fit its ``BIGINT`` column is ``None`` too (and an ``AMOUNT_OVERFLOW``
violation gives the exact value).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ..domain.ledger import HELD
from ..domain.money import as_int64
from ..domain.payment_order import Attempt
from ..domain.rating import RatingPublished
from ..domain.world import World
from .schema import (
    ACCOUNT_BALANCES,
    CLIENTS,
    LEDGER_PLANS,
    LEDGER_POSTINGS,
    ORDER_ATTEMPTS,
    ORDER_REVIEWS,
    PAYMENT_ORDERS,
    PAYOUTS,
    PROJECTIONS,
    RECEIPTS,
    TRADER_RATINGS,
    TRADERS,
    VIOLATIONS,
    Table,
)

Row = tuple[Any, ...]

_SIX_PLACES = Decimal("0.000001")


def _decimal6(value: Decimal | None) -> Decimal | None:
    """A ``DECIMAL(18,6)`` value: exact when it has at most six places (every catalog value
    does), otherwise rounded half-even to six, as the column can hold no more."""
    if value is None:
        return None
    exp = value.as_tuple().exponent
    if isinstance(exp, int) and exp < -6:
        return value.quantize(_SIX_PLACES, rounding=ROUND_HALF_EVEN)
    return value


def clients(world: World) -> Iterable[Row]:
    for s in world.clients.values():
        yield (
            s.aggregate_id,
            s.registered,
            s.name,
            s.settlement_currency,
            s.fee_bps,
            s.registered_at,
            s.updated_at,
            s.version,
        )


def traders(world: World) -> Iterable[Row]:
    active = world.active_orders
    for s in world.traders.values():
        held = s.held
        yield (
            s.aggregate_id,
            s.registered,
            s.name,
            s.fiat_currency,
            s.settlement_currency,
            s.country,
            s.min_amount,
            s.max_amount,
            s.max_active_orders,
            s.reward_bps,
            "blocked" if s.blocked else "active",
            s.online,
            as_int64(s.balance),
            as_int64(held),
            as_int64(s.balance - held),
            len(s.holds),
            len(active.get(s.aggregate_id, ())),
            s.registered_at,
            s.updated_at,
            s.version,
        )


def payment_orders(world: World) -> Iterable[Row]:
    for s in world.orders.values():
        cur: Attempt | None = s.current
        yield (
            s.aggregate_id,
            s.client_id,
            s.direction,
            s.amount,
            s.currency,
            s.client_ref,
            s.channel,
            s.status,
            len(s.attempts),
            cur.attempt if cur else None,
            cur.trader_id if cur else None,
            cur.rate if cur else None,
            cur.settlement_currency if cur else None,
            cur.settlement_amount if cur else None,
            cur.platform_fee if cur else None,
            cur.trader_reward if cur else None,
            s.expires_at,
            cur.accept_by if cur else None,
            cur.complete_by if cur else None,
            s.created_at,
            cur.assigned_at if cur else None,
            cur.accepted_at if cur else None,
            s.review_started_at,
            s.review_reason,
            s.completed_at,
            s.completed_by,
            s.paid_amount,
            s.cancelled_at,
            s.cancel_reason,
            s.disputed_at,
            s.dispute_reason,
            s.resolved_at,
            s.dispute_outcome,
            list(s.receipt_ids),
            s.updated_at,
            s.version,
        )


def order_attempts(world: World) -> Iterable[Row]:
    for s in world.orders.values():
        for a in s.attempts:
            yield (
                s.aggregate_id,
                a.attempt,
                a.trader_id,
                a.rate,
                a.settlement_currency,
                a.settlement_amount,
                a.platform_fee,
                a.trader_reward,
                a.assigned_at,
                a.accept_by,
                a.accepted_at,
                a.complete_by,
                a.ended_at,
                a.outcome,
                a.assigned_event_id,
                a.assigned_pos,
                a.accepted_event_id,
                a.end_event_id,
                a.end_pos,
                a.review_event_id,
                a.review_pos,
            )


def order_reviews(world: World) -> Iterable[Row]:
    for s in world.orders.values():
        for r in s.reviews:
            yield (
                s.aggregate_id,
                r.reason,
                r.start_event_id,
                r.start_pos,
                r.started_at,
                r.end_event_id,
                r.end_kind,
                r.end_pos,
                r.ended_at,
            )


def receipts(world: World) -> Iterable[Row]:
    for s in world.receipts.values():
        yield (
            s.aggregate_id,
            s.order_id,
            s.trader_id,
            s.amount,
            s.currency,
            s.paid_at,
            s.bank,
            s.file_sha256,
            s.status,
            s.uploaded_at,
            s.extracted_amount,
            s.extracted_paid_at,
            _decimal6(s.confidence),
            list(s.flags),
            s.analyzed_at,
            s.approved_by,
            s.reject_reason,
            s.decided_at,
            s.version,
        )


def payouts(world: World) -> Iterable[Row]:
    for s in world.payouts.values():
        yield (
            s.aggregate_id,
            s.owner,
            s.amount,
            s.fee,
            s.currency,
            s.destination_masked,
            s.plan_id,
            s.status,
            s.bank_ref,
            s.created_at,
            s.paid_at,
            s.confirmed_at,
            s.ended_at,
            s.cancelled_from,
            s.details,
            s.version,
        )


def ledger_plans(world: World) -> Iterable[Row]:
    for s in world.plans.values():
        yield (
            s.aggregate_id,
            s.status,
            len(s.batches),
            sum(1 for b in s.batches if b.ended is None),
            sum(len(b.postings) for b in s.batches),
            s.created_at,
            s.ended_at,
            s.end_event_id,
            s.version,
        )


def ledger_postings(world: World) -> Iterable[Row]:
    for s in world.plans.values():
        for b in s.batches:
            status = b.ended or HELD
            for i, p in enumerate(b.postings):
                yield (
                    s.aggregate_id,
                    b.batch_id,
                    i,
                    p.from_,
                    p.to,
                    p.amount,
                    p.currency,
                    p.description,
                    b.held_at,
                    status,
                    b.held_event_id,
                )


def account_balances(world: World) -> Iterable[Row]:
    for bal in world.book.accounts.values():
        yield (
            bal.account,
            bal.currency,
            as_int64(bal.own),
            as_int64(bal.held),
            as_int64(bal.own - bal.held),
        )


def trader_ratings(world: World) -> Iterable[Row]:
    for e in world.published_ratings:
        p = e.payload
        if not isinstance(p, RatingPublished):  # pragma: no cover - the applier refuses others
            raise TypeError(f"not a rating publication: {e.kind}")
        yield (
            e.aggregate_id,
            e.seq,
            p.as_of,
            p.window_days,
            p.assignments,
            p.completed,
            p.on_time,
            p.disputed,
            _decimal6(p.score),
            e.occurred_at,
            e.event_id,
        )


def violations(world: World) -> Iterable[Row]:
    for v in world.violations:
        yield (v.code, v.event_id, v.subject, v.detail)


BUILDERS: dict[str, Callable[[World], Iterable[Row]]] = {
    CLIENTS.name: clients,
    TRADERS.name: traders,
    PAYMENT_ORDERS.name: payment_orders,
    ORDER_ATTEMPTS.name: order_attempts,
    ORDER_REVIEWS.name: order_reviews,
    RECEIPTS.name: receipts,
    PAYOUTS.name: payouts,
    LEDGER_PLANS.name: ledger_plans,
    LEDGER_POSTINGS.name: ledger_postings,
    ACCOUNT_BALANCES.name: account_balances,
    TRADER_RATINGS.name: trader_ratings,
    VIOLATIONS.name: violations,
}
assert set(BUILDERS) == {t.name for t in PROJECTIONS}, "a projection without a row builder"


def sort_key(table: Table) -> Callable[[Row], tuple[tuple[bool, Any], ...]]:
    """The table's key as a sort key: ``None`` first, then the values in their natural order."""
    idx = [table.column_names.index(k) for k in table.key]
    return lambda row: tuple((row[i] is not None, row[i]) for i in idx)


def project(world: World) -> dict[str, list[Row]]:
    """Every projection's rows, in schema column order, sorted by the table's key."""
    return {t.name: sorted(BUILDERS[t.name](world), key=sort_key(t)) for t in PROJECTIONS}
