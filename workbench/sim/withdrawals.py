"""Payouts: clients withdrawing their balance and traders their deposit (catalog 3.5).

Withdrawals are what drains the money the scheduler's rules look at: a trader's available
deposit backs its payin orders (catalog 4: ``settlement_amount - trader_reward``) and a client's
available balance pays for its payout orders, so a trader who has just withdrawn may be passed
over for a payin it could have taken before.

Requests arrive as one Poisson process per owner kind (clients at ``client_per_day`` each,
traders at ``trader_per_day`` each), the owner drawn uniformly: the times, owners and the
payout desk's delays and failures come from the run's own ``withdraw`` stream, whatever the
policy, so two policies see the same requests (common random numbers); only the amount, a share
of what the owner has available at that moment, depends on the run. The money is held at the
request (the trader's ``hold_placed`` with ``ref = payout:<id>``, and the ledger plan), paid
after ``pay_delay`` and confirmed ``confirm_delay`` later (the hold captured: the money leaves),
or failed at the first step with probability ``fail`` (the hold released).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..domain.money import exponent
from .config import Withdrawals

if TYPE_CHECKING:
    from .model import SimClient, SimTrader, Simulation

DAY = 86_400.0


class Payout:
    """One withdrawal in flight."""

    __slots__ = ("amount", "fee", "owner", "owner_ref", "payout_id", "trader")

    def __init__(
        self, payout_id: str, owner: SimTrader | SimClient, ref: str, amount: int, fee: int
    ) -> None:
        self.payout_id, self.owner, self.owner_ref = payout_id, owner, ref
        self.amount, self.fee = amount, fee
        self.trader = ref.startswith("trader:")


class PayoutDesk:
    """Asks for the withdrawals and carries each through the payout desk."""

    def __init__(self, sim: Simulation, w: Withdrawals) -> None:
        self.sim, self.w = sim, w
        self._rng = sim.streams["withdraw"]
        self._seq = 0
        #: Every withdrawal asked for: (time, payout id, owner, amount); and how each ended.
        self.created: list[tuple[float, str, str, int]] = []
        self.log: list[tuple[float, str, str, int, str]] = []
        self.skipped = 0  # requests for less than the minimum (nothing asked)

    def start(self) -> None:
        sim, w = self.sim, self.w
        for kind, owners, per_day in (
            ("client", list(sim.clients.values()), w.client_per_day),
            ("trader", list(sim.traders.values()), w.trader_per_day),
        ):
            if per_day > 0 and owners:
                self._next(kind, owners, len(owners) * per_day / DAY, 0.0)

    def _next(self, kind: str, owners: list[Any], rate: float, t: float) -> None:
        t += float(self._rng.exponential(1 / rate))
        self.sim._at(t, self._request, kind, owners, rate, t)

    def _request(self, kind: str, owners: list[Any], rate: float, t: float) -> None:
        rng, w = self._rng, self.w
        who = owners[min(int(float(rng.random()) * len(owners)), len(owners) - 1)]
        ref = f"trader:{who.trader_id}" if kind == "trader" else f"client:{who.client_id}"
        fail, pay, confirm = (float(x) for x in rng.random(3))
        self._next(kind, owners, rate, t)
        share = w.client_share if kind == "client" else w.trader_share
        unit = 10 ** exponent(who.settlement_currency or "USDT")
        amount = int(max(0, who.available - w.fee) * share) // unit * unit
        if amount <= 0 or amount < w.minimum:
            self.skipped += 1
            return
        self._seq += 1
        p = Payout(f"sim-pay-{self._seq:07d}", who, ref, amount, w.fee)
        self._hold(p, +1)
        sim = self.sim
        now = sim.env._now
        self.created.append((now, p.payout_id, p.owner_ref, amount))
        sim.emitter.payout_created(now, p.payout_id, p.owner_ref, amount, w.fee)
        if fail < w.fail:
            sim._at(now + w.pay_delay.sample(pay), self._failed, p)
        else:
            delay = w.pay_delay.sample(pay)
            sim._at(now + delay, self._paid, p, now + delay + w.confirm_delay.sample(confirm))

    def _hold(self, p: Payout, sign: int) -> None:
        who, x = p.owner, p.amount + p.fee
        who.held += sign * x
        if p.trader:
            who.payout_held += sign * x  # type: ignore[union-attr]
            self.sim._sync(who)  # type: ignore[arg-type]

    def _paid(self, p: Payout, confirm_at: float) -> None:
        self.sim.emitter.payout_paid(self.sim.env._now, p.payout_id)
        self.sim._at(confirm_at, self._confirmed, p)

    def _confirmed(self, p: Payout) -> None:
        """The money leaves: released from the hold and taken from the balance."""
        sim = self.sim
        self._hold(p, -1)
        p.owner.balance -= p.amount + p.fee
        if p.trader:
            sim._sync(p.owner)  # type: ignore[arg-type]
        sim.emitter.payout_confirmed(sim.env._now, p.payout_id)
        self._end(p, "confirmed")

    def _failed(self, p: Payout) -> None:
        """The bank refused it: the money is the owner's again (and may back an order now)."""
        sim = self.sim
        self._hold(p, -1)
        sim.emitter.payout_failed(sim.env._now, p.payout_id)
        who = p.owner
        if p.trader:
            sim._freed(who)  # type: ignore[arg-type]
        else:
            sim._up(who)
            for cur in sim.pending:
                sim._want(cur)
        self._end(p, "failed")

    def _end(self, p: Payout, how: str) -> None:
        self.log.append((self.sim.env._now, p.payout_id, p.owner_ref, p.amount, how))
