"""The figure builders: the traces they draw, and figure JSON that is the same on every build
(plain lists, times without offsets, no random ids) so strict nbval can compare it."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
import pytest

from workbench.audit import recompute_ratings, reconcile_payouts
from workbench.domain.money import EXPONENTS, format_major, format_money
from workbench.notebook import breaks, connect, figures, policies, ratings
from workbench.sim import compare
from workbench.sim.presets import synthetic_config


def _stable(build: object) -> go.Figure:
    """Build twice: the JSON must be identical, hold no binary arrays and no time offsets."""
    first, second = build(), build()  # type: ignore[operator]
    assert isinstance(first, go.Figure)
    text = pio.to_json(first)
    assert text == pio.to_json(second)
    assert '"bdata"' not in text
    assert "+00:00" not in text
    return first


@pytest.fixture(scope="module")
def timed(sample_db: Path, sample_findings: pl.DataFrame) -> pl.DataFrame:
    return breaks.with_time(sample_db, sample_findings)


def test_breaks_over_time(timed: pl.DataFrame) -> None:
    by_day = breaks.breaks_by_day(timed)
    fig = _stable(lambda: figures.breaks_over_time(by_day))
    assert [t.name for t in fig.data] == ["high", "medium", "low"]
    assert sum(sum(t.y) for t in fig.data) == timed.height
    assert fig.data[0].x[0] == "2026-11-01"
    assert "unknown time" not in fig.layout.title.text
    unknown = pl.DataFrame(
        {"day": [date(2026, 11, 1), None], "severity": ["high", "low"], "findings": [2, 3]}
    )
    fig = figures.breaks_over_time(unknown)
    assert [t.name for t in fig.data] == ["high"]
    assert "3 of unknown time not shown" in fig.layout.title.text
    by_check = figures.breaks_over_time(breaks.breaks_by_day(timed, by="check"), by="check")
    assert len(by_check.data) == timed["check"].n_unique()


def test_money_at_stake_in_major_units_per_currency(sample_findings: pl.DataFrame) -> None:
    at_stake = breaks.money_at_stake(sample_findings)
    fig = _stable(lambda: figures.money_at_stake(at_stake))
    currencies = sorted(at_stake["currency"].unique().to_list())
    assert [t.name for t in fig.data] == currencies  # one panel each: never on one axis
    for i, (trace, currency) in enumerate(zip(fig.data, currencies, strict=True), start=1):
        axis = fig.layout[f"xaxis{'' if i == 1 else i}"]
        assert axis.type == "log"
        assert axis.title.text == f"{currency} at stake (log scale)"
        rows = at_stake.filter(pl.col("currency") == currency).sort(
            "at_stake", "check", descending=[False, True]
        )
        exp = EXPONENTS[currency]
        # drawn in major units (a float, for the axis only) ...
        assert list(trace.x) == [float(Fraction(v, 10**exp)) for v in rows["at_stake"]]
        # ... and read exactly: labels, hover and ticks in major units with the currency's digits
        assert list(trace.text) == [format_major(v, currency) for v in rows["at_stake"]]
        assert [c[0] for c in trace.customdata] == [
            format_money(v, currency) for v in rows["at_stake"]
        ]
        for value, text in zip(axis.tickvals, axis.ticktext, strict=True):
            assert Decimal(text.replace(",", "")) == Decimal(str(value))
        assert axis.tickvals[0] <= min(trace.x) and axis.tickvals[-1] >= max(trace.x)
    usdt = fig.data[currencies.index("USDT")]
    assert "8,008.000000" in usdt.text  # 8008000000 minor units, the sample's largest in USDT
    axis = fig.layout[f"xaxis{currencies.index('USDT') + 1}"]
    assert axis.ticktext[0] == "0.000001"  # USDT's smallest amount at stake: 7 minor units
    assert "minor units" not in pio.to_json(fig)


def test_the_money_axis_names_its_currency() -> None:
    frame = pl.DataFrame(
        {
            "account": ["client:a", "client:a"],
            "currency": ["RUB", "RUB"],
            "day": [date(2026, 11, 1), date(2026, 11, 2)],
            "difference": [-12345, 0],
            "drift": [-12345, -12345],
        }
    )
    fig = figures.account_drift(frame)
    assert fig.layout.yaxis.title.text == "running difference (RUB)"
    assert fig.layout.yaxis.tickformat == ",.2~f"  # at most the currency's two decimals
    assert list(fig.data[0].y) == [0.0, -123.45, -123.45, -123.45]
    assert list(fig.data[0].customdata) == ["0.00 RUB", "-123.45 RUB", "-123.45 RUB", "-123.45 RUB"]
    mixed = frame.with_columns(pl.Series("currency", ["RUB", "USDT"]), pl.lit("x").alias("account"))
    fig = figures.account_drift(mixed)
    assert fig.layout.yaxis.title.text == "running difference (major units of each line's currency)"
    assert [t.name for t in fig.data] == ["x (RUB)", "x (USDT)"]


def test_drift_lines_run_over_the_whole_period(sample_db: Path, timed: pl.DataFrame) -> None:
    drift = breaks.trader_drift(timed)
    fig = _stable(lambda: figures.trader_drift(drift))
    assert [t.name for t in fig.data] == sorted(drift["trader_id"].unique().to_list())
    first = min(x for t in fig.data for x in t.x)
    last = max(x for t in fig.data for x in t.x)
    for t in fig.data:
        assert t.x[0] == first and t.y[0] == 0  # from nothing at the start
        assert t.x[-1] == last and t.y[-1] == t.y[-2]  # flat to the end
        assert t.line.shape == "hv"
    con = connect(sample_db)
    try:
        recon = reconcile_payouts(con)
    finally:
        con.close()
    accounts = breaks.account_drift(recon)
    fig = _stable(lambda: figures.account_drift(accounts))
    assert {t.name for t in fig.data} == set(accounts["account"].to_list())
    assert fig.data[0].x[1] == "2026-11-01"


@pytest.fixture(scope="module")
def rated(sample_db: Path) -> pl.DataFrame:
    con = connect(sample_db)
    try:
        return ratings.with_components(recompute_ratings(con))
    finally:
        con.close()


def test_rating_components(rated: pl.DataFrame) -> None:
    who = ratings.pick_trader(rated)
    fig = _stable(lambda: figures.rating_components(rated, who))
    assert [t.stackgroup for t in fig.data[:3]] == ["score"] * 3
    mine = rated.filter(pl.col("trader_id") == who).sort("seq")
    published = fig.data[3]
    assert list(published.y) == mine["score_published"].to_list()
    crosses = [s == "x" for s in published.marker.symbol]
    assert crosses == [not m for m in mine["matches"].to_list()]
    with pytest.raises(ValueError, match="no ratings"):
        figures.rating_components(rated, "nobody")


def test_score_distribution(rated: pl.DataFrame) -> None:
    fig = _stable(lambda: figures.score_distribution(rated))
    assert len(fig.data) == 1 and fig.data[0].type == "box"
    assert len(fig.data[0].y) == rated.height


@pytest.fixture(scope="module")
def comparison() -> object:
    config = synthetic_config(traders=8, orders_per_day=300.0, days=0.5, warmup=3600.0)
    return compare(
        config, ["production", "least_loaded", "fifo"], seed=2, replications=3, progress=False
    )


def test_lorenz() -> None:
    traders = pl.DataFrame(
        {"policy": ["a", "a", "a", "b", "b", "b"], "completed": [0, 0, 3, 1, 1, 1]}
    )
    curves = policies.lorenz_curves(traders)
    fig = _stable(lambda: figures.lorenz(curves, "orders"))
    assert [t.name for t in fig.data] == ["equality", "a (Gini 0.667)", "b (Gini 0.000)"]
    assert list(fig.data[1].y) == [0.0, 0.0, 0.0, 1.0]


def test_policy_intervals_and_differences(comparison: object) -> None:
    metrics = ["fill_rate", "gini_orders", "revenue"]
    summary = comparison.summary  # type: ignore[attr-defined]
    diffs = comparison.differences  # type: ignore[attr-defined]
    fig = _stable(lambda: figures.policy_intervals(summary, metrics))
    assert len(fig.data) == len(metrics)
    gini = fig.data[1]
    rows = summary.filter(pl.col("metric") == "gini_orders")
    assert list(gini.x) == rows["policy"].to_list()
    for y, plus, high in zip(gini.y, gini.error_y.array, rows["high"].to_list(), strict=True):
        assert math.isclose(y + plus, high)
    fig = _stable(lambda: figures.policy_differences(diffs, metrics))
    assert list(fig.data[0].x) == ["least_loaded − production", "fifo − production"]
    shapes = [s for s in fig.layout.shapes if s.y0 == 0 and s.y1 == 0]
    assert len(shapes) == len(metrics)  # a zero line in every panel


def test_a_money_metric_is_drawn_in_its_currency(comparison: object) -> None:
    summary = comparison.summary  # type: ignore[attr-defined]
    fig = figures.policy_intervals(summary, ["fill_rate", "revenue"], {"revenue": "USDT"})
    revenue = summary.filter(pl.col("metric") == "revenue")
    assert list(fig.data[1].y) == [v / 10**6 for v in revenue["mean"].to_list()]
    assert fig.layout.yaxis2.title.text == "USDT" and fig.layout.yaxis.title.text is None
    assert "USDT" in fig.data[1].hovertemplate and "USDT" not in fig.data[0].hovertemplate


def test_an_infinite_interval_is_left_out() -> None:
    summary = pl.DataFrame(
        {
            "policy": ["a"],
            "metric": ["fill_rate"],
            "mean": [0.5],
            "low": [-math.inf],
            "high": [math.inf],
            "level": [0.95],
        }
    )
    fig = figures.policy_intervals(summary, ["fill_rate"])
    assert list(fig.data[0].error_y.array) == [None]
    pio.to_json(fig)  # serialisable
