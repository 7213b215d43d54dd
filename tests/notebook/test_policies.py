"""Who got the work under each policy: the same runs as a comparison's, Lorenz curves exact."""

from __future__ import annotations

import polars as pl
import pytest

from workbench.notebook import policies
from workbench.sim import compare
from workbench.sim.presets import synthetic_config

CONFIG = synthetic_config(traders=10, orders_per_day=400.0, days=0.5, warmup=2 * 3600.0)
POLICIES = ["production", "least_loaded", "round_robin"]


@pytest.fixture(scope="module")
def traders() -> pl.DataFrame:
    return policies.traders_by_policy(CONFIG, POLICIES, seed=3, replication=1)


def test_one_row_per_trader_present_per_policy(traders: pl.DataFrame) -> None:
    assert traders["policy"].unique(maintain_order=True).to_list() == POLICIES
    assert traders.schema["earnings"] == pl.Int64
    assert traders["in_window"].all()
    for (_,), part in traders.group_by("policy"):
        assert part["trader_id"].is_unique().all()


def test_ginis_are_the_comparison_s_for_that_replication(traders: pl.DataFrame) -> None:
    result = compare(CONFIG, POLICIES, seed=3, replications=2, progress=False)
    rep = result.replications.filter(pl.col("replication") == 1).sort("policy")
    ginis = policies.ginis(traders).sort("policy")
    assert ginis["gini_completed"].to_list() == rep["gini_orders"].to_list()
    assert ginis["gini_earnings"].to_list() == rep["gini_earnings"].to_list()
    # and the completed orders are the comparison's
    done = traders.group_by("policy").agg(pl.col("completed").sum()).sort("policy")
    assert done["completed"].to_list() == rep["completed"].to_list()


def test_lorenz_curves_run_from_nothing_to_everything(traders: pl.DataFrame) -> None:
    curves = policies.lorenz_curves(traders, "earnings")
    assert curves["policy"].unique(maintain_order=True).to_list() == POLICIES
    for (policy,), part in curves.group_by("policy", maintain_order=True):
        n = traders.filter(pl.col("policy") == policy).height
        assert part.height == n + 1
        assert part["share_of_population"][0] == 0.0 and part["share_of_total"][0] == 0.0
        assert part["share_of_population"][-1] == 1.0 and part["share_of_total"][-1] == 1.0
        assert part["share_of_total"].diff().drop_nulls().min() >= 0  # type: ignore[operator]
        assert part["gini"].n_unique() == 1


def test_comparison_tables_read_revenue_in_its_currency() -> None:
    result = compare(CONFIG, POLICIES[:2], seed=3, replications=2, progress=False)
    money = policies.money_metrics(CONFIG)
    assert money == {"revenue": "USDT"}
    means, differences = policies.comparison_tables(result, money)
    assert means.headers == ["Metric", *POLICIES[:2]]
    rows = {r[0]: r[1:] for r in means.rows()}
    revenue = result.summary.filter(
        (pl.col("metric") == "revenue") & (pl.col("policy") == "production")
    ).row(0, named=True)
    mean = f"{revenue['mean'] / 10**6:,.6f}"
    assert rows["revenue (USDT)"][0].startswith(f"{mean} ± ")
    assert f"{revenue['mean']:,.0f}" not in means.text()  # never in minor units
    assert "revenue in USDT" in (means.subtitle or "") and "minor" not in (means.subtitle or "")
    # the other metrics as `workbench simulate` prints them
    render = result.render()
    assert rows["fill_rate"][0] in render and rows["gini_orders"][1] in render
    assert differences.headers == ["Metric", "least_loaded − production"]
    assert "revenue (USDT)" in {r[0] for r in differences.rows()}
