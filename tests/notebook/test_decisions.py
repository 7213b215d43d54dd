"""The scheduler's notebook helpers (``workbench.notebook.decisions``, ``Scope.reviews``) on the
replayed sample: every review drawn once where it belongs, the threshold where it was asked,
the broken assignments read back from their findings."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from workbench.audit import review_times
from workbench.domain.scheduler import RULES
from workbench.notebook import decisions, scope


def test_every_review_is_drawn_under_its_reason(sample_db: Path) -> None:
    times = review_times(sample_db)
    fig = decisions.review_hours(times, 12)
    boxes = [t for t in fig.data if t.type == "box"]
    crosses = [t for t in fig.data if t.type == "scatter"]
    assert sorted(t.name for t in boxes) == sorted(times["reason"].unique().to_list())
    assert sum(len(t.y) for t in boxes) == times.height  # each review once
    for box in boxes:
        mine = times.filter(pl.col("reason") == box.name)
        assert sorted(box.y) == sorted(mine["hours"].to_list())
    still = times.filter(pl.col("still_open"))
    assert sum(len(t.y) for t in crosses) == still.height
    assert all(t.marker.symbol == "x" for t in crosses)
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == 12
    assert times["hours"].max() > 24  # the sample's planted overdue reviews are drawn too


def test_reviews_in_scope_are_those_started_within_the_days(sample_db: Path) -> None:
    times = review_times(sample_db)
    days = times["started_at"].dt.date()
    first, last = date(2026, 11, 3), date(2026, 11, 4)
    kept = scope(None, first, last).reviews(times)
    assert 0 < kept.height < times.height
    assert kept.height == ((days >= first) & (days <= last)).sum()
    assert scope().reviews(times).height == times.height


def test_broken_assignments_name_their_trader_and_rules(sample_findings: pl.DataFrame) -> None:
    broke = decisions.broken_assignments(sample_findings)
    assert broke.height == sample_findings.filter(pl.col("check") == "ASSIGNMENT_VIOLATION").height
    assert broke.height > 0 and broke["assigned_to"].null_count() == 0
    named = {r for rules in broke["rules"].to_list() for r in rules.split(", ")}
    assert named and named <= set(RULES)
    by = decisions.counted(broke, "rules")
    assert by["assignments"].sum() == broke.height
    assert by["assignments"].to_list() == sorted(by["assignments"].to_list(), reverse=True)


def test_deviation_shares_in_scope_keep_the_days_and_the_traders_own_figures(
    sample_db: Path,
) -> None:
    """A day range keeps exactly those days' rows; a trader keeps every assignment it was given
    or was the pick of, so its own counts are the whole history's (the sample plants one
    deviation a day)."""
    every = decisions.policy_shares(sample_db)
    assert every.by_day["deviations"].sum() == every.by_trader["deviated"].sum() > 0
    first, last = date(2026, 11, 3), date(2026, 11, 4)
    days = decisions.policy_shares(sample_db, scope(None, first, last))
    assert days.by_day.equals(every.by_day.filter(pl.col("day").is_between(first, last)))
    deviant = every.by_trader.filter(pl.col("deviated") > 0)["trader_id"][0]
    mine = decisions.policy_shares(sample_db, scope(None, trader=deviant))
    row = mine.by_trader.filter(pl.col("trader_id") == deviant)
    assert row.equals(every.by_trader.filter(pl.col("trader_id") == deviant))
    assert mine.by_day["assignments"].sum() < every.by_day["assignments"].sum()
