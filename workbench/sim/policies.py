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

from .pool import argmin_lists

if TYPE_CHECKING:
    from .model import Context, SimOrder
    from .pool import Candidates


class Policy:
    """Ranks eligible traders for an order. Subclasses set ``name`` and override ``choose``.

    ``choose`` gets the order and its :class:`~workbench.sim.pool.Candidates` (columns of the
    eligible traders: ``score``, ``active``, ``cap``, ``available``, ``free_since``,
    ``id_rank``; ``cands[i]`` is one as the domain's ``Candidate``) and returns the index of its
    pick, or None to leave the order pending.

    ``batch_seconds = 0`` means the scheduler asks as soon as an order could be assigned (on
    arrival, and whenever a trader frees a slot, comes online or gets money). A positive value
    makes it collect orders and call :meth:`match` every ``batch_seconds``.
    """

    name: ClassVar[str] = "policy"
    batch_seconds: float = 0.0

    def choose(self, order: SimOrder, cands: Candidates, ctx: Context) -> int | None:
        raise NotImplementedError

    def match(self, orders: Sequence[SimOrder], ctx: Context) -> None:
        """Assign a batch (default: oldest order first, each by :meth:`choose`)."""
        for o in orders:
            cands = ctx.candidates(o)
            i = self.choose(o, cands, ctx) if len(cands) else None
            if i is not None:
                ctx.reserve(o, cands[i])


class Production(Policy):
    """The catalog's policy: highest latest published score, fewest active orders, smallest id."""

    name = "production"

    def choose(self, order: SimOrder, cands: Candidates, ctx: Context) -> int | None:
        if len(cands) == 1:  # the usual case on a busy platform: no columns to rank
            return 0
        if cands.small:  # a few: ranked in plain Python (the same pick)
            score, active, rank = cands.lists("score", "active", "id_rank")
            return argmin_lists([-x for x in score], active, rank)
        return cands.argmin(-cands.score, cands.active, cands.id_rank)


class FirstFree(Policy):
    """First come, first served onto the trader free the longest (the M/M/c discipline)."""

    name = "fifo"

    def choose(self, order: SimOrder, cands: Candidates, ctx: Context) -> int | None:
        if len(cands) == 1:
            return 0
        if cands.small:
            return argmin_lists(*cands.lists("free_since", "id_rank"))
        return cands.argmin(cands.free_since, cands.id_rank)


class RoundRobin(Policy):
    """Traders in a fixed circle; each order goes to the next eligible one after the last pick."""

    name = "round_robin"

    def __init__(self) -> None:
        self._last = -1

    def choose(self, order: SimOrder, cands: Candidates, ctx: Context) -> int | None:
        if not len(cands):
            return None
        after = cands.id_rank > self._last
        # the smallest id after the last pick, or else the smallest id (round the circle)
        i = cands.argmin(~after, cands.id_rank)
        assert i is not None
        self._last = int(cands.id_rank[i])
        return i


class LeastLoaded(Policy):
    """The trader with the smallest share of its slots in use (then fewest active, then id)."""

    name = "least_loaded"

    def choose(self, order: SimOrder, cands: Candidates, ctx: Context) -> int | None:
        if len(cands) == 1:
            return 0
        if cands.small:
            active, cap, rank = cands.lists("active", "cap", "id_rank")
            share = [a / c for a, c in zip(active, cap, strict=True)]
            return argmin_lists(share, active, rank)
        return cands.argmin(cands.active / cands.cap, cands.active, cands.id_rank)


class Random(Policy):
    """Uniformly at random among eligible traders (its own random stream)."""

    name = "random"

    def choose(self, order: SimOrder, cands: Candidates, ctx: Context) -> int | None:
        if not len(cands):
            return None
        by_id = np.argsort(cands.id_rank, kind="stable")
        return int(by_id[int(ctx.rng.integers(len(cands)))])


class BalanceAware(Policy):
    """Payins to the trader with the most available deposit (keeps liquidity spread, fewer
    orders stuck for lack of deposit); payouts to the trader with the least (payouts refill it)."""

    name = "balance_aware"

    def choose(self, order: SimOrder, cands: Candidates, ctx: Context) -> int | None:
        if len(cands) == 1:
            return 0
        sign = -1 if order.direction == "payin" else 1
        if cands.small:
            available, active, rank = cands.lists("available", "active", "id_rank")
            return argmin_lists([sign * x for x in available], active, rank)
        return cands.argmin(sign * cands.available, cands.active, cands.id_rank)


@dataclass
class BatchedOptimal(Policy):
    """Collect orders for ``window`` seconds, then solve a minimum-cost assignment.

    Cost of giving order *o* to trader *t*: ``-score(t) + load_weight * load(t)`` (a higher
    score and a lighter load are cheaper), solved with the Hungarian method
    (``scipy.optimize.linear_sum_assignment``) over one column per free slot. Each match is
    re-checked as it is made, so a trader with deposit for one order is not given two.
    """

    window: float = 10.0
    load_weight: float = 10.0
    name: ClassVar[str] = "batched"

    def __post_init__(self) -> None:
        self.batch_seconds = self.window

    def choose(self, order: SimOrder, cands: Candidates, ctx: Context) -> int | None:
        return cands.argmin(-cands.score, cands.active, cands.id_rank)

    def match(self, orders: Sequence[SimOrder], ctx: Context) -> None:
        from scipy.optimize import linear_sum_assignment

        options = [ctx.candidates(o) for o in orders]
        slots: dict[tuple[str, int], int] = {}  # (trader, k-th extra order in this batch)
        entries: list[tuple[int, int, float]] = []
        for i, cands in enumerate(options):
            for j in range(len(cands)):
                tid = cands.trader_id(j)
                active, cap = int(cands.active[j]), int(cands.cap[j])
                for k in range(cap - active):
                    col = slots.setdefault((tid, k), len(slots))
                    cost = -float(cands.score[j]) / 100 + self.load_weight * (active + k) / cap
                    entries.append((i, col, cost))
        if not slots:
            return
        big = 1e9
        matrix = np.full((len(orders), len(slots)), big)
        for i, col, cost in entries:
            matrix[i, col] = cost
        names = list(slots)
        rows, cols = linear_sum_assignment(matrix)
        for i, j in sorted(zip(rows.tolist(), cols.tolist(), strict=True)):
            if matrix[i, j] >= big:
                continue
            o, tid = orders[i], names[j][0]
            fresh = ctx.candidates(o)  # still allowed after the matches made before it?
            pick = next((x for x in range(len(fresh)) if fresh.trader_id(x) == tid), None)
            if pick is not None:
                ctx.reserve(o, fresh[pick])


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
