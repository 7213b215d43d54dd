"""The ``ledger_plan`` stream (catalog 3.6): plans of postings, held in batches, then ended once.

Balances follow the accounting service's definitions: for an account, ``own`` is committed
credits minus committed debits, ``held`` is debits in batches still held, and
``available = own - held``. :func:`balance_effects` turns one plan event into the changes it makes
to those figures, so the account book is a plain fold over plan events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from pydantic import Field

from .aggregate import AggregateState, evolve
from .events import Currency, Event, Int64, Payload
from .violations import INVALID_TRANSITION, LEDGER_PLAN_MISMATCH


class Posting(Payload):
    from_: str = Field(alias="from")
    to: str
    amount: Int64
    currency: Currency
    description: str


class BatchHeld(Payload):
    KIND = "ledger_plan.batch_held"
    batch_id: Int64
    postings: list[Posting]


class PlanCommitted(Payload):
    KIND = "ledger_plan.committed"
    batch_ids: list[Int64]


class PlanRolledBack(Payload):
    KIND = "ledger_plan.rolled_back"
    batch_ids: list[Int64]


PAYLOADS: tuple[type[Payload], ...] = (BatchHeld, PlanCommitted, PlanRolledBack)

HELD: Final = "held"
COMMITTED: Final = "committed"
ROLLED_BACK: Final = "rolled_back"

#: Accounts whose available amount must never go below zero.
GUARDED_PREFIXES: Final = ("client:", "trader:")


def is_guarded(account: str) -> bool:
    return account.startswith(GUARDED_PREFIXES)


@dataclass(frozen=True)
class Batch:
    batch_id: int
    postings: tuple[Posting, ...]
    held_at: datetime
    held_event_id: str
    ended: str | None = None  # committed / rolled_back, None while held


@dataclass(frozen=True)
class LedgerPlanState(AggregateState):
    status: str | None = None
    batches: tuple[Batch, ...] = ()
    created_at: datetime | None = None
    ended_at: datetime | None = None
    end_event_id: str | None = None

    @property
    def open_batch_ids(self) -> tuple[int, ...]:
        return tuple(b.batch_id for b in self.batches if b.ended is None)

    @property
    def held_batch_ids(self) -> tuple[int, ...]:
        return tuple(b.batch_id for b in self.batches)

    def postings(self) -> tuple[Posting, ...]:
        return tuple(p for b in self.batches for p in b.postings)


def _check_postings(s: LedgerPlanState, event: Event, postings: list[Posting]) -> LedgerPlanState:
    for i, p in enumerate(postings):
        if p.from_ == p.to:
            s = s.flag(
                event,
                LEDGER_PLAN_MISMATCH,
                f"posting {i} moves {p.amount} from {p.from_} to itself",
            )
        if p.amount <= 0:
            s = s.flag(
                event,
                LEDGER_PLAN_MISMATCH,
                f"posting {i} ({p.from_} → {p.to}) has amount {p.amount} <= 0",
            )
    return s


def apply(state: LedgerPlanState | None, event: Event) -> LedgerPlanState:
    """Fold one plan event. A plan ends once, listing exactly the held batches."""
    s = state or LedgerPlanState(event.aggregate_id)
    p = event.payload
    at = event.occurred_at
    if isinstance(p, BatchHeld):
        if s.status in (COMMITTED, ROLLED_BACK):
            s = s.illegal(event, s.status)
        if p.batch_id in s.held_batch_ids:
            s = s.flag(event, LEDGER_PLAN_MISMATCH, f"batch {p.batch_id} is held twice")
        if not p.postings:
            s = s.flag(event, LEDGER_PLAN_MISMATCH, f"batch {p.batch_id} has no postings")
        s = _check_postings(s, event, p.postings)
        batch = Batch(p.batch_id, tuple(p.postings), at, event.event_id)
        status = s.status if s.status in (COMMITTED, ROLLED_BACK) else HELD
        return s.advanced(
            event, status=status, batches=(*s.batches, batch), created_at=s.created_at or at
        )
    if isinstance(p, PlanCommitted | PlanRolledBack):
        outcome = COMMITTED if isinstance(p, PlanCommitted) else ROLLED_BACK
        verb = "commit" if outcome == COMMITTED else "rollback"
        if s.status is None:
            s = s.illegal(event, "no batch held")
        elif s.status != HELD:
            s = s.flag(
                event, INVALID_TRANSITION, f"{verb} of a plan already {s.status}: a plan ends once"
            )
        elif sorted(p.batch_ids) != sorted(s.held_batch_ids):
            s = s.flag(
                event,
                LEDGER_PLAN_MISMATCH,
                f"{verb} lists batches {sorted(p.batch_ids)} but {sorted(s.held_batch_ids)} were held",
            )
        listed = set(p.batch_ids)
        batches = tuple(
            evolve(b, ended=outcome) if b.batch_id in listed and b.ended is None else b
            for b in s.batches
        )
        first_end = s.status == HELD
        return s.advanced(
            event,
            status=outcome if first_end or s.status is None else s.status,
            batches=batches,
            ended_at=at if first_end else s.ended_at,
            end_event_id=event.event_id if first_end else s.end_event_id,
        )
    raise TypeError(f"not a ledger_plan event: {event.kind}")


# ------------------------------------------------------------------------- account book
@dataclass(frozen=True, slots=True)
class BalanceEffect:
    """A change to one account: ``own`` moves on commit, ``held`` on hold and on end."""

    account: str
    currency: str
    own: int = 0
    held: int = 0


def balance_effects(before: LedgerPlanState | None, event: Event) -> list[BalanceEffect]:
    """What one plan event does to account balances, given the plan's state before it.

    Only batches that are really open move money when a plan ends, so a plan ended twice or a
    batch listed that was never held books nothing: the balances stay what the ledger holds.
    """
    p = event.payload
    effects: list[BalanceEffect] = []
    if isinstance(p, BatchHeld):
        for post in p.postings:
            effects.append(BalanceEffect(post.from_, post.currency, held=post.amount))
        return effects
    if isinstance(p, PlanCommitted | PlanRolledBack):
        if before is None:
            return effects
        listed = set(p.batch_ids)
        for b in before.batches:
            if b.ended is not None or b.batch_id not in listed:
                continue
            for post in b.postings:
                effects.append(BalanceEffect(post.from_, post.currency, held=-post.amount))
                if isinstance(p, PlanCommitted):
                    effects.append(BalanceEffect(post.from_, post.currency, own=-post.amount))
                    effects.append(BalanceEffect(post.to, post.currency, own=post.amount))
    return effects


@dataclass(slots=True)
class AccountBalance:
    """One account in one currency."""

    account: str
    currency: str
    own: int = 0
    held: int = 0

    @property
    def available(self) -> int:
        return self.own - self.held


@dataclass(slots=True)
class AccountBook:
    """All account balances, folded from plan events through :func:`balance_effects`."""

    accounts: dict[tuple[str, str], AccountBalance] = field(default_factory=dict)

    def get(self, account: str, currency: str) -> AccountBalance:
        key = (account, currency)
        bal = self.accounts.get(key)
        if bal is None:
            bal = self.accounts[key] = AccountBalance(account, currency)
        return bal

    def available(self, account: str, currency: str) -> int:
        bal = self.accounts.get((account, currency))
        return bal.available if bal else 0

    def apply(self, effects: list[BalanceEffect]) -> list[AccountBalance]:
        """Apply effects; returns the balances touched (for the non-negative check)."""
        touched: dict[tuple[str, str], AccountBalance] = {}
        for e in effects:
            bal = self.get(e.account, e.currency)
            bal.own += e.own
            bal.held += e.held
            touched[(e.account, e.currency)] = bal
        return list(touched.values())
