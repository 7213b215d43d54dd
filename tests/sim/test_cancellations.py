"""Client cancellations are Erlang A abandonment: with one-slot traders, exponential service and
an exponential patience of rate θ (``SimConfig.cancel_rate``), the model is the M/M/c+M queue,
so the share of orders their clients cancel and the mean wait must be Erlang A's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from workbench.domain import payment_order as po
from workbench.sim.model import SimOrder, Simulation
from workbench.sim.presets import mmc_config
from workbench.sim.stats import mean_ci
from workbench.sim.theory import erlang_a

MU = 1 / 60  # one-minute services
THETA = MU / 5  # patience of five services on average
C, RHO = 3, 1.1  # overloaded: only the cancellations keep the queue stable
LAM = RHO * C * MU
WARM, N_OBS, REPS = 300, 2_500, 8


def _wait(o: SimOrder) -> float:
    left = o.first_assigned if o.first_assigned is not None else o.ended
    assert left is not None
    return left - o.created


def _replication(r: int) -> tuple[float, float]:
    """One run: the cohort's share cancelled by clients and its mean wait in queue (an order
    cancelled waits until it leaves). The run drains 25 patiences and 25 services past the
    cohort, so no cohort order is left waiting."""
    warmup = WARM / LAM
    end = warmup + N_OBS / LAM
    days = (end + 25 / THETA + 25 / MU) / 86_400
    cfg = mmc_config(C, LAM, MU, days=days, warmup=warmup, cancel_rate=THETA)
    sim = Simulation(cfg, "fifo", seed=77, replication=r).run()
    cohort = [o for o in sim.orders.values() if warmup <= o.created < end]
    assert all(o.ended is not None for o in cohort)
    # a client cancels only an order still waiting for a trader, and never an assigned one
    cancelled = [o for o in cohort if o.outcome == "cancelled"]
    assert all(o.first_assigned is None and o.status == po.CANCELLED for o in cancelled)
    return len(cancelled) / len(cohort), float(np.mean([_wait(o) for o in cohort]))


@pytest.fixture(scope="module")
def runs() -> list[tuple[float, float]]:
    return [_replication(r) for r in range(REPS)]


@pytest.mark.parametrize(("k", "metric"), [(0, "p_abandon"), (1, "wq")])
def test_client_cancellations_are_erlang_a(
    runs: list[tuple[float, float]], k: int, metric: str
) -> None:
    """The abandonment share and the mean wait lie inside the 95 % interval of the replication
    means around Erlang A, within 8 %; and the interval excludes Erlang A at half and at twice
    θ (the test can tell a wrong cancellation rate apart)."""
    theory = getattr(erlang_a(LAM, MU, THETA, C), metric)
    ci = mean_ci([r[k] for r in runs])
    assert ci.low <= theory <= ci.high, f"{metric}: theory {theory:.5g} outside {ci}"
    assert abs(ci.mean - theory) <= 0.08 * theory
    for other in (THETA * 2, THETA / 2):
        neighbour = getattr(erlang_a(LAM, MU, other, C), metric)
        assert not ci.low <= neighbour <= ci.high, f"{metric}: θ={other:.3g} also fits {ci}"


def test_no_cancellation_rate_cancels_nothing_and_draws_nothing() -> None:
    """Off by default: the same run with θ = 0 has no client cancellation, never touches the
    cancel stream, and gives the event log of a configuration without the field."""
    cfg = mmc_config(2, 0.9 * 2 * MU, MU, days=0.2, warmup=0.0)
    assert cfg.cancel_rate == 0.0
    sim = Simulation(cfg, "fifo", seed=5).run()
    assert sim.cancellations is None
    assert not any(o.outcome == "cancelled" for o in sim.orders.values())
    before = sim.streams["cancel"].random()
    fresh = Simulation(cfg, "fifo", seed=5)
    assert fresh.streams["cancel"].random() == before  # the run drew nothing from it
    on = Simulation(replace(cfg, cancel_rate=THETA), "fifo", seed=5).run()
    assert any(o.outcome == "cancelled" for o in on.orders.values())
    # the orders themselves (arrivals, amounts) are the same: only their fate differs
    assert [o.created for o in on.orders.values()] == [o.created for o in sim.orders.values()]


def test_cancelled_metric_is_the_share_of_patiences_shorter_than_the_expiry() -> None:
    """With no trader ever online, an order waits until its client gives up or it expires
    (fixed window W), so the ``cancelled`` metric counts the patiences shorter than W:
    a share 1 − exp(−θW) of the decided orders (binomial, within 4 standard errors), and
    cancelled + expired + open is every cohort order."""
    from workbench.sim.config import NEVER, Dist
    from workbench.sim.metrics import metrics, orders_frame

    theta, window = 1 / 600, 600.0
    base = mmc_config(2, 2_000 / 8_640, MU, days=0.1, warmup=600.0, cancel_rate=theta)
    assert base.arrivals is not None
    cfg = replace(
        base,
        traders=tuple(replace(t, shifts=((NEVER, NEVER),)) for t in base.traders),
        arrivals=replace(base.arrivals, patience=Dist.const(window)),
    )
    sim = Simulation(cfg, "fifo", seed=11).run()
    m = metrics(sim)
    assert m["completed"] == 0 and m["orders"] > 1_500
    assert m["cancelled"] + m["expired"] + m["open"] == m["orders"]
    assert m["open"] <= 2_000 / 8_640 * (window + 60)  # only the last window's orders
    frame = orders_frame(sim).filter("in_window")
    assert m["cancelled"] == (frame["outcome"] == "cancelled").sum()
    assert m["cancelled_share"] == m["cancelled"] / m["orders"]
    decided = m["cancelled"] + m["expired"]
    p = 1 - np.exp(-theta * window)
    se = np.sqrt(p * (1 - p) / decided)
    assert abs(m["cancelled"] / decided - p) <= 4 * se, (m["cancelled"] / decided, p)
    # without cancellations the same orders come (the cancel stream is apart) and all expire
    off = metrics(Simulation(replace(cfg, cancel_rate=0.0), "fifo", seed=11).run())
    assert off["orders"] == m["orders"]
    assert off["cancelled"] == 0 and off["cancelled_share"] == 0.0
    assert off["expired"] + off["open"] == off["orders"] and off["expired"] >= m["expired"]
