"""Metrics by hand, comparisons against the statistics they rest on, determinism, sweeps on
one and two Dask workers, and the CLI end to end."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from workbench.cli import main
from workbench.domain.money import price_order
from workbench.domain.scheduler import Deadlines
from workbench.sim.config import Behaviour, ClientSpec, Dist, OrderSpec
from workbench.sim.metrics import (
    COMPARED,
    METRICS,
    hold_durations,
    metrics,
    orders_frame,
    traders_frame,
)
from workbench.sim.model import Simulation
from workbench.sim.presets import mmc_config, synthetic_config
from workbench.sim.stats import gini, mean_ci, paired_difference, percentile
from workbench.sim.study import (
    compare,
    format_pm,
    revenue_currency,
    run_cell,
    simulate,
    stream_index,
)
from workbench.sim.sweep import configure, grid, sweep, sweep_summary

NEVER = timedelta(days=100_000)
AMOUNT = 925_000  # 9,250.00 RUB = 100 USDT at 92.50


def _small(**kw: object) -> object:
    """A small synthetic platform: a fraction of a second per run."""
    base = {"traders": 12, "orders_per_day": 400.0, "days": 0.5, "warmup": 2 * 3600.0}
    return synthetic_config(**(base | kw))  # type: ignore[arg-type]


SMALL = _small()


# --- one replication, by hand -----------------------------------------------------------------
def _by_hand() -> Simulation:
    """One trader, one slot, service exactly 100 s from acceptance, acceptance instant, orders
    expire 100 s after creation; orders at 10, 60, 100 and 500 s, warm-up 50 s, horizon 864 s.

    o1 (10) is served 10–110 (before the warm-up: not counted). o2 (60) waits for o1, is served
    110–210. o3 (100) would be free at 210 but expires at 200. o4 (500) is served 500–600."""
    base = mmc_config(1, 1.0, 0.01, days=0.01, warmup=50.0)
    instant = Behaviour(
        decline=0.0, ignore=0.0, accept_delay=Dist.const(0.0), complete=Dist.const(100.0)
    )
    trader = dataclasses.replace(base.traders[0], reward_bps=50, behaviour=instant)
    trace = tuple(
        OrderSpec(at, "c1", "payin", AMOUNT, "RUB", f"o{i}")
        for i, at in enumerate((10.0, 60.0, 100.0, 500.0), start=1)
    )
    cfg = dataclasses.replace(
        base,
        traders=(trader,),
        clients=(ClientSpec("c1", 200, 0),),
        arrivals=None,
        trace=trace,
        deadlines=Deadlines(NEVER, NEVER, timedelta(seconds=100)),
    )
    return Simulation(cfg, "fifo").run()


def test_metrics_of_a_run_worked_by_hand() -> None:
    sim = _by_hand()
    assert {o.order_id: o.outcome for o in sim.orders.values()} == {
        "o1": "completed",
        "o2": "completed",
        "o3": "expired",
        "o4": "completed",
    }
    m = metrics(sim)
    net = price_order(AMOUNT, "RUB", "92.50", "USDT", 200, 50).platform_net
    assert net > 0
    expected = {
        "orders": 3,  # o2, o3, o4: o1 came during the warm-up
        "completed": 2,
        "expired": 1,
        "cancelled": 0,  # no cancel_rate
        "open": 0,
        "fill_rate": 2 / 3,
        "expiry_rate": 1 / 3,
        "cancelled_share": 0.0,
        "accept_p50": 25.0,  # waits 50 (o2) and 0 (o4)
        "accept_p95": 47.5,  # 0 + 0.95 · 50
        "complete_p50": 125.0,  # 150 (o2) and 100 (o4)
        "complete_p95": 147.5,
        "utilisation": (60 + 100 + 100) / (864 - 50),  # busy 50–210 and 500–600 of 50–864
        "gini_orders": 0.0,  # one trader
        "gini_earnings": 0.0,
        "hold_mean": None,  # no money in an M/M/c run
        "hold_p95": None,
        "revenue": 2 * net,
        "warmup": 50.0,
    }
    assert list(m) == list(METRICS)
    for k, v in expected.items():
        assert m[k] == (pytest.approx(v) if isinstance(v, float) else v), k
    assert isinstance(m["revenue"], int)

    orders = orders_frame(sim)
    assert orders.height == 4 and orders["in_window"].sum() == 3
    assert orders.filter(pl.col("order_id") == "o2")["accept_wait"].item() == 50.0
    traders = traders_frame(sim)
    assert traders["completed"].to_list() == [2]  # the cohort
    assert traders["completed_total"].to_list() == [3]  # the whole run (o1 too)
    assert traders["utilisation"].item() == pytest.approx(m["utilisation"])


def test_metrics_agree_with_the_frames_and_the_model() -> None:
    sim = Simulation(SMALL, "production", seed=3).run()
    m = metrics(sim)
    orders = orders_frame(sim).filter("in_window")
    done = orders.filter(pl.col("outcome") == "completed")
    assert m["orders"] == orders.height > 50
    assert m["fill_rate"] == done.height / orders.height
    assert m["revenue"] == done["platform_net"].sum()
    assert m["accept_p95"] == percentile(orders["accept_wait"].drop_nulls(), 95)
    assert m["complete_p50"] == percentile(done["complete_time"], 50)
    traders = traders_frame(sim)
    assert traders["completed"].sum() == done.height
    traders = traders.filter("in_window")
    assert m["gini_orders"] == gini(traders["completed"])
    assert m["gini_earnings"] == gini(traders["earnings"])
    # the log rebuilds the model's own (whole-run, unlabelled) hold durations exactly
    assert sorted(hold_durations(sim)) == sorted(sim.hold_durations)
    assert 0 < len(hold_durations(sim, set(orders["order_id"]))) < len(sim.hold_durations)
    # the model's whole-run revenue is the same sum over every completed order
    everything = orders_frame(sim).filter(pl.col("outcome") == "completed")
    assert sim.revenue == everything["platform_net"].sum()


def test_nothing_to_measure_is_null_not_zero() -> None:
    cfg = dataclasses.replace(SMALL, warmup=SMALL.horizon - 1e-3)
    m = metrics(Simulation(cfg, "production").run())
    assert m["orders"] == 0
    assert m["fill_rate"] is None and m["accept_p50"] is None and m["revenue"] == 0


# --- comparisons ------------------------------------------------------------------------------
def test_compare_intervals_are_the_statistics_ones() -> None:
    result = compare(SMALL, ["production", "least_loaded", "fifo"], seed=2, replications=3)
    reps = result.replications
    assert reps.height == 9 and result.baseline == "production"
    assert (reps["warmup"] == SMALL.warmup).all()
    for metric in ("fill_rate", "accept_p95", "gini_orders", "revenue"):
        for policy in ("production", "least_loaded"):
            values = reps.filter(pl.col("policy") == policy).sort("replication")[metric]
            row = result.summary.filter((pl.col("policy") == policy) & (pl.col("metric") == metric))
            ci = mean_ci(values.cast(pl.Float64).to_list())
            assert row["mean"].item() == pytest.approx(ci.mean, rel=1e-12)
            assert row["low"].item() == pytest.approx(ci.low, rel=1e-12)
            assert row["half_width"].item() == pytest.approx(ci.half_width, rel=1e-12)
        a = reps.filter(pl.col("policy") == "least_loaded").sort("replication")[metric]
        b = reps.filter(pl.col("policy") == "production").sort("replication")[metric]
        d = paired_difference(a.cast(pl.Float64).to_numpy(), b.cast(pl.Float64).to_numpy())
        row = result.differences.filter(
            (pl.col("policy") == "least_loaded") & (pl.col("metric") == metric)
        )
        assert row["n"].item() == 3
        assert row["difference"].item() == pytest.approx(d.mean, rel=1e-12, abs=1e-12)
        assert row["high"].item() == pytest.approx(d.high, rel=1e-12, abs=1e-12)
        assert row["significant"].item() == (d.low > 0 or d.high < 0)
    # common random numbers: every policy sees the same orders, so that difference is exactly 0
    orders = result.differences.filter(pl.col("metric") == "orders")
    assert orders["difference"].to_list() == [0.0, 0.0] and orders["half_width"].to_list() == [0, 0]
    assert set(result.differences["metric"]) == set(COMPARED)
    assert (result.differences["warmup"] == SMALL.warmup).all()
    text = result.render()
    assert "warm-up 2 h (7200 s) excluded" in text and "least_loaded − production" in text
    # revenue read in the settlement currency's major units: the mean of the exact minor sums
    assert revenue_currency(SMALL) == "USDT"
    shown = result.render("USDT")
    assert "revenue in USDT" in shown and "revenue in USDT" not in text
    row = result.summary.filter(
        (pl.col("policy") == "production") & (pl.col("metric") == "revenue")
    ).row(0, named=True)
    minor = reps.filter(pl.col("policy") == "production")["revenue"].to_list()
    assert row["mean"] == pytest.approx(sum(minor) / len(minor), rel=1e-12)
    line = next(ln for ln in shown.splitlines() if ln.startswith("revenue "))
    assert format_pm(row["mean"] / 10**6, row["half_width"] / 10**6) in line
    assert format_pm(row["mean"], row["half_width"]) not in line


def test_simulate_is_deterministic_and_policy_order_changes_nothing() -> None:
    a = simulate(SMALL, "round_robin", seed=5, replications=2)
    assert_frame_equal(a, simulate(SMALL, "round_robin", seed=5, replications=2))
    assert a["orders"][0] != a["orders"][1]  # replications are independent draws
    for common in (True, False):
        ab = compare(SMALL, ["fifo", "random"], seed=5, replications=2, common=common)
        ba = compare(
            SMALL, ["random", "fifo"], seed=5, replications=2, baseline="fifo", common=common
        )
        assert_frame_equal(
            ab.replications.sort("policy", "replication"),
            ba.replications.sort("policy", "replication"),
        )
        assert_frame_equal(ab.differences, ba.differences)
    # without common random numbers the policies see different orders
    apart = compare(SMALL, ["fifo", "random"], seed=5, replications=2, common=False)
    by_policy = apart.replications.partition_by("policy", as_dict=True)
    assert by_policy[("fifo",)]["orders"].to_list() != by_policy[("random",)]["orders"].to_list()
    assert stream_index("fifo") != stream_index("random")
    row = run_cell(SMALL, "round_robin", 5, 1)
    assert row == a.filter(pl.col("replication") == 1).row(0, named=True)


def test_compare_rejects_what_it_cannot_pair() -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        compare(SMALL, ["production", "nope"], replications=2)
    with pytest.raises(ValueError, match="each policy once"):
        compare(SMALL, ["fifo", "fifo"], replications=2)
    with pytest.raises(ValueError, match="baseline"):
        compare(SMALL, ["fifo", "random"], baseline="production", replications=2)


# --- sweeps -----------------------------------------------------------------------------------
def test_configure_applies_parameters() -> None:
    cfg = configure(None, traders=7, orders_per_day=123, days=0.5, expire_minutes=30)
    assert len(cfg.traders) == 7 and cfg.arrivals is not None
    assert cfg.arrivals.orders_per_day == 123 and cfg.days == 0.5
    assert cfg.deadlines.expire == timedelta(minutes=30)
    bigger = configure(SMALL, traders=15, warmup=60.0, sweep_delay=2.0)
    ids = [t.trader_id for t in bigger.traders]
    assert len(set(ids)) == 15 and ids[:12] == [t.trader_id for t in SMALL.traders]
    assert ids[12] == "tr-0000~1" and bigger.warmup == 60.0 and bigger.sweep_delay == 2.0
    assert [t.trader_id for t in configure(SMALL, traders=3).traders] == ids[:3]
    with pytest.raises(ValueError, match="unknown parameter"):
        configure(SMALL, tradres=3)
    assert grid({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]


@pytest.mark.slow
def test_sweep_gives_the_same_frame_on_one_and_two_workers(tmp_path: object) -> None:
    params = {"traders": [8, 12], "expire_minutes": [30]}
    factory = dict(days=0.25, warmup=3600.0, orders_per_day=300)
    one = sweep(
        lambda **p: configure(None, **(factory | p)),
        ["production", "fifo"],
        params,
        replications=2,
        seed=4,
        workers=1,
    )
    assert one.height == 2 * 2 * 2
    assert one.columns[:4] == ["traders", "expire_minutes", "policy", "replication"]
    # the CLI on two workers: the same rows, in the same order
    out = tmp_path / "sweep"  # type: ignore[operator]
    argv = ["sweep", "--policy", "production", "--policy", "fifo", "--days", "0.25"]
    argv += ["--warmup-hours", "1", "--orders-per-day", "300", "--seed", "4"]
    argv += ["--param", "traders=8,12", "--param", "expire_minutes=30"]
    argv += ["--replications", "2", "--workers", "2", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert_frame_equal(one, pl.read_parquet(out / "sweep.parquet"))
    summary = pl.read_parquet(out / "summary.parquet")
    assert_frame_equal(summary, sweep_summary(one))
    # a cell is the pure function run in-process
    cell = run_cell(configure(None, traders=12, expire_minutes=30, **factory), "fifo", 4, 1)
    last = one.row(one.height - 1, named=True)
    assert {k: last[k] for k in cell} == cell


# --- the CLI ----------------------------------------------------------------------------------
SMALL_ARGS = ["--days", "0.5", "--warmup-hours", "2", "--traders", "12", "--orders-per-day", "400"]


def test_cli_simulate_one_policy(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "one"  # type: ignore[operator]
    argv = ["simulate", "--policy", "production", *SMALL_ARGS, "--seed", "1"]
    assert main([*argv, "--replications", "2", "--out", str(out), "--no-progress"]) == 0
    reps = pl.read_parquet(out / "replications.parquet")
    assert_frame_equal(reps, simulate(SMALL, "production", seed=1, replications=2))
    assert (out / "summary.parquet").exists() and not (out / "differences.parquet").exists()
    printed = capsys.readouterr().out
    assert "warm-up 2 h (7200 s) excluded" in printed and "fill_rate" in printed


def test_cli_simulate_compares_policies(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"  # type: ignore[operator]
    argv = ["simulate", "--policy", "production", "--policy", "least_loaded", *SMALL_ARGS]
    assert main([*argv, "--replications", "3", "--out", str(out), "--no-progress"]) == 0
    expected = compare(SMALL, ["production", "least_loaded"], replications=3)
    for name in ("replications", "differences", "summary"):
        assert_frame_equal(pl.read_parquet(out / f"{name}.parquet"), getattr(expected, name))
    diffs = pl.read_parquet(out / "differences.parquet")
    assert set(diffs["policy"]) == {"least_loaded"} and set(diffs["baseline"]) == {"production"}
    assert (diffs["warmup"] == 7200.0).all() and (diffs["level"] == 0.95).all()
    same = diffs.filter(pl.col("metric") == "orders")  # common random numbers: same orders
    assert same["difference"].item() == 0.0 and same["half_width"].item() == 0.0
    printed = capsys.readouterr().out
    assert "differences vs production" in printed and "least_loaded − production" in printed


def test_cli_simulate_refuses_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--policy", "nope", *SMALL_ARGS]) == 2
    assert "unknown policy 'nope'" in capsys.readouterr().err
    assert main(["simulate", "--days", "0.5", "--warmup-hours", "12"]) == 2
    assert "leaves nothing" in capsys.readouterr().err
    assert main(["simulate", "--trace", "missing.duckdb", "--days", "1"]) == 2
    assert "no such database" in capsys.readouterr().err
