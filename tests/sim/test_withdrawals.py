"""Withdrawals drain the money the scheduler's rules look at: worked by hand on one trader.

One trader, always online, 5 slots, reward 0, deposit 10,000 USDT, no top-ups; a payin order of
9,250.00 RUB every 5 minutes (100 USDT at 92.50: each holds 100 USDT of the deposit while
worked, 60 s, and takes it at completion). Without withdrawals the deposit backs all 20 orders.
With the trader withdrawing everything it has available (less the 1 USDT fee) at its first
request, no order created after that request can be assigned: its 100 USDT are not there.
The request's time is the first draw of the run's ``withdraw`` stream, computed here from the
stream itself, not from the model."""

from __future__ import annotations

from workbench.sim.config import (
    Behaviour,
    ClientSpec,
    Dist,
    OrderSpec,
    SimConfig,
    TraderSpec,
    Withdrawals,
)
from workbench.sim.model import Simulation
from workbench.sim.platform import simulate_events
from workbench.sim.streams import Streams

USDT = 1_000_000
SEED = 3
PER_DAY = 12.0  # the first request comes after two hours on average


def _config(w: Withdrawals | None) -> SimConfig:
    quick = Behaviour(
        decline=0.0, ignore=0.0, accept_delay=Dist.const(0.0), complete=Dist.const(60.0)
    )
    trader = TraderSpec("t1", "RUB", 1, 10**12, 5, 0, 10_000 * USDT, behaviour=quick)
    orders = tuple(
        OrderSpec(300.0 * (i + 1), "c1", "payin", 925_000, "RUB", f"o{i:02d}") for i in range(20)
    )
    return SimConfig(
        traders=(trader,),
        clients=(ClientSpec("c1", 0, 0),),
        trace=orders,
        days=7_200 / 86_400,
        rating_every=0.0,
        top_up_every=0.0,
        withdrawals=w,
    )


def _first_request() -> float:
    """When the trader first asks (one trader: the stream's first exponential draw)."""
    return float(Streams(SEED)["withdraw"].exponential(86_400 / PER_DAY))


def test_a_drained_deposit_takes_fewer_payins() -> None:
    t1 = _first_request()
    assert 300.0 < t1 < 6_000.0, "the seed puts the request inside the run, after an order"
    before = sum(1 for i in range(20) if 300.0 * (i + 1) < t1)

    plain = Simulation(_config(None), "fifo", seed=SEED).run()
    assert sum(o.first_assigned is not None for o in plain.orders.values()) == 20

    w = Withdrawals(trader_per_day=PER_DAY, trader_share=1.0, fail=0.0)
    sim = Simulation(_config(w), "fifo", seed=SEED, check_invariants=True).run()
    assert sim.withdrawals is not None
    (at, _, owner, amount), *_ = sim.withdrawals.created
    assert at == round(t1 * 1e6) / 1e6 and owner == "trader:t1"
    # everything available but the fee, in whole USDT: the 100 USDT a payin needs is gone
    available = 10_000 * USDT - before * 100 * USDT
    assert amount == (available - USDT) // USDT * USDT
    assigned = sorted(o.order_id for o in sim.orders.values() if o.first_assigned is not None)
    assert assigned == [f"o{i:02d}" for i in range(before)]
    t = sim.traders["t1"]
    assert t.available == available - amount - w.fee  # withdrawn (or held for it)


def test_a_failed_withdrawal_gives_the_money_back_and_the_orders_go() -> None:
    """The bank refuses it ``pay_delay`` (10 min) after the request: the money is the trader's
    again at that instant, and the orders that waited for it are assigned then."""
    t1 = _first_request()
    w = Withdrawals(trader_per_day=PER_DAY, trader_share=1.0, fail=1.0, pay_delay=Dist.const(600.0))
    sim = Simulation(_config(w), "fifo", seed=SEED, check_invariants=True).run()
    back = round((round(t1 * 1e6) / 1e6 + 600.0) * 1e6) / 1e6
    waited = [o for o in sim.orders.values() if t1 <= o.created < back]
    assert waited and all(o.first_assigned == back for o in waited)
    assert all(o.first_assigned is not None for o in sim.orders.values())


def test_withdrawals_write_payouts_the_domain_accepts() -> None:
    """The same runs through the domain: the payout's plan and the trader's hold as the catalog
    books them, and the model's available deposit equal to the domain's at the end."""
    for fail in (0.0, 1.0):
        w = Withdrawals(trader_per_day=PER_DAY, trader_share=1.0, fail=fail)
        _, events = simulate_events(_config(w), "fifo", seed=SEED)
        kinds = [e.kind for e in events if e.stream == "payout"]
        assert kinds[:2] == ["payout.created", "payout.failed" if fail else "payout.paid"]
        holds = [e.kind for e in events if e.aggregate_id == "t1" and "hold" in e.kind]
        assert ("trader.hold_released" if fail else "trader.hold_captured") in holds
