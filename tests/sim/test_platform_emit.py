"""A simulated run written as catalog events: every shipped policy's run is accepted by the domain
as it is written, replays without loss, audits to zero findings (audited by default, as if the
production policy ran, a run of another policy has POLICY_DEVIATION's: exactly the assignments
not given to the production policy's pick; audited as what it is, nothing), and ends with the same order statuses in the model and in the replayed
projection; the same seed writes the same bytes."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest
from production_pick import not_the_pick  # tests/sim/production_pick.py, beside this file

from workbench.audit import audit
from workbench.domain import payment_order as po
from workbench.domain.processors import CommandRejected
from workbench.replay import rebuild
from workbench.sim.config import Disputes, Dist, SimConfig, Withdrawals
from workbench.sim.model import Simulation
from workbench.sim.platform import (
    DomainRefused,
    PlatformEmitter,
    RatingDisagrees,
    simulate_events,
    write_export,
)
from workbench.sim.policies import POLICIES
from workbench.sim.presets import USDT, mmc_config, synthetic_config

SEED = 1


def _config() -> SimConfig:
    """Half a day of eight traders under more demand than they can serve (orders expire), small
    client balances (payouts wait for money, clients get topped up), a rating every three hours;
    with the rest of the platform on: clients cancelling orders that wait (mean patience 30
    min), withdrawals of balances and deposits, and one completed order in ten disputed within
    the hour and resolved within the next (half of them reversed)."""
    cfg = synthetic_config(traders=8, orders_per_day=1_600, days=0.5, clients=4, warmup=1_800.0)
    return replace(
        cfg,
        rating_every=3 * 3600.0,
        clients=tuple(replace(c, balance=300 * USDT) for c in cfg.clients),
        cancel_rate=1 / 1800,
        withdrawals=Withdrawals(client_per_day=6.0, trader_per_day=4.0, fail=0.2),
        disputes=Disputes(
            share=0.1,
            reversed=0.5,
            delay=Dist("uniform", 600.0, 3600.0),
            resolve=Dist("uniform", 600.0, 3600.0),
        ),
    )


CONFIG = _config()


def _topped_up_after_start(events: list, cfg: SimConfig) -> Counter[str]:
    """Top-ups the model asked for during the run (not the opening ones), by owner kind."""
    out: Counter[str] = Counter()
    for e in events:
        topup = e.kind == "ledger_plan.batch_held" and e.aggregate_id.startswith("topup:")
        if topup and e.occurred_at > cfg.start:
            out[e.payload.postings[0].to.partition(":")[0]] += 1
    return out


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_policy_run_replays_and_audits_to_zero(policy: str, tmp_path: Path) -> None:
    export = tmp_path / "export"
    sim, events = simulate_events(CONFIG, policy, seed=SEED, out_dir=export)

    # The run exercises every path: expiries, declines, ignores, both kinds of review, top-ups
    # of deposits and of balances, ratings checked against the domain's.
    did = Counter(kind for _, kind, _, _ in sim.log)
    outcomes = Counter(o.outcome for o in sim.orders.values())
    reviews = Counter(e.payload.reason for e in events if e.kind == "payment_order.review_started")
    topups = _topped_up_after_start(events, CONFIG)
    assert outcomes["expired"] > 0 and outcomes["completed"] > 0, outcomes
    assert did["declined"] > 0 and did["assignment_expired"] > 0, did
    assert reviews["deadline"] > 0 and reviews["low_confidence"] > 0, reviews
    assert topups["trader"] > 0 and topups["client"] > 0, topups
    assert isinstance(sim.emitter, PlatformEmitter) and sim.emitter.ratings_checked > 0
    # ... and the rest of the platform: client cancellations, both kinds of withdrawal, each
    # way a payout ends, disputes both upheld and reversed.
    cancels = Counter(e.payload.reason for e in events if e.kind == "payment_order.cancelled")
    assert cancels["client_request"] > 0 and outcomes["cancelled"] == cancels["client_request"]
    owners = Counter(
        e.payload.owner.partition(":")[0] for e in events if e.kind == "payout.created"
    )
    assert owners["client"] > 0 and owners["trader"] > 0, owners
    ends = Counter(e.kind for e in events if e.kind in ("payout.confirmed", "payout.failed"))
    assert ends["payout.confirmed"] > 0 and ends["payout.failed"] > 0, ends
    resolved = Counter(
        e.payload.outcome for e in events if e.kind == "payment_order.dispute_resolved"
    )
    assert resolved["upheld"] > 0 and resolved["reversed"] > 0, resolved

    db = tmp_path / "sim.duckdb"
    summary = rebuild([export], db, progress=False)
    assert summary.read == len(events) == summary.applied, summary
    assert summary.quarantined == 0 and summary.duplicates == 0, summary.quarantine_reasons

    findings = audit(db, record=False).findings
    # Another policy than the platform's breaks no rule but does not assign the production
    # policy's pick: those assignments, and only those, are POLICY_DEVIATION's (the domain says
    # which); the production policy's run has none.
    deviated = findings.filter(pl.col("check") == "POLICY_DEVIATION")
    assert set(deviated["event_id"]) == not_the_pick(events)
    assert policy != "production" or deviated.is_empty()
    findings = findings.filter(pl.col("check") != "POLICY_DEVIATION")
    with pl.Config(fmt_str_lengths=200, tbl_rows=30, tbl_width_chars=250):
        assert findings.is_empty(), str(findings.select("check", "subject", "detail"))
    if policy != "production":  # audited as what it is (`--other-policy`): nothing at all
        assert audit(db, record=False, production_policy=False).findings.is_empty()

    # Differential: the model's own state of every order against the replayed projection.
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT order_id, status, attempts, trader_id FROM payment_orders"
        ).fetchall()
    finally:
        con.close()
    replayed = {oid: (status, attempts, trader) for oid, status, attempts, trader in rows}
    model = {oid: (o.status, o.attempt, o.trader_id) for oid, o in sim.orders.items()}
    assert replayed.keys() == model.keys()
    differ = {oid: (model[oid], replayed[oid]) for oid in model if model[oid] != replayed[oid]}
    assert not differ, list(differ.items())[:10]


def _fingerprint(events: list) -> list[tuple]:
    """Everything an event carries, the payload as the JSON written to the export."""
    return [
        (e.event_id, e.position, e.aggregate_id, e.occurred_at, e.recorded_at, e.payload.to_json())
        for e in events
    ]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    cfg = replace(CONFIG, days=0.25)
    runs = []
    for i in (1, 2):
        _, events = simulate_events(cfg, "random", seed=SEED, out_dir=tmp_path / f"run{i}")
        runs.append(events)
    assert _fingerprint(runs[0]) == _fingerprint(runs[1])
    files = [sorted((tmp_path / f"run{i}").rglob("*.parquet")) for i in (1, 2)]
    assert [p.relative_to(tmp_path / "run1") for p in files[0]] == [
        p.relative_to(tmp_path / "run2") for p in files[1]
    ]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(*files, strict=True))
    assert {p.parent.name for p in files[0]} == {"date=2026-11-01"}
    # and the seed matters
    _, other = simulate_events(replace(cfg, days=0.05), "random", seed=SEED + 1)
    orders = [e.payload.to_json() for e in other if e.stream == "payment_order"]
    assert (
        orders
        != [e.payload.to_json() for e in runs[0] if e.stream == "payment_order"][: len(orders)]
    )


def test_a_refused_command_is_an_error_naming_the_order(tmp_path: Path) -> None:
    emitter = PlatformEmitter(CONFIG, seed=SEED)
    sim = Simulation(CONFIG, "production", SEED, emitter=emitter).run()
    done = next(o for o in sim.orders.values() if o.status == po.COMPLETED)
    t = float(sim.env.now)
    with pytest.raises(DomainRefused, match=done.order_id) as refused:
        emitter.completed(t, done)  # completing it twice
    assert isinstance(refused.value.__cause__, CommandRejected)
    with pytest.raises(DomainRefused, match=done.order_id):
        emitter.accepted(t, done)
    # A rating the domain would not publish: both figures in the message.
    tid = CONFIG.traders[0].trader_id
    with pytest.raises(RatingDisagrees, match=r"the model scores 1\.00, the domain publishes"):
        emitter.rating(t, tid, t - 60.0, Decimal("1.00"))
    # What was written before the refusals still exports.
    out = write_export(emitter.events, tmp_path / "export")
    assert sum(1 for _ in out.rglob("*.parquet")) == 1


def test_a_queue_without_money_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match=r"config\.money"):
        PlatformEmitter(mmc_config(2, 0.01, 0.01, days=1.0))
