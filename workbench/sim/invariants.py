"""The model's invariants, checked as it runs when ``check_invariants`` is on.

Kept apart from :mod:`.model` (which calls them only with the flag on) because they are the
second opinion, not the model: every assignment asked of the catalog's rules
(:func:`workbench.domain.scheduler.rules_broken`, the one copy of them), the numpy eligibility
filter compared with those rules trader by trader, and each trader's holds and cap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..domain import payment_order as po
from ..domain.scheduler import Candidate, rules_broken

if TYPE_CHECKING:
    from .model import SimOrder, SimTrader, Simulation
    from .pool import Pool
    from .prices import Prices


def check_assignable(sim: Simulation, o: SimOrder, c: Candidate) -> None:
    """The assignment breaks no rule of catalog 4 and the order is pending."""
    t = sim.traders[c.trader_id]
    client = sim.clients[o.client_id]
    broken = rules_broken(
        t,
        direction=o.direction,
        amount=o.amount,
        currency=o.currency,
        active=len(t.active),
        tried_before=c.trader_id in o.tried,
        pricing=c.pricing if sim.cfg.money else None,
        client_available=client.available_in,
    )
    if broken or o.status != po.PENDING:
        raise AssertionError(f"{o.order_id} → {c.trader_id} breaks {broken} ({o.status})")


def check_filter(
    sim: Simulation, o: SimOrder, pool: Pool, rows: np.ndarray | list[int], prices: Prices
) -> None:
    """The column filter must pick exactly the traders the catalog's rules allow."""
    client = sim.clients[o.client_id]
    allowed = set()
    for i, t in enumerate(pool.traders):
        price = prices[int(pool.key[i])]
        broken = rules_broken(
            t,
            direction=o.direction,
            amount=o.amount,
            currency=o.currency,
            active=len(t.active),
            tried_before=t.trader_id in o.tried,
            pricing=price if sim.cfg.money else None,
            client_available=lambda _cur: client.available,
        )
        if not broken:
            allowed.add(t.trader_id)
    picked = {str(pool.ids[r]) for r in rows}
    if picked != allowed:
        raise AssertionError(
            f"{o.order_id}: filter picked {sorted(picked ^ allowed)} unlike the rules"
        )


def check_trader(sim: Simulation, t: SimTrader) -> None:
    """Held = the open payin holds + the withdrawals in flight; no more orders than the cap."""
    holds = 0
    for oid in t.active:
        o = sim.orders[oid]
        if o.direction == "payin":
            assert o.pricing is not None, f"{oid}: active but never priced"
            holds += o.pricing.payin_hold
    if sim.cfg.money and holds + t.payout_held != t.held:
        raise AssertionError(
            f"{t.trader_id}: held {t.held} but open holds sum to {holds} "
            f"and withdrawals to {t.payout_held}"
        )
    if len(t.active) > t.max_active_orders:
        raise AssertionError(f"{t.trader_id}: {len(t.active)} active over the cap")
