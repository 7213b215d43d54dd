"""Fingerprints of fixed-seed simulation runs, to show a speed change leaves the results alone.

    uv run python benchmarks/sim_fingerprints.py > after.txt
    (cd ../base && uv run python benchmarks/sim_fingerprints.py) > before.txt
    diff before.txt after.txt        # nothing: the runs are identical, hash for hash

Each line is one fixed-seed run (every shipped policy at 3,000 orders a day over 60 traders,
12,000 and 30,000 a day, an overloaded ``storm``, cancellations, withdrawals, disputes and
``flaky`` outages under three policies with ``check_invariants``, 400 traders) and a hash of
its event log, its metrics, both frames and its hold durations. Not a test (the hashes are
whatever the model computes); a diff between two checkouts is the check.
"""

from __future__ import annotations

import hashlib

from workbench.sim.config import SimConfig
from workbench.sim.metrics import metrics, orders_frame, traders_frame
from workbench.sim.model import Simulation
from workbench.sim.policies import POLICIES
from workbench.sim.presets import synthetic_config
from workbench.sim.sweep import configure


def fingerprint(sim: Simulation) -> str:
    d = hashlib.sha256()
    d.update(repr(sim.log).encode())
    d.update(repr(sorted(metrics(sim).items())).encode())
    d.update(orders_frame(sim).write_csv().encode())
    d.update(traders_frame(sim).write_csv().encode())
    d.update(repr(sim.hold_durations).encode())
    return d.hexdigest()[:16]


def cases() -> list[tuple[str, SimConfig, bool]]:
    out: list[tuple[str, SimConfig, bool]] = []
    light = synthetic_config(traders=60, orders_per_day=3000, days=1.0, warmup=3600)
    out += [(policy, light, False) for policy in POLICIES]
    out.append(
        (
            "production",
            synthetic_config(traders=60, orders_per_day=12000, days=1.0, warmup=0),
            False,
        )
    )
    out.append(
        (
            "least_loaded",
            synthetic_config(traders=60, orders_per_day=30000, days=0.5, warmup=0),
            False,
        )
    )
    storm = configure(None, traders=12, orders_per_day=3000, days=1.0, warmup=0, stress="storm")
    out.append(("production", storm, True))
    platform = configure(
        None,
        traders=20,
        orders_per_day=4000,
        days=0.5,
        warmup=0,
        stress="flaky",
        cancel_per_hour=3,
        client_withdrawals=2,
        trader_withdrawals=1,
        dispute_share=0.05,
    )
    out += [(policy, platform, True) for policy in ("production", "fifo", "balance_aware")]
    big = configure(None, traders=400, orders_per_day=20000, days=0.3, warmup=0)
    out.append(("production", big, False))
    return out


def main() -> None:
    for i, (policy, cfg, check) in enumerate(cases()):
        sim = Simulation(cfg, policy, seed=i, check_invariants=check).run()
        print(i, policy, len(sim.orders), fingerprint(sim), flush=True)


if __name__ == "__main__":
    main()
