"""An order priced for the traders of its currency, one (settlement currency, reward) key at a
time, only as far as the scheduler asks.

The filter over a few free traders needs one or two keys' holds or payout costs, and the policy's
pick alone needs a whole :class:`~workbench.domain.money.OrderPricing`; pricing every key of the
pool for every order the scheduler looks at was a good part of the model's time. The figures
are the catalog's formulas (:mod:`workbench.domain.money`), exact, the same whichever is asked
first.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..domain.money import OrderPricing, platform_fee, settlement_amount, trader_reward


class Prices:
    """An order priced for each (settlement currency, reward) key of its currency's pool, each
    key when first asked (a filter over a few free traders asks one or two of the keys)."""

    __slots__ = (
        "_amount",
        "_cache",
        "_cost",
        "_currency",
        "_fee",
        "_hold",
        "_keys",
        "_out",
        "_settle",
        "rate",
    )

    def __init__(
        self,
        keys: list[tuple[str, int]],
        amount: int,
        currency: str,
        rate: str,
        fee_bps: int,
        cache: dict[tuple[int, str, str, str], int],
    ) -> None:
        self._keys, self._amount, self._currency = keys, amount, currency
        self.rate = rate  # the rate the order is priced at (the assignment records it)
        self._fee, self._cache = fee_bps, cache
        # by key index (``_out``, ``_hold``) or settlement currency, each filled when asked
        # (dicts: cheaper to make than a list per key, and most orders ask one or two keys)
        self._out: dict[int, OrderPricing] = {}
        self._settle: dict[str, int] = {}
        self._hold: dict[int, int] = {}
        self._cost: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, k: int) -> OrderPricing:
        p = self._out.get(k)
        if p is None:
            cur, bps = self._keys[k]
            s = self.settlement(cur)
            p = self._out[k] = OrderPricing(s, platform_fee(s, self._fee), trader_reward(s, bps))
        return p

    def settlement(self, cur: str) -> int:
        """The settlement amount in ``cur`` (the same for every reward)."""
        s = self._settle.get(cur)
        if s is None:
            key = (self._amount, self._currency, self.rate, cur)
            s = self._cache.get(key)
            if s is None:
                if len(self._cache) > 100_000:
                    self._cache.clear()
                s = self._cache[key] = settlement_amount(*key)
            self._settle[cur] = s
        return s

    def payin_hold(self, k: int) -> int:
        """``self[k].payin_hold`` without building the pricing (the filter asks it of every
        free trader; the policy's pick alone needs the whole pricing)."""
        hold = self._hold.get(k)
        if hold is None:
            p = self._out.get(k)
            if p is None:
                cur, bps = self._keys[k]
                s = self.settlement(cur)
                hold = s - trader_reward(s, bps)
            else:
                hold = p.payin_hold
            self._hold[k] = hold
        return hold

    def hold_bounds(self) -> list[float]:
        """Per key, a bound the hold never exceeds: the settlement amount where the reward is
        not negative (the hold is the settlement less the reward), else infinity. A trader
        whose available deposit reaches the bound covers the hold, with no reward worked out
        (the filter's usual case: deposits are many orders deep)."""
        return [self.settlement(cur) if bps >= 0 else float("inf") for cur, bps in self._keys]

    def client_payout_cost(self, k: int) -> int:
        """``self[k].client_payout_cost``, likewise (the same for every reward)."""
        cur = self._keys[k][0]
        cost = self._cost.get(cur)
        if cost is None:
            s = self.settlement(cur)
            cost = self._cost[cur] = s + platform_fee(s, self._fee)
        return cost

    def __iter__(self) -> Iterator[OrderPricing]:
        return (self[k] for k in range(len(self._keys)))
