"""The simulator's fast paths give the same runs as the plain ones they replace.

Each shortcut taken for speed (issue 14, item 4) is checked against the path it stands in for:
calls scheduled without a ``Timeout`` run in the order timeouts would; the loop over a few free
traders picks exactly the rows numpy's filter over the whole pool picks (a whole run each way,
with ``check_invariants``, which also asks the catalog's ``rules_broken`` of every trader and
re-filters every order a dispatch passes over); draws taken in blocks are the numbers drawn one
order at a time; the collector paused for a run is restored. Then a sweep on a running Dask
scheduler, by address, as ``workbench sweep --scheduler`` is documented to work.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from workbench.cli import main
from workbench.sim.calls import call_later
from workbench.sim.metrics import orders_frame, traders_frame
from workbench.sim.model import DRAWS, PREDRAWN, Simulation
from workbench.sim.pool import argmin_lists
from workbench.sim.presets import synthetic_config
from workbench.sim.streams import Streams
from workbench.sim.study import run_cell
from workbench.sim.sweep import configure

#: Twelve traders under more demand than they serve: orders wait, dispatches pass over them.
BUSY = synthetic_config(traders=12, orders_per_day=3_000, days=0.25, clients=4, warmup=0.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from([0, 0, 1.5, 2.0, 3.25])), max_size=30))
def test_calls_run_in_the_order_timeouts_would(plan: list[tuple[bool, float]]) -> None:
    """A mix of Timeouts and Calls, many at equal times: processed by time, then in the order
    scheduled, whichever kind each is (so a Call stands in for a timeout without reordering)."""
    env = simpy.Environment()
    seen: list[int] = []
    for i, (as_call, delay) in enumerate(plan):
        if as_call:
            call_later(env, delay, seen.append, i)
        else:
            env.timeout(delay).callbacks.append(lambda _e, i=i: seen.append(i))
    env.run()
    assert seen == sorted(range(len(plan)), key=lambda i: (plan[i][1], i))


def _run(loop_filter_max: int, seed: int, policy: str) -> Simulation:
    sim = Simulation(BUSY, policy, seed=seed, check_invariants=True)
    sim.loop_filter_max = loop_filter_max
    return sim.run()


@pytest.mark.parametrize(("seed", "policy"), [(1, "production"), (2, "least_loaded")])
def test_the_loop_filter_and_numpy_filter_give_the_same_run(seed: int, policy: str) -> None:
    by_loop, by_numpy = _run(10_000, seed, policy), _run(0, seed, policy)
    assert by_loop.log == by_numpy.log
    assert_frame_equal(orders_frame(by_loop), orders_frame(by_numpy))
    assert_frame_equal(traders_frame(by_loop), traders_frame(by_numpy))
    # the run is one where the shortcuts matter: orders waited and were passed over
    assert by_loop.passed_over > 0 and by_numpy.passed_over == by_loop.passed_over
    outcomes = {o.outcome for o in by_loop.orders.values()}
    assert {"completed", "expired"} <= outcomes


def test_block_draws_are_the_one_at_a_time_draws() -> None:
    """Past a block's end too: the draws of 300 orders, as two calls per order would take them."""
    sim = Simulation(BUSY, "production", seed=5, replication=3)
    fresh = Streams(5, 3)
    for _ in range(300):
        u = sim._behaviour_draws()
        expected = fresh["behaviour"].random((PREDRAWN, DRAWS))
        assert u[:-1] == expected.ravel().tolist() and len(u) == PREDRAWN * DRAWS + 1
        assert u[-1] == float(fresh["behaviour"].random())  # the patience
        assert sim._order_draws() == fresh["orders"].random(4).tolist()


#: Thirty traders at a light load: most choices have several candidates to rank.
LIGHT = synthetic_config(traders=30, orders_per_day=1_500, days=0.25, clients=4, warmup=0.0)


@pytest.mark.parametrize("policy", ["production", "fifo", "least_loaded", "balance_aware"])
def test_ranking_a_few_candidates_in_python_picks_what_numpy_picks(
    policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy ranks a handful of candidates over Python lists (``Candidates.lists``,
    ``argmin_lists``) and more with numpy's lexsort over the columns: whole runs each way
    give the same log and frames, and the Python path was taken."""
    import workbench.sim.policies as policies
    from workbench.sim.pool import Candidates

    ranked: list[int] = []

    def counting(*keys: list[object]) -> int | None:
        ranked.append(len(keys[0]))
        return argmin_lists(*keys)

    monkeypatch.setattr(policies, "argmin_lists", counting)
    by_python = Simulation(LIGHT, policy, seed=3, check_invariants=True).run()
    assert ranked and max(ranked) > 2
    monkeypatch.setattr(Candidates, "small_max", 0)
    ranked.clear()
    by_numpy = Simulation(LIGHT, policy, seed=3, check_invariants=True).run()
    assert not ranked
    assert by_python.log == by_numpy.log
    assert_frame_equal(orders_frame(by_python), orders_frame(by_numpy))
    assert_frame_equal(traders_frame(by_python), traders_frame(by_numpy))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.floats(1e-4, 10.0))
def test_thinning_draws_are_numpys_exponential_and_random(seed: int, top: float) -> None:
    """The arrivals' thinning takes ``scale · standard_exponential()`` and ``random_raw() >> 11``
    times 2**-53: the numbers ``exponential(scale)`` and ``random()`` give, interleaved."""
    from workbench.sim.model import _UNIT

    fast, plain = np.random.default_rng(seed), np.random.default_rng(seed)
    exponential, raw = fast.standard_exponential, fast.bit_generator.random_raw
    scale = 1 / top
    for _ in range(200):
        assert scale * exponential() == float(plain.exponential(scale))
        assert (raw() >> 11) * _UNIT == float(plain.random())


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**12), st.integers(0, 10_000), st.integers(0, 10_000))
def test_the_hold_bound_covers_the_hold(amount: int, reward_bps: int, fee_bps: int) -> None:
    """The filter skips working out a payin's hold when the trader's available deposit reaches
    the bound: the bound is never below the hold (settlement − reward, reward ≥ 0)."""
    from workbench.sim.prices import Prices

    keys = [("USDT", reward_bps), ("USDT", 0)]
    prices = Prices(keys, amount, "RUB", "92.50", fee_bps, {})
    bounds = prices.hold_bounds()
    for k in range(len(keys)):
        assert prices.payin_hold(k) <= bounds[k] == prices[k].settlement_amount
    negative = Prices([("USDT", -5)], amount, "RUB", "92.50", fee_bps, {})
    assert negative.hold_bounds() == [float("inf")]


def test_the_collector_is_paused_for_a_run_and_restored() -> None:
    class Boom(Simulation):
        def _run(self) -> Simulation:
            assert not gc.isenabled()
            raise RuntimeError("boom")

    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="boom"):
        Boom(BUSY, "production").run()
    assert gc.isenabled()
    gc.disable()
    try:  # left as it was found
        Simulation(configure(BUSY, days=0.05), "production").run()
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.fixture(scope="module")
def scheduler() -> object:
    """A real Dask scheduler on a TCP address, with one in-process worker thread."""
    from dask.distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": None},
    )
    yield cluster.scheduler_address
    cluster.close()


def test_sweep_on_a_scheduler_by_address(scheduler: str, tmp_path: Path) -> None:
    """``workbench sweep --scheduler ADDRESS`` runs its cells on that cluster; each row is the
    pure cell function (checked here in-process), in the documented order."""
    assert scheduler.startswith("tcp://")
    factory = dict(days=0.1, warmup=720.0, orders_per_day=400, traders=6)
    out = tmp_path / "sweep"
    argv = ["sweep", "--policy", "production", "--policy", "fifo", "--days", "0.1"]
    argv += ["--warmup-hours", "0.2", "--orders-per-day", "400", "--traders", "6", "--seed", "4"]
    argv += ["--param", "expire_minutes=20,40", "--replications", "2"]
    argv += ["--scheduler", scheduler, "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    frame = pl.read_parquet(out / "sweep.parquet")
    assert frame.height == 2 * 2 * 2
    keys = frame.select("expire_minutes", "policy", "replication").rows()
    assert keys == [(m, p, r) for m in (20, 40) for p in ("production", "fifo") for r in (0, 1)]
    for row in (frame.row(0, named=True), frame.row(frame.height - 1, named=True)):
        cfg = configure(None, expire_minutes=row["expire_minutes"], **factory)
        cell = run_cell(cfg, row["policy"], 4, row["replication"])
        assert {k: row[k] for k in cell} == cell


@pytest.mark.parametrize(("seed", "policy"), [(4, "production"), (6, "balance_aware")])
def test_a_dispatch_assigns_as_the_checked_path_does(
    seed: int, policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dispatch hands the filter's pick straight to the assignment (no domain ``Candidate``,
    no second ``rules_broken``); with ``check_invariants`` it builds the ``Candidate`` and asks
    the rules of every assignment. Both give the same run, and the rules were asked."""
    import workbench.sim.model as model
    from workbench.domain.scheduler import Candidate
    from workbench.sim.model import SimOrder

    asked: list[str] = []

    def counting(sim: Simulation, o: SimOrder, c: Candidate) -> None:
        asked.append(c.trader_id)
        check(sim, o, c)

    check = model.check_assignable
    monkeypatch.setattr(model, "check_assignable", counting)
    checked = Simulation(BUSY, policy, seed=seed, check_invariants=True).run()
    assigned = [e[3] for e in checked.log if e[1] == "assigned"]
    assert asked == assigned and len(assigned) > 100
    asked.clear()
    fast = Simulation(BUSY, policy, seed=seed).run()
    assert not asked
    assert fast.log == checked.log
    assert_frame_equal(orders_frame(fast), orders_frame(checked))
    assert_frame_equal(traders_frame(fast), traders_frame(checked))


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.floats(0.0, 1.0, exclude_max=True), st.sampled_from([0.0, 1e-13, 1 - 1e-13])),
    st.floats(1e-3, 1e7),
    st.floats(0.0, 3.0),
)
def test_a_lognormal_quantile_is_normaldists(u: float, median: float, sigma: float) -> None:
    """``Dist.sample`` for a lognormal calls the normal quantile without ``NormalDist``'s
    checks: the same number as ``NormalDist().inv_cdf`` of the clamped uniform."""
    import math
    from statistics import NormalDist

    from workbench.sim.config import Dist

    p = min(max(u, 1e-12), 1 - 1e-12)
    expected = median * math.exp(sigma * NormalDist().inv_cdf(p))
    assert Dist.lognormal(median, sigma).sample(u) == expected
