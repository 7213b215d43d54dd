"""Stress scenarios, each against a hand-worked case or queueing theory: the load from the
capacity formula (achieved utilisation of M/M/c and M/M/c+M against theory), the demand spike's
count against its expectation, traders offline, deposits drained until the deposit rule binds."""

from __future__ import annotations

import dataclasses
import math

import pytest

from workbench.domain.money import price_order
from workbench.sim.config import NEVER, Arrivals, Behaviour, ClientSpec, Dist, OrderSpec
from workbench.sim.model import Simulation
from workbench.sim.presets import USDT, mmc_config, synthetic_config
from workbench.sim.stats import mean_ci
from workbench.sim.stress import (
    STRESSES,
    Stress,
    apply_stress,
    at_utilisation,
    cut_shifts,
    drain,
    offline_traders,
    outage_windows,
    service_capacity,
    slot_seconds,
)
from workbench.sim.study import simulate
from workbench.sim.sweep import configure
from workbench.sim.theory import erlang_a, mmc


def test_slot_seconds_worked_by_hand() -> None:
    b = Behaviour(
        decline=0.1,
        ignore=0.1,
        accept_delay=Dist.const(10.0),
        decline_delay=Dist.const(20.0),
        complete=Dist.const(100.0),
        low_confidence=0.2,
        analyse_delay=Dist.const(30.0),
        review=Dist.const(600.0),
    )
    # a receipt: 30 s analysis + 0.2 × 600 s review + 0.8 × 5 s auto-approval + 10 s = 164 s;
    # served: 10 + 100 + half of the orders × 164 = 192 s; per attempt: 0.8 × 192 + 0.1 × 20
    # + 0.1 × 300 (ignored: the accept window) = 185.6 s; 1/0.8 attempts per order: 232 s
    assert slot_seconds(b, 300.0, 0.5, True) == pytest.approx(232.0)
    assert slot_seconds(b, 300.0, 0.5, False) == pytest.approx((0.8 * 110 + 32) / 0.8)


def test_capacity_of_mmc_is_c_mu_and_the_load_is_set_from_it() -> None:
    cfg = mmc_config(3, 0.001, 1 / 600, days=2.0, warmup=3600.0)
    assert service_capacity(cfg) == pytest.approx(3 / 600)
    loaded = at_utilisation(cfg, 0.7)
    assert loaded.arrivals is not None
    assert loaded.arrivals.orders_per_day == pytest.approx(0.7 * 3 / 600 * 86_400)
    # shifts count by their share of the measured window: one of 3 traders online half of it
    half = dataclasses.replace(
        cfg.traders[0], shifts=((cfg.warmup, cfg.warmup + (cfg.horizon - cfg.warmup) / 2),)
    )
    cfg2 = dataclasses.replace(cfg, traders=(half, *cfg.traders[1:]))
    assert service_capacity(cfg2) == pytest.approx(2.5 / 600)


@pytest.mark.parametrize(
    ("rho", "patience"),
    [(0.7, None), (1.1, 1200.0)],
    ids=["mmc-0.7", "erlang-a-1.1"],
)
def test_achieved_utilisation_matches_theory(rho: float, patience: float | None) -> None:
    """M/M/2 at 70 %: the busy share is ρ itself. Overloaded at 110 % with exponential
    patience (M/M/2+M): abandonment caps it at λ(1 − P(abandon))/(cμ) (Erlang A)."""
    c, mu = 2, 1 / 600
    base = mmc_config(c, 0.001, mu, days=3.0, warmup=0.5 * 86_400, patience=patience)
    cfg = apply_stress(base, Stress(utilisation=rho))
    lam = rho * c * mu
    expected = (
        mmc(lam, mu, c).rho if patience is None else erlang_a(lam, mu, 1 / patience, c).occupancy
    )
    reps = simulate(cfg, "fifo", seed=5, replications=5)
    ci = mean_ci(reps["utilisation"].to_list())
    assert ci.low <= expected <= ci.high, (ci, expected)
    assert abs(ci.mean - expected) < 0.05


def test_spike_triples_the_rate_for_one_hour() -> None:
    a = Arrivals(orders_per_day=240.0, surges=((7200.0, 10_800.0, 3.0),))
    assert a.rate_at(7199.0) == pytest.approx(10 / 3600)
    assert a.rate_at(7200.0) == pytest.approx(30 / 3600)
    assert a.rate_at(10_800.0) == pytest.approx(10 / 3600)
    assert a.max_rate() == pytest.approx(30 / 3600)
    with pytest.raises(ValueError, match="surge"):
        Arrivals(orders_per_day=1.0, surges=((5.0, 5.0, 2.0),))
    # the count in the spike hour: Poisson with mean 3 × 10 = 30 (10 in the hour before)
    base = mmc_config(4, 240 / 86_400, 1 / 60, days=0.125, warmup=0.0)
    cfg = apply_stress(base, Stress(spike=3.0, spike_at=2.0))
    spike, before = [], []
    for r in range(40):
        sim = Simulation(cfg, "fifo", seed=11, replication=r).run()
        created = [o.created for o in sim.orders.values()]
        spike.append(sum(7200 <= t < 10_800 for t in created))
        before.append(sum(3600 <= t < 7200 for t in created))
    for counts, mean in ((spike, 30.0), (before, 10.0)):
        observed = sum(counts) / len(counts)
        assert abs(observed - mean) < 3.5 * math.sqrt(mean / len(counts)), (observed, mean)
    with pytest.raises(ValueError, match="ends after the run"):
        apply_stress(base, Stress(spike=3.0, spike_at=2.5))


def test_offline_share_per_currency_and_cut_shifts() -> None:
    cfg = synthetic_config(traders=20, clients=2, orders_per_day=200, days=1.0, warmup=3600.0)
    per = {}
    for t in cfg.traders:
        per.setdefault(t.fiat_currency, []).append(t.trader_id)
    gone = offline_traders(cfg, 0.3, seed=2)
    for ids in per.values():  # round half to even of 0.3 × n in each currency
        assert len(gone & set(ids)) == round(0.3 * len(ids))
    assert offline_traders(cfg, 0.3, seed=2) == gone  # seeded
    # by hand: always online, out 1 h .. 3 h; a shift 0..2 h out 1 h .. 3 h; everything out
    assert cut_shifts((), 3600.0, 10_800.0) == ((0.0, 3600.0), (10_800.0, NEVER))
    assert cut_shifts(((0.0, 7200.0),), 3600.0, 10_800.0) == ((0.0, 3600.0),)
    assert cut_shifts(((0.0, 7200.0),), 0.0, NEVER) == ((NEVER, NEVER),)
    # in a run, the traders taken offline throughout serve nothing
    stressed = apply_stress(cfg, Stress(utilisation=0.6, offline=0.3, seed=2))
    sim = Simulation(stressed, "least_loaded", seed=1).run()
    served = {tid for _, kind, _, tid in sim.log if kind == "assigned"}
    assert served and not served & gone
    assert service_capacity(stressed) < service_capacity(apply_stress(cfg, Stress(utilisation=0.6)))


def test_trader_outages_are_cut_out_and_nobody_is_assigned_in_them() -> None:
    """Outages of mean 45 min three times a day per trader: the windows are Poisson (their
    count over 10 traders x 2 days within 4 standard errors of 60), each trader is offline
    through each of its windows (online share of the run down by the windows' union), and in
    a run no assignment goes to a trader inside one of its windows."""
    cfg = synthetic_config(traders=10, clients=2, orders_per_day=800, days=2.0, warmup=0.0)
    windows = outage_windows(cfg, 3.0, 45 * 60.0, seed=9)
    n = sum(len(w) for w in windows.values())
    assert abs(n - 60) <= 4 * math.sqrt(60)
    flaky = apply_stress(cfg, Stress(outages_per_day=3.0, outage_minutes=45.0, seed=9))
    sim = Simulation(flaky, "production", seed=2, check_invariants=True).run()
    us = lambda x: round(x * 1e6)  # noqa: E731  (events happen at whole microseconds)
    inside = [
        (t, tid)
        for t, kind, _, tid in sim.log
        if kind == "assigned" and any(us(lo) <= us(t) < us(hi) for lo, hi in windows[tid])
    ]
    assert not inside, inside[:5]
    went = [(t, tid) for t, kind, _, tid in sim.log if kind == "offline"]
    starts = {(round(lo, 6), tid) for tid, w in windows.items() for lo, _ in w}
    # every outage that began while its trader was on shift took it offline right then
    assert any((round(t, 6), tid) in starts for t, tid in went)
    for base, cut in zip(cfg.traders, flaky.traders, strict=True):
        gone = windows[base.trader_id]
        assert cut.shifts == _cut_all(base.shifts, gone)


def _cut_all(shifts, windows):  # type: ignore[no-untyped-def]
    for lo, hi in windows:
        shifts = cut_shifts(shifts, lo, hi)
    return shifts


def test_drained_deposits_make_the_deposit_rule_bind() -> None:
    assert drain(2_000 * USDT, 0.05) == 100 * USDT
    assert (drain(5, 0.5), drain(7, 0.5)) == (2, 4)  # half to even
    # one trader with five slots and a deposit for 2,000 USDT; two payins of 100 USDT arrive
    # together. Drained to 5 % (100 USDT) the deposit backs one hold at a time: the second
    # order waits, though slots are free, until the deposit is topped up (every 150 s: the
    # first order's completion at 100 s captured the hold, leaving nothing available).
    base = mmc_config(1, 0.001, 0.01, days=0.01, warmup=0.0)
    amount = 925_000  # 9,250.00 RUB = 100 USDT at 92.50
    hold = price_order(amount, "RUB", "92.50", "USDT", 0, 0).payin_hold
    trader = dataclasses.replace(
        base.traders[0],
        max_active_orders=5,
        deposit=2_000 * USDT,
        behaviour=Behaviour(0.0, 0.0, Dist.const(0.0), complete=Dist.const(100.0)),
    )
    cfg = dataclasses.replace(
        base,
        traders=(trader,),
        clients=(ClientSpec("c1", 0, 10**12),),
        arrivals=None,
        trace=tuple(OrderSpec(0.0, "c1", "payin", amount, "RUB", f"o{i}") for i in (1, 2)),
        money=True,
        top_up_every=150.0,
    )
    assert hold == 100 * USDT

    def assigned(c: object) -> list[float]:
        sim = Simulation(c, "fifo", seed=0).run()  # type: ignore[arg-type]
        return [t for t, kind, _, _ in sim.log if kind == "assigned"]

    assert assigned(cfg) == [0.0, 0.0]
    drained = apply_stress(cfg, Stress(deposits=0.05))
    assert drained.traders[0].deposit == 100 * USDT
    assert assigned(drained) == [0.0, 150.0]


def test_presets_apply_and_sweep_parameters_reach_them() -> None:
    cfg = synthetic_config(traders=10, clients=2, orders_per_day=200, days=1.0, warmup=3600.0)
    for name, s in STRESSES.items():
        out = apply_stress(cfg, name)
        assert out.arrivals is not None
        if s.utilisation is not None:
            expected = s.utilisation * service_capacity(cfg) * 86_400  # type: ignore[operator]
            assert out.arrivals.orders_per_day == pytest.approx(expected)
        assert bool(out.arrivals.surges) == (s.spike != 1.0)
    with pytest.raises(ValueError, match="unknown stress 'nope'; presets: calm"):
        apply_stress(cfg, "nope")
    swept = configure(None, traders=10, clients=2, days=1.0, warmup=3600.0, load=0.9)
    assert swept.arrivals is not None
    assert swept.arrivals.orders_per_day == pytest.approx(
        0.9 * service_capacity(swept) * 86_400  # type: ignore[operator]
    )
    both = configure(cfg, stress="drained", deposit_share=0.5)
    assert [t.deposit for t in both.traders] == [drain(t.deposit, 0.5) for t in cfg.traders]


def test_inline_sweep_reports_progress_and_its_cells_are_run_cell() -> None:
    from workbench.sim.study import run_cell
    from workbench.sim.sweep import sweep

    base = synthetic_config(traders=6, clients=2, orders_per_day=100, days=0.1, warmup=600.0)
    calls: list[tuple[int, int]] = []
    frame = sweep(
        base,
        ["production", "fifo"],
        {"load": [0.5, 1.1]},
        replications=2,
        seed=3,
        scheduler="inline",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(i, 8) for i in range(1, 9)]
    assert frame.columns[0] == "load" and frame["load"].to_list() == [0.5] * 4 + [1.1] * 4
    last = frame.row(-1, named=True)
    cell = run_cell(configure(base, load=1.1), "fifo", 3, 1)
    assert {k: last[k] for k in cell} == cell
