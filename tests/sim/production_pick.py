"""The domain's view of a simulated run's assignments: which broke no rule but did not go to the
production policy's pick. A run of another policy than the platform's assigns such orders by
design; POLICY_DEVIATION must report exactly those (``test_platform_emit.py``,
``test_stress_emit.py``)."""

from __future__ import annotations

from typing import Any

from workbench.domain import payment_order as po
from workbench.domain.money import OrderPricing
from workbench.domain.scheduler import broken_rules, eligible, production_choice
from workbench.domain.world import World


def not_the_pick(events: list[Any]) -> set[str]:
    """The ``assigned`` events that broke no rule but went to another trader than
    ``production_choice(eligible(...))`` just before each, in the fold's order."""
    world, out = World(), set()
    for e in sorted(events, key=lambda e: (e.position, e.event_id)):
        if isinstance(p := e.payload, po.OrderAssigned):
            order = world.orders.get(e.aggregate_id) or po.PaymentOrderState(e.aggregate_id)
            pricing = OrderPricing(p.settlement_amount, p.platform_fee, p.trader_reward)
            if not broken_rules(world, order, p.trader_id, pricing):
                choice = production_choice(eligible(world, order, p.rate))
                if choice is not None and choice.trader_id != p.trader_id:
                    out.add(e.event_id)
        world.apply(e)
    return out
