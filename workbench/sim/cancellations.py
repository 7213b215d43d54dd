"""Client cancellations: orders abandoned by their clients while waiting for a trader.

A client who has waited longer than its patience cancels the order (catalog 3.3:
``payment_order.cancelled`` with reason ``client_request``). Patience is exponential with rate
θ = ``SimConfig.cancel_rate`` per second, counted from the order's creation, and acts only on an
order still ``pending`` (waiting for a trader: never assigned, or back in the queue after a
decline or an expired assignment); an order a trader holds is the trader's to finish. With
one-slot traders and exponential service this is the M/M/c+M queue, whose abandonment share and
waits are Erlang A's (:func:`workbench.sim.theory.erlang_a`; ``tests/sim/test_cancellations.py``).

Each order's patience is drawn when it arrives from the run's own ``cancel`` stream, one draw
per order in creation order, so the same order has the same patience under every policy (common
random numbers) and a run without cancellations draws nothing and schedules nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..domain import payment_order as po

if TYPE_CHECKING:
    from .model import SimOrder, Simulation

#: Patience draws taken from the stream at once (one numpy call per block of orders).
_BLOCK = 256


class Cancellations:
    """Schedules each new order's cancellation by its client, and carries it out."""

    def __init__(self, sim: Simulation, rate: float) -> None:
        if rate <= 0:
            raise ValueError("a cancellation rate must be positive (0 means no Cancellations)")
        self.sim = sim
        self.mean = 1.0 / rate
        self._rng = sim.streams["cancel"]
        self._block: list[float] = []

    def _patience(self) -> float:
        block = self._block
        if not block:
            block = self._block = self._rng.exponential(self.mean, _BLOCK).tolist()
            block.reverse()
        return block.pop()

    def created(self, o: SimOrder) -> None:
        """The order's client will give up at ``created + patience`` if it is still waiting; a
        patience past the order's expiry never acts (the scheduler cancels it first)."""
        at = round((o.created + self._patience()) * 1_000_000) / 1_000_000  # as events carry it
        if at < o.expires:
            self.sim._at(at, self._cancel, o)

    def _cancel(self, o: SimOrder) -> None:
        if o.status != po.PENDING:
            return
        sim = self.sim
        now = sim.env._now
        sim._log("cancelled", o, "")
        sim.emitter.cancelled(now, o, "client_request")
        del sim.pending[o.currency][o.order_id]
        o.status, o.ended, o.outcome = po.CANCELLED, now, "cancelled"
