"""Disputes: a completed order challenged, then upheld or reversed by support (catalog 3.3).

A completed order is disputed (``payment_order.disputed``) with probability ``share`` some
``delay`` after its completion; support resolves it ``resolve`` later
(``payment_order.dispute_resolved``): ``upheld`` (the order is completed again, nothing moves)
or ``reversed`` (cancelled, and the money of the completing attempt goes back in a new plan
``reverse:order:<id>`` with every posting swapped, held and committed at once). On the trader's
deposit a reversed payin is a ``deposit_credited`` of ``settlement_amount - trader_reward`` (the
client gives back what the deposit paid it) and a reversed payout a ``deposit_debited`` of
``settlement_amount + trader_reward`` (the trader gives back what the client paid). A reversal
the paying side cannot cover (its available amount below what it would give back) is upheld,
as support would not book a negative available amount (the generator's support does the same).

The dispute counts in the completing trader's rating (catalog 3.7's ``disputed``, by the
dispute's time), so disputes lower the production policy's scores. Each order's draws (whether
it will be disputed, the delays, the outcome) are taken when it is created, from the run's own
``dispute`` stream, so an order meets the same luck under every policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..domain import payment_order as po
from .config import Disputes

if TYPE_CHECKING:
    from .model import SimOrder, Simulation

#: Orders whose draws are taken from the stream at once.
_BLOCK = 256
REASONS = ("customer_claims_not_received", "wrong_amount_claimed")


class DisputeDesk:
    """Opens the disputes of completed orders and resolves them."""

    def __init__(self, sim: Simulation, d: Disputes) -> None:
        self.sim, self.d = sim, d
        self._rng = sim.streams["dispute"]
        self._block: list[list[float]] = []
        self._draws: dict[str, list[float]] = {}
        #: Order id → ``upheld`` / ``reversed`` (``open`` while support has it).
        self.outcomes: dict[str, str] = {}
        #: Reversals drawn but not covered by the paying side, so upheld.
        self.uncovered = 0

    def created(self, o: SimOrder) -> None:
        """Draw the order's dispute luck now (kept only for the orders that will be disputed)."""
        block = self._block
        if not block:
            block = self._block = self._rng.random((_BLOCK, 5)).tolist()
            block.reverse()
        u = block.pop()
        if u[0] < self.d.share:
            self._draws[o.order_id] = u

    def completed(self, o: SimOrder) -> None:
        u = self._draws.get(o.order_id)
        if u is not None:
            self.sim._at(self.sim.env._now + self.d.delay.sample(u[1]), self._dispute, o)

    def _dispute(self, o: SimOrder) -> None:
        if o.status != po.COMPLETED:
            return
        sim = self.sim
        now = sim.env._now
        u = self._draws[o.order_id]
        o.status = po.DISPUTED
        self.outcomes[o.order_id] = "open"
        t = sim.traders[o.trader_id or ""]
        t.disputed_us.append(round(now * 1_000_000))
        sim._log("disputed", o, t.trader_id)
        sim.emitter.disputed(now, o, REASONS[int(u[4] * len(REASONS)) % len(REASONS)])
        sim._at(now + self.d.resolve.sample(u[2]), self._resolve, o)

    def _resolve(self, o: SimOrder) -> None:
        sim = self.sim
        u = self._draws.pop(o.order_id)
        outcome = "reversed" if u[3] < self.d.reversed else "upheld"
        if outcome == "reversed" and not self._covered(o):
            outcome = "upheld"
            self.uncovered += 1
        now = sim.env._now
        sim._log(f"dispute_{outcome}", o, o.trader_id or "")
        sim.emitter.dispute_resolved(now, o, outcome)
        self.outcomes[o.order_id] = outcome
        if outcome == "upheld":
            o.status = po.COMPLETED
            return
        o.status = po.CANCELLED
        self._reverse(o)

    def _covered(self, o: SimOrder) -> bool:
        p = o.pricing
        if p is None or not self.sim.cfg.money:
            return True
        if o.direction == "payin":  # the client gives back settlement - fee
            return self.sim.clients[o.client_id].available >= p.settlement_amount - p.platform_fee
        return self.sim.traders[o.trader_id or ""].available >= p.payout_credit

    def _reverse(self, o: SimOrder) -> None:
        """The completing attempt's money back, as the reverse plan books it."""
        sim, p = self.sim, o.pricing
        assert p is not None
        t = sim.traders[o.trader_id or ""]
        sim.revenue -= p.platform_net
        t.earnings -= p.trader_reward
        if not sim.cfg.money:
            return
        c = sim.clients[o.client_id]
        if o.direction == "payin":
            t.balance += p.payin_hold
            c.balance -= p.settlement_amount - p.platform_fee
            sim._sync(t)
            sim._freed(t)  # more deposit: it may back a payin now
        else:
            t.balance -= p.payout_credit
            c.balance += p.client_payout_cost
            sim._sync(t)
            sim._up(c)
            for cur in sim.pending:
                sim._want(cur)
