"""Simulation benchmark: the full model against a plain SimPy M/M/c, a big day, a sweep's scaling.

    uv run python benchmarks/sim_bench.py            # everything (a few minutes)
    uv run python benchmarks/sim_bench.py --quick    # smaller, for a smoke run

1. **Overhead.** The full model (synthetic platform: shifts, limits, deposits, receipts,
   reviews, ratings, top-ups, the production policy) and a textbook SimPy M/M/c (a Resource,
   one process per customer) are run in the same process to the same number of SimPy events
   (``Environment.step`` calls, counted the same way for both); the ratio of their events per
   second is the model's overhead. Target: at most 3.
2. **A big day.** One simulated day of 50,000 orders over 2,000 traders, production policy.
   Target: at most 60 s.
3. **Sweep scaling.** Two policies × 20 replications on ``dask.distributed`` with 1 and with 2
   worker processes; the frames must be identical and the wall time should fall.

Prints the figures; docs/performance.md records them with this command.
"""

from __future__ import annotations

import argparse
import random
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
    """A plain SimPy M/M/c run until it has processed ``target_steps`` events."""
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
    start = time.perf_counter()
    while env.steps < target_steps:
        env.step()
    return env.steps, time.perf_counter() - start


def full_model(traders: int, orders_per_day: float, days: float) -> tuple[Simulation, float]:
    cfg = synthetic_config(traders=traders, orders_per_day=orders_per_day, days=days, warmup=0)
    sim = Simulation(cfg, "production", seed=1)
    sim.env = Counting()
    start = time.perf_counter()
    sim.run()
    return sim, time.perf_counter() - start


def overhead(quick: bool) -> dict[str, float]:
    sim, model_s = full_model(60, 3_000 if quick else 12_000, 1.0)
    steps = sim.env.steps  # type: ignore[attr-defined]
    plain_steps, plain_s = plain_mmc(steps)
    model_rate, plain_rate = steps / model_s, plain_steps / plain_s
    return {
        "orders": len(sim.orders),
        "steps": steps,
        "model_s": model_s,
        "model_rate": model_rate,
        "plain_s": plain_s,
        "plain_rate": plain_rate,
        "overhead": plain_rate / model_rate,
    }


def big_day(quick: bool) -> dict[str, float]:
    n, t = (10_000, 400) if quick else (50_000, 2_000)
    sim, seconds = full_model(t, n, 1.0)
    return {"orders": len(sim.orders), "traders": t, "seconds": seconds}


def sweep_scaling(quick: bool) -> dict[str, Any]:
    from workbench.sim.sweep import sweep

    # Cells of a few seconds each, so that the work, not the workers' start, is what is timed.
    cfg = synthetic_config(
        traders=60, orders_per_day=2_000 if quick else 8_000, days=1.0, warmup=3 * 3600
    )
    reps = 6 if quick else 20
    out: dict[str, Any] = {"cells": 2 * reps}
    frames = {}
    for workers in (1, 2):
        start = time.perf_counter()
        frames[workers] = sweep(
            cfg,
            ["production", "least_loaded"],
            replications=reps,
            seed=3,
            workers=workers,
            progress=False,
        )
        out[f"workers_{workers}_s"] = time.perf_counter() - start
    out["identical"] = frames[1].equals(frames[2])
    out["speedup"] = out["workers_1_s"] / out["workers_2_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    ap.add_argument("--skip-sweep", action="store_true")
    args = ap.parse_args()
    o = overhead(args.quick)
    print(
        f"overhead: full model {o['orders']:,} orders, {o['steps']:,} SimPy events in "
        f"{o['model_s']:.1f} s = {o['model_rate']:,.0f} events/s; plain SimPy M/M/c "
        f"{o['plain_rate']:,.0f} events/s; overhead {o['overhead']:.2f}x (target <= 3)",
        flush=True,
    )
    b = big_day(args.quick)
    print(
        f"big day: {b['orders']:,} orders over {b['traders']:,} traders, one simulated day in "
        f"{b['seconds']:.1f} s (target <= 60 s at 50,000 x 2,000)",
        flush=True,
    )
    if not args.skip_sweep:
        s = sweep_scaling(args.quick)
        print(
            f"sweep: 2 policies x {s['cells'] // 2} replications: 1 worker {s['workers_1_s']:.1f} s, "
            f"2 workers {s['workers_2_s']:.1f} s, speedup {s['speedup']:.2f}x, "
            f"identical frames: {s['identical']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
