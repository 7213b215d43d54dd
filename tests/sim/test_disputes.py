"""Disputes worked by hand: one 100 USDT payin order, completed, disputed and resolved.

Trader reward 50 bps (0.5 USDT), client fee 200 bps (2 USDT). At completion the deposit pays
100 - 0.5 = 99.5 USDT, the client gets 100 - 2 = 98 USDT and the platform keeps 1.5. Reversed,
all of it goes back (catalog 3.3's reverse plan); upheld, nothing moves. Either way the dispute
counts in the trader's next rating (catalog 3.7: ``disputed``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from workbench.domain import payment_order as po
from workbench.domain.rating import RatingCounts, score
from workbench.sim.config import (
    Behaviour,
    ClientSpec,
    Disputes,
    Dist,
    OrderSpec,
    SimConfig,
    TraderSpec,
    Withdrawals,
)
from workbench.sim.platform import simulate_events

USDT = 1_000_000
DEPOSIT = 1_000 * USDT


def _config(reversed_share: float, direction: str = "payin", deposit: int = DEPOSIT) -> SimConfig:
    quick = Behaviour(
        decline=0.0,
        ignore=0.0,
        accept_delay=Dist.const(10.0),
        complete=Dist.const(60.0),
        low_confidence=0.0,
    )
    return SimConfig(
        traders=(TraderSpec("t1", "RUB", 1, 10**12, 1, 50, deposit, behaviour=quick),),
        clients=(ClientSpec("c1", 200, 500 * USDT),),
        trace=(OrderSpec(100.0, "c1", direction, 925_000, "RUB", "o1"),),
        days=4 * 3600 / 86_400,
        rating_every=3 * 3600.0,
        top_up_every=0.0,
        disputes=Disputes(
            share=1.0,
            reversed=reversed_share,
            delay=Dist.const(600.0),
            resolve=Dist.const(1200.0),
        ),
    )


@pytest.mark.parametrize("outcome", ["upheld", "reversed"])
def test_a_payin_dispute_moves_the_money_back_only_when_reversed(outcome: str) -> None:
    sim, events = simulate_events(_config(1.0 if outcome == "reversed" else 0.0), "fifo", seed=1)
    o, t, c = sim.orders["o1"], sim.traders["t1"], sim.clients["c1"]
    assert o.outcome == "completed" and sim.disputes is not None
    assert sim.disputes.outcomes == {"o1": outcome}
    done = o.ended
    assert done is not None
    kinds = [(e.kind, e.occurred_at) for e in events if e.kind.startswith("payment_order.dispute")]
    assert kinds == [
        ("payment_order.disputed", sim.cfg.when(done + 600.0)),
        ("payment_order.dispute_resolved", sim.cfg.when(done + 1800.0)),
    ]
    if outcome == "reversed":
        assert o.status == po.CANCELLED
        assert (t.available, c.available, sim.revenue) == (DEPOSIT, 500 * USDT, 0)
        credited = [e.payload.amount for e in events if e.kind == "trader.deposit_credited"]
        assert credited == [99_500_000]
    else:
        assert o.status == po.COMPLETED
        assert (t.available, c.available, sim.revenue) == (
            DEPOSIT - 99_500_000,
            500 * USDT + 98 * USDT,
            1_500_000,
        )
    # the 3-hour rating counts one assignment, one completion on time and one dispute
    (rating,) = [e.payload for e in events if e.kind == "trader_rating.published"]
    assert rating.disputed == 1
    assert rating.score == score(RatingCounts(1, 1, 1, 1)) < score(RatingCounts(1, 1, 1, 0))


def test_a_reversal_the_trader_cannot_cover_is_upheld() -> None:
    """A payout order reversed takes settlement + reward (100.5 USDT) back from the deposit.
    The trader starts with nothing, is credited 100.5 USDT by the order, and withdraws all but
    the fee in whole USDT (99) before support decides: 0.5 USDT cannot cover the reversal, so
    support upholds the order (the domain would refuse the negative deposit otherwise)."""
    cfg = replace(
        _config(1.0, "payout", deposit=0),
        withdrawals=Withdrawals(trader_per_day=400.0, trader_share=1.0, minimum=USDT, fail=0.0),
    )
    sim, events = simulate_events(cfg, "fifo", seed=1)
    o = sim.orders["o1"]
    assert o.ended is not None and sim.withdrawals is not None and sim.disputes is not None
    asked = [(at, amount) for at, _, _, amount in sim.withdrawals.created]
    assert asked and o.ended < asked[0][0] < o.ended + 1800.0 and asked[0][1] == 99 * USDT
    assert sim.disputes.outcomes == {"o1": "upheld"} and sim.disputes.uncovered == 1
    assert o.status == po.COMPLETED
    assert not [e for e in events if e.kind == "trader.deposit_debited"]
