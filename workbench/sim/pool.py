"""The traders of one fiat currency as columns, so eligibility is a few vector operations.

A simulated day of 50,000 orders over 2,000 traders asks "who may take this order?" about twenty
million times; one Python call per trader and order is minutes. Here each rule of catalog
section 4 is a column comparison over the currency's traders, and a policy ranks the survivors
with ``numpy.lexsort``. When only a few traders have a free slot (a busy platform: most
dispatches), :meth:`Pool.eligible_among` asks the same rules of those few in a Python loop,
cheaper than numpy's per-call cost on every column. The rules themselves stay in
:func:`workbench.domain.scheduler.rules_broken`: the model asks it of every assignment a policy
makes through ``Context.reserve``, and with ``check_invariants`` of every assignment and of
every trader against this filter (a differential test of the two; ``tests/sim/test_speed.py``
runs whole runs through each filter, and each way). A dispatch assigns the trader this filter
has just found eligible, at the same instant, without asking again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..domain.money import OrderPricing
from ..domain.scheduler import Candidate

if TYPE_CHECKING:
    from .model import SimTrader
    from .prices import Prices


class Pool:
    """Columns of one currency's traders (row ``i`` is ``traders[i]``), kept in step by
    :meth:`sync` whenever a trader's state changes."""

    def __init__(self, traders: Sequence[SimTrader], id_rank: dict[str, int]) -> None:
        self.traders = list(traders)
        n = len(self.traders)
        self.ids = np.array([t.trader_id for t in self.traders], dtype=object)
        self.id_rank = np.array([id_rank[t.trader_id] for t in self.traders], dtype=np.int64)
        self.min_amount = np.array([t.min_amount for t in self.traders], dtype=np.int64)
        self.max_amount = np.array([t.max_amount for t in self.traders], dtype=np.int64)
        self.cap = np.array([t.max_active_orders for t in self.traders], dtype=np.int64)
        keys = sorted({(t.settlement_currency or "", t.reward_bps) for t in self.traders})
        self.keys = keys
        index = {k: i for i, k in enumerate(keys)}
        self.key = np.array(
            [index[(t.settlement_currency or "", t.reward_bps)] for t in self.traders],
            dtype=np.int64,
        )
        #: The one settlement currency of every key (the usual pool), else None: then a
        #: payout costs the client the same whoever takes it (the cost is settlement + fee),
        #: and when no reward is negative (``bound_cur``) every key's hold bound is that
        #: currency's settlement amount (:meth:`Prices.hold_bounds`). Each asked once per
        #: order instead of once per trader.
        curs = {cur for cur, _ in keys}
        self.one_cur = next(iter(curs)) if len(curs) == 1 else None
        self.bound_cur = self.one_cur if all(bps >= 0 for _, bps in keys) else None
        #: ``key`` as Python ints, for the per-trader filter (a numpy scalar index is slow).
        self.key_of: list[int] = [int(k) for k in self.key]
        self.open = np.zeros(n, dtype=bool)  # registered, online, not blocked
        self.active = np.zeros(n, dtype=np.int64)
        self.available = np.zeros(n, dtype=np.int64)
        self.score = np.zeros(n, dtype=np.int64)  # hundredths
        self.free_since = np.zeros(n, dtype=np.float64)
        #: ``score`` and ``id_rank`` as Python ints, for :meth:`Candidates.lists`.
        self.score_of: list[int] = [0] * n
        self.rank_of: list[int] = [int(r) for r in self.id_rank]
        self._stale: dict[int, SimTrader] = {}
        for i, t in enumerate(self.traders):
            t.row, t.pool = i, self
            self.sync(t, score=True)

    def sync(self, t: SimTrader, *, score: bool = False) -> None:
        """The trader's state changed: its row is copied from it before the columns are next
        read (:meth:`columns`; a trader changes several times between two reads). ``score``
        is copied now, when asked (it changes only when ratings are published, and converting
        the Decimal is the dearest part)."""
        self._stale[t.row] = t
        if score:
            self.score[t.row] = self.score_of[t.row] = int(t.score * 100)

    def columns(self) -> Pool:
        """The pool, its rows up to date (call before reading a state column)."""
        if self._stale:
            for i, t in self._stale.items():
                self.open[i] = t.registered and t.online and not t.blocked
                self.active[i] = len(t.active)
                self.available[i] = t.balance - t.held
                self.free_since[i] = t.free_since
            self._stale.clear()
        return self

    def eligible(
        self,
        amount: int,
        direction: str,
        tried: set[str],
        prices: Prices,
        client_available: int,
        money: bool,
    ) -> np.ndarray:
        """Rows that break no rule: online and unblocked, a free slot, the amount within the
        limits, not tried before, the deposit (payin) or the client's balance (payout) enough."""
        self.columns()
        ok = (
            self.open
            & (self.active < self.cap)
            & (self.min_amount <= amount)
            & (self.max_amount >= amount)
        )
        if money:
            if direction == "payin":
                hold = np.array([p.payin_hold for p in prices], dtype=np.int64)[self.key]
                ok &= self.available >= hold
            else:
                cost = np.array([p.client_payout_cost for p in prices], dtype=np.int64)[self.key]
                ok &= client_available >= cost
        rows = np.flatnonzero(ok)
        if tried and len(rows):
            rows = rows[[self.ids[r] not in tried for r in rows]]
        return rows

    def eligible_among(
        self,
        traders: Iterable[SimTrader],
        amount: int,
        direction: str,
        tried: set[str],
        prices: Prices,
        client_available: int,
        money: bool,
    ) -> list[int]:
        """:meth:`eligible`, asking the same rules of ``traders`` only, one at a time.

        The model passes the traders with a free slot (a superset of the eligible ones): when
        few are free, a Python loop over them costs less than numpy's per-call overhead on every
        column of the pool. The rows come back sorted, as :meth:`eligible` returns them (a list: :class:`Candidates`
        makes it an array if a column is read)."""
        rows = []
        payin = direction == "payin"
        key_of = self.key_of
        bounds: list[float] = []
        cost: int | None = None  # the client's payout cost, when it is the same for every key
        if money and payin:
            cur = self.bound_cur
            # prices.hold_bounds(), the same list (every key's bound is that settlement)
            bounds = (
                [prices.settlement(cur)] * len(self.keys)
                if cur is not None
                else prices.hold_bounds()
            )
        elif money and self.one_cur is not None:
            cost = prices.client_payout_cost(0)
        for t in traders:
            if not (t.registered and t.online and not t.blocked):
                continue
            if len(t.active) >= t.max_active_orders or t.trader_id in tried:
                continue
            if not (t.min_amount <= amount <= t.max_amount):
                continue
            if money:
                if payin:
                    k, available = key_of[t.row], t.balance - t.held
                    if available < bounds[k] and available < prices.payin_hold(k):
                        continue
                elif client_available < (
                    cost if cost is not None else prices.client_payout_cost(key_of[t.row])
                ):
                    continue
            rows.append(t.row)
        rows.sort()
        return rows


class Candidates:
    """The traders a policy may choose from for one order, as aligned columns.

    ``score`` is in hundredths (``55.00`` is 5500), ``active`` and ``cap`` count orders,
    ``available`` is the deposit's available part in minor units, ``free_since`` is when the
    trader last got a free slot, ``id_rank`` orders trader ids. ``cands[i]`` is the domain's
    :class:`~workbench.domain.scheduler.Candidate` (with its pricing) for a policy written in
    plain Python; :meth:`argmin` ranks by several columns at once.
    """

    #: The columns, cut from the pool when a policy first reads one (most read two or three).
    COLUMNS = frozenset({"score", "active", "cap", "available", "free_since", "id_rank"})
    score: np.ndarray
    active: np.ndarray
    cap: np.ndarray
    available: np.ndarray
    free_since: np.ndarray
    id_rank: np.ndarray

    def __init__(self, pool: Pool, rows: np.ndarray | list[int], prices: Prices) -> None:
        self._pool, self.rows, self._prices = pool, rows, prices
        self._n = len(rows)

    def __getattr__(self, name: str) -> np.ndarray:
        # only called for a column not read yet (then it is an attribute like any other)
        if name not in Candidates.COLUMNS:
            raise AttributeError(name)
        rows = self.rows
        if not isinstance(rows, np.ndarray):
            rows = self.rows = np.array(rows, dtype=np.int64)
        column: np.ndarray = getattr(self._pool.columns(), name)[rows]
        setattr(self, name, column)
        return column

    def __len__(self) -> int:
        return self._n

    #: Up to this many candidates, :attr:`small` is true: a policy may rank them with
    #: :meth:`lists` and :func:`argmin_lists` in plain Python, cheaper than cutting numpy
    #: columns and sorting them for a handful of rows (``tests/sim/test_speed.py`` runs whole
    #: runs each way and compares them).
    small_max = 16

    @property
    def small(self) -> bool:
        return self._n <= Candidates.small_max

    def lists(self, *names: str) -> tuple[list[Any], ...]:
        """The columns ``names`` as Python lists (the same values as the numpy columns: the
        traders' current state, which :meth:`Pool.columns` copies)."""
        pool = self._pool
        traders = [pool.traders[r] for r in self.rows]
        out: list[list[Any]] = []
        for name in names:
            if name == "score":
                out.append([pool.score_of[t.row] for t in traders])
            elif name == "active":
                out.append([len(t.active) for t in traders])
            elif name == "cap":
                out.append([t.max_active_orders for t in traders])
            elif name == "available":
                out.append([t.balance - t.held for t in traders])
            elif name == "free_since":
                out.append([t.free_since for t in traders])
            elif name == "id_rank":
                out.append([pool.rank_of[t.row] for t in traders])
            else:
                raise AttributeError(name)
        return tuple(out)

    def trader_id(self, i: int) -> str:
        return str(self._pool.ids[self.rows[i]])

    def pricing(self, i: int) -> OrderPricing:
        return self._prices[self._pool.key_of[int(self.rows[i])]]

    def pick(self, i: int) -> tuple[SimTrader, OrderPricing, str]:
        """Candidate ``i``'s trader, pricing and the rate it is priced at, without building
        the domain's :class:`Candidate` (what the model's dispatch needs of the policy's
        pick)."""
        row = int(self.rows[i])
        pool, prices = self._pool, self._prices
        return pool.traders[row], prices[pool.key_of[row]], prices.rate

    def __getitem__(self, i: int) -> Candidate:
        t = self._pool.traders[int(self.rows[i])]
        return Candidate(t.trader_id, t.score, len(t.active), self.pricing(i))

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (self[i] for i in range(len(self)))

    def argmin(self, *keys: np.ndarray) -> int | None:
        """The index of the smallest row by ``keys`` compared in order (ties to the next key)."""
        if self._n <= 1:
            return 0 if self._n else None
        return int(np.lexsort(tuple(reversed(keys)))[0])


def argmin_lists(*keys: Sequence[Any]) -> int | None:
    """:meth:`Candidates.argmin` over Python lists: the index of the smallest row by ``keys``
    compared in order, the first index on a full tie (as numpy's stable ``lexsort``)."""
    if not keys or not keys[0]:
        return None
    return min(zip(*keys, range(len(keys[0])), strict=False))[-1]  # type: ignore[no-any-return]
