"""Shipped policies under the stress presets write events that replay without loss and audit to
zero findings (but POLICY_DEVIATION's, exactly where a policy other than the platform's did not
assign the production pick): stress changes the load, never the rules (the deposit rule binding,
an outage, a spike are all things the platform handles correctly).

One replay and audit costs about 2.5 s, so CI runs each preset under one policy, every policy
at least once (9 runs); ``WORKBENCH_STRESS_MATRIX=1`` runs every policy under every preset
(63 runs, about 3 minutes), as before a release."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from production_pick import not_the_pick  # tests/sim/production_pick.py, beside this file

from workbench.audit import audit
from workbench.replay import rebuild
from workbench.sim.config import SimConfig
from workbench.sim.platform import simulate_events
from workbench.sim.policies import POLICIES
from workbench.sim.presets import synthetic_config
from workbench.sim.stress import STRESSES, Stress, apply_stress

#: A few hours of ten traders; the spike moved to 02:00 so it falls inside the run.
BASE = synthetic_config(traders=10, clients=4, orders_per_day=200.0, days=0.2, warmup=1800.0)
NAMES = list(STRESSES)
SHIPPED = sorted(POLICIES)
if os.environ.get("WORKBENCH_STRESS_MATRIX") == "1":
    CASES = [(n, p) for n in NAMES for p in SHIPPED]
else:
    CASES = [(n, SHIPPED[i % len(SHIPPED)]) for i, n in enumerate(NAMES)]


def _stressed(name: str) -> SimConfig:
    s = STRESSES[name]
    return apply_stress(BASE, Stress(**{**s.__dict__, "spike_at": 2.0}))


def test_the_ci_cases_cover_every_preset_and_every_policy() -> None:
    assert {n for n, _ in CASES} == set(NAMES) and {p for _, p in CASES} == set(SHIPPED)


@pytest.mark.parametrize(("name", "policy"), CASES)
def test_policy_under_stress_replays_and_audits_to_zero(
    name: str, policy: str, tmp_path: Path
) -> None:
    cfg = _stressed(name)
    out = tmp_path / "export"
    sim, events = simulate_events(cfg, policy, seed=3, out_dir=out)
    outcomes = {o.outcome for o in sim.orders.values()}
    assert "completed" in outcomes, outcomes
    db = tmp_path / "sim.duckdb"
    summary = rebuild([out], db, progress=False)
    assert summary.quarantined == 0 and summary.applied == len(events), summary
    findings = audit(db, record=False).findings
    # another policy than the platform's: its assignments not given to the production pick are
    # POLICY_DEVIATION's, exactly (tests/sim/production_pick.py)
    deviated = findings.filter(pl.col("check") == "POLICY_DEVIATION")
    assert set(deviated["event_id"]) == not_the_pick(events)
    findings = findings.filter(pl.col("check") != "POLICY_DEVIATION")
    with pl.Config(fmt_str_lengths=200, tbl_rows=20):
        assert findings.is_empty(), str(findings.select("check", "detail"))
