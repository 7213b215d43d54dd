"""Simulation benchmark: the full model against a plain SimPy M/M/c, per-event cost against
open orders, a big day, a sweep's scaling.

    uv run python benchmarks/sim_bench.py            # everything (a few minutes)
    uv run python benchmarks/sim_bench.py --quick    # smaller, for a smoke run
    uv run python benchmarks/sim_bench.py --only overhead,open --repeats 7

1. **Overhead.** The full model (synthetic platform: 60 traders on shifts, limits, deposits,
   receipts, reviews, ratings, top-ups, the production policy) and a textbook SimPy M/M/c (a
   Resource, one process per customer) run in the same process, one after the other, to the
   same number of SimPy events (``Environment.step`` calls, counted the same way for both), at
   3,000 and at 12,000 orders a day; each repeat times both (CPU time of this process, which a
   loaded machine disturbs less than the wall clock) and takes their ratio; the median of the
   repeats is the overhead. Target: at most 3 at 12,000 a day.
2. **Per-event cost against open orders.** The same platform from a light to an overloaded
   day (orders pile up waiting for a trader): microseconds per SimPy event against the
   time-average number of open orders. Target: flat.
3. **A big day.** One simulated day of 50,000 orders over 2,000 traders, production policy.
   Target: at most 60 s.
4. **Sweep scaling.** Two policies x 20 replications on ``dask.distributed`` with 1 and with 2
   worker processes (or on the cluster at ``--scheduler``); the frames must be identical and
   the wall time should fall.

Prints the figures and the load average; docs/performance.md records them with this command.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import time
from typing import Any

import simpy

from workbench.sim.model import Simulation
from workbench.sim.presets import synthetic_config


class Counting(simpy.Environment):
    """An Environment that counts the events it processes."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        super().step()


def plain_mmc(target_steps: int, c: int = 20, rho: float = 0.9, seed: int = 1) -> tuple[int, float]:
    """A plain SimPy M/M/c run until it has processed ``target_steps`` events; (steps, CPU s)."""
    rng = random.Random(seed)
    env = Counting()
    servers = simpy.Resource(env, capacity=c)
    mu = 1 / 600
    lam = rho * c * mu

    def customer() -> Any:
        with servers.request() as req:
            yield req
            yield env.timeout(rng.expovariate(mu))

    def source() -> Any:
        while True:
            yield env.timeout(rng.expovariate(lam))
            env.process(customer())

    env.process(source())
    start = time.process_time()
    while env.steps < target_steps:
        env.step()
    return env.steps, time.process_time() - start


def full_model(
    traders: int, orders_per_day: float, days: float, seed: int = 1
) -> tuple[Simulation, float]:
    """The full model's run; (the simulation, CPU s)."""
    cfg = synthetic_config(traders=traders, orders_per_day=orders_per_day, days=days, warmup=0)
    sim = Simulation(cfg, "production", seed=seed)
    sim.env = Counting()
    start = time.process_time()
    sim.run()
    return sim, time.process_time() - start


def open_orders(sim: Simulation) -> float:
    """The time-average number of open orders (created, not yet completed or cancelled)."""
    horizon = sim.cfg.horizon
    busy = sum(
        min(o.ended if o.ended is not None else horizon, horizon) - o.created
        for o in sim.orders.values()
    )
    return busy / horizon


def overhead(orders_per_day: float, repeats: int) -> dict[str, Any]:
    """The model against a plain M/M/c with its number of events, ``repeats`` times, side by
    side; the median ratio of their CPU times (= of their events per second)."""
    ratios, model_s, plain_s = [], [], []
    orders = 0
    for _ in range(repeats):
        sim, m = full_model(60, orders_per_day, 1.0)
        steps = sim.env.steps  # type: ignore[attr-defined]
        orders = len(sim.orders)
        # the model's objects freed first: the M/M/c's collector passes must not scan them
        del sim
        gc.collect()
        _, p = plain_mmc(steps)
        ratios.append(m / p)
        model_s.append(m)
        plain_s.append(p)
    return {
        "orders_per_day": orders_per_day,
        "orders": orders,
        "steps": steps,
        "model_s": statistics.median(model_s),
        "plain_s": statistics.median(plain_s),
        "model_rate": steps / statistics.median(model_s),
        "plain_rate": steps / statistics.median(plain_s),
        "overhead": statistics.median(ratios),
        "ratios": ratios,
    }


def per_event_cost(loads: list[float]) -> list[dict[str, float]]:
    """CPU microseconds per SimPy event at each load (orders a day, 60 traders), with the
    time-average number of open orders there."""
    out = []
    for n in loads:
        sim, seconds = full_model(60, n, 1.0)
        steps = sim.env.steps  # type: ignore[attr-defined]
        out.append(
            {
                "orders_per_day": n,
                "orders": len(sim.orders),
                "open": open_orders(sim),
                "steps": steps,
                "us_per_event": seconds / steps * 1e6,
            }
        )
    return out


def big_day(quick: bool) -> dict[str, float]:
    n, t = (10_000, 400) if quick else (50_000, 2_000)
    sim, seconds = full_model(t, n, 1.0)
    return {"orders": len(sim.orders), "traders": t, "seconds": seconds}


def sweep_scaling(quick: bool, scheduler: str | None = None) -> dict[str, Any]:
    """Wall time of the same sweep on 1 and on 2 local worker processes (or once on the
    cluster at ``scheduler``, against 1 local worker)."""
    from workbench.sim.sweep import sweep

    # Cells of a few seconds each, so that the work, not the workers' start, is what is timed.
    cfg = synthetic_config(
        traders=60, orders_per_day=2_000 if quick else 8_000, days=1.0, warmup=3 * 3600
    )
    reps = 6 if quick else 20
    out: dict[str, Any] = {"cells": 2 * reps}
    frames = {}
    runs: list[tuple[str, dict[str, Any]]] = [("workers_1", {"workers": 1})]
    runs.append(
        ("cluster", {"scheduler": scheduler}) if scheduler else ("workers_2", {"workers": 2})
    )
    for name, how in runs:
        start = time.perf_counter()
        frames[name] = sweep(
            cfg, ["production", "least_loaded"], replications=reps, seed=3, progress=False, **how
        )
        out[f"{name}_s"] = time.perf_counter() - start
    first, second = (frames[name] for name, _ in runs)
    out["second"] = runs[1][0]
    out["identical"] = first.equals(second)
    out["speedup"] = out["workers_1_s"] / out[f"{runs[1][0]}_s"]
    return out


def load() -> str:
    return (
        "load average "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
        + f" on {os.cpu_count()} cores"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    ap.add_argument("--repeats", type=int, default=5, help="repeats of the overhead (median)")
    ap.add_argument(
        "--only",
        default="overhead,open,big,sweep",
        help="comma-separated parts: overhead, open, big, sweep",
    )
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument(
        "--scheduler", help="time the sweep on this Dask scheduler too (tcp://host:8786)"
    )
    args = ap.parse_args()
    parts = set(args.only.split(","))
    print(f"start: {load()}", flush=True)
    if "overhead" in parts:
        for n in (3_000.0, 12_000.0):
            o = overhead(n, 2 if args.quick else args.repeats)
            print(
                f"overhead at {n:,.0f}/day: full model {o['orders']:,} orders, {o['steps']:,} SimPy "
                f"events in {o['model_s']:.3f} s CPU = {o['model_rate']:,.0f} events/s; plain SimPy "
                f"M/M/c {o['plain_rate']:,.0f} events/s; overhead {o['overhead']:.2f}x median of "
                f"{[round(r, 2) for r in o['ratios']]} (target <= 3 at 12,000); {load()}",
                flush=True,
            )
    if "open" in parts:
        loads = [3_000.0, 12_000.0] if args.quick else [3_000.0, 12_000.0, 30_000.0, 60_000.0]
        for r in per_event_cost(loads):
            print(
                f"per event at {r['orders_per_day']:,.0f}/day: {r['orders']:,} orders, "
                f"{r['open']:,.1f} open on average, {r['steps']:,} events, "
                f"{r['us_per_event']:.2f} us CPU per event",
                flush=True,
            )
    if "big" in parts:
        b = big_day(args.quick)
        print(
            f"big day: {b['orders']:,} orders over {b['traders']:,} traders, one simulated day in "
            f"{b['seconds']:.1f} s CPU (target <= 60 s at 50,000 x 2,000); {load()}",
            flush=True,
        )
    if "sweep" in parts and not args.skip_sweep:
        s = sweep_scaling(args.quick, args.scheduler)
        print(
            f"sweep: 2 policies x {s['cells'] // 2} replications: 1 worker {s['workers_1_s']:.1f} s, "
            f"{s['second'].replace('_', ' ')} {s[s['second'] + '_s']:.1f} s, speedup "
            f"{s['speedup']:.2f}x, identical frames: {s['identical']}; {load()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
