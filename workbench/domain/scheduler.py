"""The scheduler's rules (catalog section 4): who may take an order, and who the policy picks.

One function says whether an assignment is allowed, naming each rule it breaks. The processors
refuse an assignment that breaks one, the generator and the simulator pick through it, and the
audit asks the same function of every recorded assignment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Final, Protocol

from .money import OrderPricing, platform_fee, price_order, settlement_amount, trader_reward
from .payment_order import PaymentOrderState
from .world import World

ACCEPT_WINDOW: Final = timedelta(minutes=2)
COMPLETE_WINDOW: Final = timedelta(minutes=30)
EXPIRY_WINDOW: Final = timedelta(minutes=60)
#: How long after a deadline the platform's scheduler acts on it: it sweeps once a second, so an
#: order is cancelled, an assignment expired or a review started one second after the deadline
#: (every case in the platform's own export). Acting later than that is a missed deadline.
SWEEP_DELAY: Final = timedelta(seconds=1)

#: The rules, in the catalog's order; a broken one is reported by these names.
RULES: Final[tuple[str, ...]] = (
    "registered",
    "not_blocked",
    "online",
    "currency",
    "amount_limits",
    "capacity",
    "not_assigned_before",
    "trader_deposit",
    "client_balance",
)


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Platform defaults; a simulation may vary them."""

    accept: timedelta = ACCEPT_WINDOW
    complete: timedelta = COMPLETE_WINDOW
    expire: timedelta = EXPIRY_WINDOW


def pricing_for(
    world: World, order: PaymentOrderState, trader_id: str, rate: str, settlement: int | None = None
) -> OrderPricing | None:
    """Price the order for this trader at ``rate``, at the fee and reward in force now
    (:meth:`World.bps_in_force`); None if the client's fee or the trader is unknown.

    ``settlement`` may be passed in when the caller already priced the fiat amount (it depends
    only on amount, rate and the settlement currency, not on the trader).
    """
    fee_bps, reward_bps = world.bps_in_force(order.client_id, trader_id)
    t = world.traders.get(trader_id)
    if fee_bps is None or reward_bps is None or t is None or order.currency is None:
        return None
    if t.settlement_currency is None:
        return None
    if settlement is None:
        return price_order(
            order.amount, order.currency, rate, t.settlement_currency, fee_bps, reward_bps
        )
    return OrderPricing(
        settlement, platform_fee(settlement, fee_bps), trader_reward(settlement, reward_bps)
    )


class TraderView(Protocol):
    """What the rules read of a trader: the trader stream's state, or a simulator's trader."""

    @property
    def registered(self) -> bool: ...
    @property
    def blocked(self) -> bool: ...
    @property
    def online(self) -> bool: ...
    @property
    def fiat_currency(self) -> str | None: ...
    @property
    def settlement_currency(self) -> str | None: ...
    @property
    def min_amount(self) -> int: ...
    @property
    def max_amount(self) -> int: ...
    @property
    def max_active_orders(self) -> int: ...
    @property
    def available(self) -> int: ...


def rules_broken(
    t: TraderView | None,
    *,
    direction: str | None,
    amount: int,
    currency: str | None,
    active: int,
    tried_before: bool,
    pricing: OrderPricing | None,
    client_available: Callable[[str], int],
) -> list[str]:
    """The catalog's section 4, once: the rules an assignment to ``t`` breaks, in order.

    Everything is passed in, so the audit's fold (:func:`broken_rules`) and the simulator (its
    own light state) judge an assignment by the same code. ``client_available(currency)`` is
    asked only for a payout order that is priced."""
    if t is None or not t.registered:
        return ["registered"]
    broken: list[str] = []
    if t.blocked:
        broken.append("not_blocked")
    if not t.online:
        broken.append("online")
    if currency != t.fiat_currency:
        broken.append("currency")
    if not (t.min_amount <= amount <= t.max_amount):
        broken.append("amount_limits")
    if active >= t.max_active_orders:
        broken.append("capacity")
    if tried_before:
        broken.append("not_assigned_before")
    if pricing is not None:
        if direction == "payin" and t.available < pricing.payin_hold:
            broken.append("trader_deposit")
        if direction == "payout" and (
            client_available(t.settlement_currency or "") < pricing.client_payout_cost
        ):
            broken.append("client_balance")
    return broken


def broken_rules(
    world: World, order: PaymentOrderState, trader_id: str, pricing: OrderPricing | None
) -> list[str]:
    """The scheduler rules an assignment of ``order`` to ``trader_id`` would break, now."""
    t = world.traders.get(trader_id)
    account = f"client:{order.client_id}"
    return rules_broken(
        t,
        direction=order.direction,
        amount=order.amount,
        currency=order.currency,
        active=world.active_count(trader_id),
        tried_before=trader_id in order.traders_tried,
        pricing=pricing,
        client_available=lambda cur: world.book.available(account, cur),
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    trader_id: str
    score: Decimal
    active: int
    pricing: OrderPricing


def _priced_if_eligible(
    world: World, order: PaymentOrderState, trader_id: str, rate: str, settlements: dict[str, int]
) -> OrderPricing | None:
    """The trader's pricing if every rule passes, else None. Cheap rules are checked first;
    the settlement (the costly part) is priced once per settlement currency via ``settlements``."""
    if broken_rules(world, order, trader_id, None):
        return None
    cur = world.traders[trader_id].settlement_currency or ""
    if cur not in settlements and order.currency is not None:
        settlements[cur] = settlement_amount(order.amount, order.currency, rate, cur)
    pricing = pricing_for(world, order, trader_id, rate, settlements.get(cur))
    if pricing is None or broken_rules(world, order, trader_id, pricing):
        return None
    return pricing


def eligible(
    world: World, order: PaymentOrderState, rate: str, among: Iterable[str] | None = None
) -> list[Candidate]:
    """Every trader who may take ``order`` now, with the pricing each would get.

    ``among`` narrows the search (a caller's index of online traders, say); the rules are the
    same. The cheap rules are checked before pricing, which is the expensive part.
    """
    out: list[Candidate] = []
    settlements: dict[str, int] = {}
    for trader_id in world.traders if among is None else among:
        pricing = _priced_if_eligible(world, order, trader_id, rate, settlements)
        if pricing is None:
            continue
        out.append(
            Candidate(trader_id, world.score(trader_id), world.active_count(trader_id), pricing)
        )
    return out


def production_key(c: Candidate) -> tuple[Decimal, int, str]:
    """Highest latest score, then fewest active orders, then smallest trader id."""
    return (-c.score, c.active, c.trader_id)


def production_choice(candidates: list[Candidate]) -> Candidate | None:
    """The production policy of the catalog."""
    return min(candidates, key=production_key) if candidates else None


def choose_production(
    world: World, order: PaymentOrderState, rate: str, among: Iterable[str] | None = None
) -> Candidate | None:
    """The production policy: the same answer as ``production_choice(eligible(...))``, without
    pricing every trader (a one-off :class:`ProductionRanker`; keep one for many assignments)."""
    return ProductionRanker(world).choose(
        order, rate, set(world.traders if among is None else among)
    )


class ProductionRanker:
    """The production policy for callers that assign many orders (generator, simulator).

    The policy ranks by latest published score first, and scores only change when a rating is
    published, so the traders are grouped by score once per publication; an assignment walks the
    groups from the top and sorts only the group it is in by active orders. The answer is the
    same as :func:`choose_production` (a test checks it on whole histories).
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self._seen = -1
        self._groups: list[tuple[Decimal, list[str]]] = []
        self._known: set[str] = set()

    def _refresh(self) -> None:
        w = self.world
        if w.ratings_applied == self._seen and len(self._known) == len(w.traders):
            return
        by_score: dict[Decimal, list[str]] = {}
        for t in w.traders:
            by_score.setdefault(w.score(t), []).append(t)
        self._groups = sorted(
            ((s, sorted(ids)) for s, ids in by_score.items()), key=lambda g: -g[0]
        )
        self._seen = w.ratings_applied
        self._known = set(w.traders)

    def choose(
        self, order: PaymentOrderState, rate: str, among: set[str] | frozenset[str]
    ) -> Candidate | None:
        self._refresh()
        w = self.world
        traders, active_orders = w.traders, w.active_orders
        settlements: dict[str, int] = {}
        for score, ids in self._groups:
            group = []
            for t in ids:
                if t not in among:
                    continue
                st = traders[t]
                if st.blocked or not st.online:
                    continue
                active = len(active_orders.get(t, ()))
                if active < st.max_active_orders:
                    group.append((active, t))
            group.sort()
            for active, t in group:
                pricing = _priced_if_eligible(w, order, t, rate, settlements)
                if pricing is not None:
                    return Candidate(t, score, active, pricing)
        return None
