"""Assignment policies: who, among the traders the rules allow, gets an order.

The rules (catalog section 4) are not the policy's business: the model offers a policy only
eligible candidates, each priced (:class:`~workbench.domain.scheduler.Candidate`), so no policy
can break a rule. A policy only ranks. Write one by subclassing :class:`Policy` and overriding
``choose`` (one order at a time) or, for a batching policy, ``match`` with ``batch_seconds > 0``;
see docs/policies.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..domain.scheduler import Candidate, production_key

if TYPE_CHECKING:
    from .model import Context, SimOrder


class Policy:
    """Ranks eligible traders for an order. Subclasses set ``name`` and override ``choose``.

    ``batch_seconds = 0`` means the scheduler asks as soon as an order could be assigned (on
    arrival, and whenever a trader frees a slot, comes online or gets money). A positive value
    makes it collect orders and call :meth:`match` every ``batch_seconds``.
    """

    name: ClassVar[str] = "policy"
    batch_seconds: float = 0.0

    def choose(
        self, order: SimOrder, candidates: Sequence[Candidate], ctx: Context
    ) -> Candidate | None:
        raise NotImplementedError

    def match(self, orders: Sequence[SimOrder], ctx: Context) -> list[tuple[SimOrder, Candidate]]:
        """Assign a batch (default: oldest order first, each by :meth:`choose`)."""
        out = []
        for o in orders:
            c = self.choose(o, ctx.candidates(o), ctx)
            if c is not None:
                ctx.reserve(o, c)
                out.append((o, c))
        return out


class Production(Policy):
    """The catalog's policy: highest latest published score, fewest active orders, smallest id."""

    name = "production"

    def choose(
        self, order: SimOrder, candidates: Sequence[Candidate], ctx: Context
    ) -> Candidate | None:
        return min(candidates, key=production_key) if candidates else None


class FirstFree(Policy):
    """First come, first served onto the trader free the longest (the M/M/c discipline)."""

    name = "fifo"

    def choose(
        self, order: SimOrder, candidates: Sequence[Candidate], ctx: Context
    ) -> Candidate | None:
        if not candidates:
            return None
        return min(candidates, key=lambda c: (ctx.trader(c.trader_id).free_since, c.trader_id))


class RoundRobin(Policy):
    """Traders in a fixed circle; each order goes to the next eligible one after the last pick."""

    name = "round_robin"

    def __init__(self) -> None:
        self._last = ""

    def choose(
        self, order: SimOrder, candidates: Sequence[Candidate], ctx: Context
    ) -> Candidate | None:
        if not candidates:
            return None
        ids = sorted(candidates, key=lambda c: c.trader_id)
        pick = next((c for c in ids if c.trader_id > self._last), ids[0])
        self._last = pick.trader_id
        return pick


class LeastLoaded(Policy):
    """The trader with the smallest share of its slots in use (then fewest active, then id)."""

    name = "least_loaded"

    def choose(
        self, order: SimOrder, candidates: Sequence[Candidate], ctx: Context
    ) -> Candidate | None:
        def load(c: Candidate) -> tuple[float, int, str]:
            t = ctx.trader(c.trader_id)
            return (c.active / t.max_active_orders, c.active, c.trader_id)

        return min(candidates, key=load) if candidates else None


class Random(Policy):
    """Uniformly at random among eligible traders (its own random stream)."""

    name = "random"

    def choose(
        self, order: SimOrder, candidates: Sequence[Candidate], ctx: Context
    ) -> Candidate | None:
        if not candidates:
            return None
        ids = sorted(candidates, key=lambda c: c.trader_id)
        return ids[int(ctx.rng.integers(len(ids)))]


class BalanceAware(Policy):
    """Payins to the trader with the most available deposit (keeps liquidity spread, fewer
    orders stuck for lack of deposit); payouts to the trader with the least (payouts refill it)."""

    name = "balance_aware"

    def choose(
        self, order: SimOrder, candidates: Sequence[Candidate], ctx: Context
    ) -> Candidate | None:
        if not candidates:
            return None
        sign = -1 if order.direction == "payin" else 1
        return min(
            candidates,
            key=lambda c: (sign * ctx.trader(c.trader_id).available, c.active, c.trader_id),
        )


@dataclass
class BatchedOptimal(Policy):
    """Collect orders for ``window`` seconds, then solve a minimum-cost assignment.

    Cost of giving order *o* to trader *t*: ``-score(t) + load_weight * load(t)`` (a higher
    score and a lighter load are cheaper), solved with the Hungarian method
    (``scipy.optimize.linear_sum_assignment``) over one column per free slot. Deposits are
    re-checked as the matches are made, so a trader with money for one order is not given two.
    """

    window: float = 10.0
    load_weight: float = 10.0
    name: ClassVar[str] = "batched"

    def __post_init__(self) -> None:
        self.batch_seconds = self.window

    def choose(
        self, order: SimOrder, candidates: Sequence[Candidate], ctx: Context
    ) -> Candidate | None:
        return min(candidates, key=production_key) if candidates else None

    def match(self, orders: Sequence[SimOrder], ctx: Context) -> list[tuple[SimOrder, Candidate]]:
        from scipy.optimize import linear_sum_assignment

        options = [ctx.candidates(o) for o in orders]
        slots: list[tuple[str, int]] = []  # (trader, k-th extra order in this batch)
        index: dict[tuple[str, int], int] = {}
        for cands in options:
            for c in cands:
                t = ctx.trader(c.trader_id)
                for k in range(t.max_active_orders - c.active):
                    if (c.trader_id, k) not in index:
                        index[(c.trader_id, k)] = len(slots)
                        slots.append((c.trader_id, k))
        if not slots:
            return []
        big = 1e9
        cost = np.full((len(orders), len(slots)), big)
        for i, cands in enumerate(options):
            for c in cands:
                t = ctx.trader(c.trader_id)
                for k in range(t.max_active_orders - c.active):
                    load = (c.active + k) / t.max_active_orders
                    cost[i, index[(c.trader_id, k)]] = -float(c.score) + self.load_weight * load
        rows, cols = linear_sum_assignment(cost)
        out = []
        for i, j in sorted(zip(rows.tolist(), cols.tolist(), strict=True)):
            if cost[i, j] >= big:
                continue
            o, tid = orders[i], slots[j][0]
            fresh = next((c for c in ctx.candidates(o) if c.trader_id == tid), None)
            if fresh is not None:  # still allowed after the matches made before it
                ctx.reserve(o, fresh)
                out.append((o, fresh))
        return out


#: Every shipped policy by name (a fresh instance per replication: some keep state).
POLICIES: dict[str, type[Policy]] = {
    p.name: p
    for p in (Production, FirstFree, RoundRobin, LeastLoaded, Random, BalanceAware, BatchedOptimal)
}


def make_policy(name: str | Policy) -> Policy:
    """A policy by name (or the instance given)."""
    if isinstance(name, Policy):
        return name
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(
            f"unknown policy {name!r}; shipped policies: {', '.join(sorted(POLICIES))}"
        ) from None
