"""The score's components add up to the domain's score, and the ratings frames on the sample."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.audit import recompute_ratings
from workbench.domain.rating import DEFAULT_SCORE, RatingCounts, score
from workbench.notebook import connect, ratings


@st.composite
def counts(draw: st.DrawFn) -> RatingCounts:
    a = draw(st.integers(0, 10_000))
    c = draw(st.integers(0, a))
    o = draw(st.integers(0, c))
    d = draw(st.integers(0, c))
    return RatingCounts(a, c, o, d)


@given(counts())
def test_components_add_up_to_the_catalog_score(c: RatingCounts) -> None:
    parts = ratings.components(c)
    assert parts.rounded() == Fraction(score(c))
    assert 0 <= parts.completion <= 60 and 0 <= parts.on_time <= 30 and 0 <= parts.disputes <= 10


def test_components_at_zero_counts_are_the_default_score() -> None:
    parts = ratings.components(RatingCounts(0, 0, 0, 0))
    assert (parts.completion, parts.on_time, parts.disputes) == (30, 15, 10)
    assert parts.rounded() == Fraction(DEFAULT_SCORE)


@pytest.fixture(scope="module")
def frame(sample_db: Path) -> pl.DataFrame:
    con = connect(sample_db)
    try:
        return ratings.with_components(recompute_ratings(con))
    finally:
        con.close()


def test_components_of_every_sample_rating(frame: pl.DataFrame) -> None:
    assert frame.schema["as_of"] == pl.Datetime("us", "UTC")
    for col in ratings.COMPONENTS:
        assert frame.schema[col] == pl.Float64
    total = frame.select(sum(pl.col(c) for c in ratings.COMPONENTS)).to_series()
    diff = (total - frame["score_formula"]).abs()
    assert diff.max() <= 0.005 + 1e-9  # the score is the total rounded to hundredths


def test_mismatches_name_the_figures_that_differ(
    frame: pl.DataFrame, sample_findings: pl.DataFrame
) -> None:
    off = ratings.mismatches(frame)
    planted = sample_findings.filter(pl.col("check") == "RATING_MISMATCH")
    assert off.height == planted.height > 0
    assert set(off["event_id"].to_list()) == set(planted["event_id"].to_list())
    for row in off.iter_rows(named=True):
        assert row["differs"], row
        for figure in ratings.FIGURES:
            assert (figure in row["differs"]) == (row[figure] != row[f"{figure}_recomputed"])


def test_pick_trader_and_latest(frame: pl.DataFrame) -> None:
    off = ratings.mismatches(frame)
    worst = off.group_by("trader_id").len().sort("len", "trader_id", descending=[True, False])
    assert ratings.pick_trader(frame) == worst["trader_id"][0]
    latest = ratings.latest(frame)
    assert latest.height == frame["trader_id"].n_unique()
    top = frame.group_by("trader_id").agg(pl.col("seq").max())
    assert latest.join(top, on=["trader_id", "seq"]).height == latest.height
    with pytest.raises(ValueError):
        ratings.pick_trader(frame.head(0))
