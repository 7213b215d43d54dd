"""The generator: deterministic, realistic, rule-abiding when clean, and honest about what it plants."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from workbench.cli import main
from workbench.domain import payment_order as po
from workbench.domain.catalog import DecodingError, try_decode
from workbench.domain.money import OrderPricing
from workbench.domain.scheduler import (
    ProductionRanker,
    broken_rules,
    choose_production,
    eligible,
    production_choice,
)
from workbench.domain.violations import CHECK_CODES, STATEMENT_CHECK_CODES
from workbench.domain.world import World
from workbench.export import ENVELOPE_SCHEMA
from workbench.generator import generate, read_truth
from workbench.generator.anomalies import UNPLANTED_CHECKS
from workbench.summary import summarize

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"days": 2, "orders_per_day": 250, "traders": 14, "clients": 4}


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.parquet"))
    }


def _events(folder: Path) -> list:
    rows = ds.dataset(str(folder), format="parquet", partitioning="hive").to_table().to_pylist()
    seen: set[str] = set()
    out = []
    for r in sorted(rows, key=lambda r: (r["position"], r["event_id"])):
        r.pop("date", None)
        if r["event_id"] in seen:
            continue
        seen.add(r["event_id"])
        e = try_decode(r)
        if not isinstance(e, DecodingError):
            out.append(e)
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("planted")
    generate(base / "export", seed=5, truth=base / "truth.csv", progress=False, **SMALL)
    return base / "export", base / "truth.csv"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("clean")
    generate(base / "export", seed=6, clean=True, progress=False, **SMALL)
    return base / "export"


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    a = generate(
        tmp_path / "a",
        seed=3,
        truth=tmp_path / "ta.csv",
        progress=False,
        days=1,
        orders_per_day=150,
        traders=8,
        clients=3,
    )
    b = generate(
        tmp_path / "b",
        seed=3,
        truth=tmp_path / "tb.csv",
        progress=False,
        days=1,
        orders_per_day=150,
        traders=8,
        clients=3,
    )
    assert a.events == b.events > 0
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert (tmp_path / "ta.csv").read_bytes() == (tmp_path / "tb.csv").read_bytes()
    c = generate(
        tmp_path / "c", seed=4, progress=False, days=1, orders_per_day=150, traders=8, clients=3
    )
    assert _digest(tmp_path / "c") != _digest(tmp_path / "a")
    assert c.events > 0


def test_export_has_the_catalog_envelope_and_daily_partitions(clean: Path) -> None:
    parts = sorted(p.name for p in clean.iterdir())
    assert parts == ["date=2026-11-01", "date=2026-11-02"]
    schema = ds.dataset(str(clean), format="parquet").schema
    for f in ENVELOPE_SCHEMA:
        assert schema.field(f.name).type == f.type


def test_clean_history_breaks_no_rule(clean: Path) -> None:
    summary, world = summarize([clean])
    assert summary.balanced
    assert summary.quarantined == [] and summary.conflicting == 0
    assert world.violations == []
    # A realistic mix: most orders complete, some are cancelled, every kind of the catalog
    # that a clean history has is there.
    status = Counter(o.status for o in world.orders.values())
    assert status["completed"] > 0.8 * sum(status.values())
    for kind in (
        "payment_order.assignment_declined",
        "payment_order.assignment_expired",
        "payment_order.review_started",
        "payment_order.dispute_resolved",
        "receipt.rejected",
        "payout.failed",
        "trader.deposit_topped_up",
        "trader.limits_changed",
        "trader_rating.published",
    ):
        assert summary.kinds[kind] > 0, kind


def test_both_schema_versions_appear(clean: Path) -> None:
    rows = (
        ds.dataset(str(clean), format="parquet")
        .to_table(columns=["kind", "schema_version"])
        .to_pylist()
    )
    versions = Counter((r["kind"], r["schema_version"]) for r in rows)
    for kind in ("trader.registered", "payment_order.created"):
        assert versions[(kind, 1)] > 0 and versions[(kind, 2)] > 0


def test_clean_assignments_obey_every_scheduler_rule(clean: Path) -> None:
    world = World()
    checked = 0
    for e in _events(clean):
        if isinstance(e.payload, po.OrderAssigned):
            order = world.orders[e.aggregate_id]
            p = e.payload
            pricing = OrderPricing(p.settlement_amount, p.platform_fee, p.trader_reward)
            assert broken_rules(world, order, p.trader_id, pricing) == [], e.event_id
            checked += 1
        world.apply(e)
    assert checked > 100


def test_fast_production_choice_equals_the_full_scan(clean: Path) -> None:
    """choose_production and ProductionRanker optimise production_choice(eligible(...)): same answer."""
    world = World()
    ranker = ProductionRanker(world)
    compared = 0
    for e in _events(clean):
        if isinstance(e.payload, po.OrderAssigned):
            order = world.orders[e.aggregate_id]
            fast = choose_production(world, order, e.payload.rate)
            slow = production_choice(eligible(world, order, e.payload.rate))
            ranked = ranker.choose(order, e.payload.rate, set(world.traders))
            assert (fast.trader_id if fast else None) == (slow.trader_id if slow else None)
            assert (fast.pricing if fast else None) == (slow.pricing if slow else None)
            assert (ranked.trader_id if ranked else None) == (slow.trader_id if slow else None)
            compared += 1
        world.apply(e)
    assert compared > 100


def test_every_check_is_planted_and_every_violation_is_explained(
    planted: tuple[Path, Path],
) -> None:
    export, truth_path = planted
    truth = read_truth(truth_path)
    planted_in_events = set(CHECK_CODES) - set(UNPLANTED_CHECKS) - set(STATEMENT_CHECK_CODES)
    assert {t.check for t in truth} == planted_in_events
    summary, world = summarize([export])
    assert summary.balanced
    ids = {t.event_id for t in truth}
    subjects = {(t.check, t.subject) for t in truth}
    for v in world.violations:
        # A negative balance stays negative over several ledger events: the planted one names
        # the event that made it negative, later ones are the same episode on the same account.
        assert v.event_id in ids or (v.code, v.subject) in subjects, str(v)
    # Each violation the domain can see by folding is found for every row of its kind.
    found = {(v.code, v.event_id) for v in world.violations}
    seen_by_fold = (
        "INVALID_TRANSITION",
        "LEDGER_PLAN_MISMATCH",
        "NEGATIVE_AVAILABLE",
        "SEQUENCE_GAP",
    )
    for t in truth:
        if t.check in seen_by_fold or t.variant == "duplicate_seq":
            assert (t.check, t.event_id) in found, t


def test_malformed_truth_matches_the_quarantine(planted: tuple[Path, Path]) -> None:
    export, truth_path = planted
    truth = [t for t in read_truth(truth_path) if t.check == "MALFORMED_EVENT"]
    summary, _ = summarize([export])
    assert sorted(q.event_id or "" for q in summary.quarantined) == sorted(
        t.event_id for t in truth
    )
    assert {q.reason for q in summary.quarantined} == {
        "bad_json",
        "unknown_kind",
        "missing_field",
        "wrong_type",
    }


def test_truth_points_at_real_events(planted: tuple[Path, Path]) -> None:
    export, truth_path = planted
    rows = (
        ds.dataset(str(export), format="parquet")
        .to_table(columns=["event_id", "stream", "aggregate_id"])
        .to_pylist()
    )
    by_id = {r["event_id"]: r for r in rows}
    for t in read_truth(truth_path):
        assert t.event_id in by_id, t


def test_truth_file_inside_the_export_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside the export"):
        generate(
            tmp_path / "x",
            truth=tmp_path / "x" / "truth.csv",
            progress=False,
            days=1,
            orders_per_day=10,
            traders=3,
            clients=1,
        )


def test_cli_generate_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "export"
    assert (
        main(
            [
                "generate",
                str(out),
                "--days",
                "1",
                "--orders-per-day",
                "60",
                "--traders",
                "5",
                "--clients",
                "2",
                "--clean",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    assert main(["generate", str(out), "--days", "1", "--clean", "--no-progress"]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
    assert main(["summary", str(out)]) == 0
    assert "balanced" in capsys.readouterr().out
    assert main(["summary", str(tmp_path / "missing")]) == 2


def test_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["generate", "out", "--days", "0"])
    assert "must be at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_committed_sample_is_what_the_readme_command_makes(tmp_path: Path) -> None:
    """The sample in data/ is reproducible from the exact command the README gives."""
    out = tmp_path / "sample_events"
    assert (
        main(
            [
                "generate",
                str(out),
                "--seed",
                "7",
                "--days",
                "7",
                "--orders-per-day",
                "600",
                "--traders",
                "24",
                "--clients",
                "6",
                "--truth",
                str(tmp_path / "truth.csv"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert _digest(out) == _digest(ROOT / "data" / "sample_events")
    assert (tmp_path / "truth.csv").read_bytes() == (
        ROOT / "data" / "sample_truth.csv"
    ).read_bytes()


def test_plant_chooses_the_variants(tmp_path: Path) -> None:
    """``--plant`` plants only the named variants; an unknown name is refused."""
    size = ["--days", "1", "--orders-per-day", "200", "--traders", "10", "--clients", "4"]
    for name, extra in (("all", []), ("two", ["--plant", "fx,duplicate_id"])):
        args = ["generate", str(tmp_path / name), *size, "--truth", str(tmp_path / f"{name}.csv")]
        assert main([*args, "--no-progress", *extra]) == 0
    everything, two = read_truth(tmp_path / "all.csv"), read_truth(tmp_path / "two.csv")
    assert {t.variant for t in two} == {"fx", "duplicate_id"}
    assert {t.variant for t in everything} > {"fx", "duplicate_id"}
    assert main(["generate", str(tmp_path / "x"), "--plant", "fx,nope", "--no-progress"]) == 2


def test_an_id_is_never_drawn_twice() -> None:
    """Ids are 32 random bits: at a million orders dozens collide, and the platform refuses a
    command on a taken id (an order silently lost, or one left waiting for its receipt). A taken
    id is drawn again."""
    import copy

    from workbench.generator import GeneratorConfig
    from workbench.generator.history import HistoryGenerator

    gen = HistoryGenerator(GeneratorConfig(seed=5), lambda items: None)
    ahead = copy.deepcopy(gen.rng)
    first = f"rc-{ahead.getrandbits(32):08x}"
    gen.used_ids.add(first)
    drawn = gen._id("rc")
    assert drawn != first and drawn == f"rc-{ahead.getrandbits(32):08x}"
    assert drawn in gen.used_ids


def test_a_moment_before_any_trader_registered_plants_nothing() -> None:
    """On a large platform traders register for hours (one every five seconds), so a planting
    moment can come before the first of them: the stuck order (it needs a currency some trader
    trades) is then left out, not a crash of the whole generation (seen at 6,000 traders)."""
    from workbench.generator import GeneratorConfig
    from workbench.generator.anomalies import Planter
    from workbench.generator.history import HistoryGenerator

    rows: list[object] = []
    gen = HistoryGenerator(GeneratorConfig(seed=5), rows.extend)
    planter = Planter(gen, seed=1)
    gen.planter = planter
    assert not gen.platform.world.traders
    planter._plant_never_expire()
    assert rows == [] and planter.truth == []
