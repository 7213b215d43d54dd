"""Trader ratings for a notebook: the formula split into its three components, the mismatches
between published and recomputed ratings, and a trader worth looking at.

The catalog's score (3.7, :func:`workbench.domain.rating.score`) is the sum of three parts::

    completion = 60 · (completed + 1) / (assignments + 2)
    on_time    = 30 · (on_time + 1) / (completed + 2)
    disputes   = 10 · (1 − disputed / (completed + 1))

rounded half-even to hundredths once, after the sum. :func:`components` gives the parts exactly
(fractions); the frames carry them as floats, for charts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import polars as pl

from ..domain.money import div_round_half_even
from ..domain.rating import RatingCounts

#: The figures a rating publishes and the audit recomputes.
FIGURES: tuple[str, ...] = ("assignments", "completed", "on_time", "disputed", "score")

#: The score's components, in the formula's order, as the columns :func:`with_components` adds.
COMPONENTS: tuple[str, ...] = ("completion_points", "on_time_points", "dispute_points")

#: For a table of published figures beside recomputed ones: a header over each pair, and the
#: pair's own headers.
PAIRS: dict[str, list[str]] = {
    name: [f, f"{f}_recomputed"]
    for name, f in zip(
        ("Assignments", "Completed", "On time", "Disputed", "Score"), FIGURES, strict=True
    )
}
PAIR_LABELS: dict[str, str] = {
    **{f: "published" for f in FIGURES},
    **{f"{f}_recomputed": "recomputed" for f in FIGURES},
}

#: Headers of a rating table that shows the recomputed figures (and both scores).
LABELS: dict[str, str] = {
    "assignments_recomputed": "Assignments",
    "completed_recomputed": "Completed",
    "on_time_recomputed": "On time",
    "disputed_recomputed": "Disputed",
    "completion_points": "Completion",
    "on_time_points": "On time (points)",
    "dispute_points": "Disputes (points)",
    "score_recomputed": "Score (formula)",
    "score": "Score (published)",
    "matches": "Matches",
}

#: Digits a rating table shows: scores in hundredths (more if a published score has them),
#: components to two places.
DECIMALS: dict[str, int] = {"score": 2, "score_recomputed": 2, **dict.fromkeys(COMPONENTS, 2)}


@dataclass(frozen=True, slots=True)
class Components:
    """The three parts of a score, exact; ``total`` is the score before rounding."""

    completion: Fraction
    on_time: Fraction
    disputes: Fraction

    @property
    def total(self) -> Fraction:
        return self.completion + self.on_time + self.disputes

    def rounded(self) -> Fraction:
        """The score as published: the total rounded half-even to hundredths."""
        hundredths = self.total * 100
        return Fraction(div_round_half_even(hundredths.numerator, hundredths.denominator), 100)


def components(c: RatingCounts) -> Components:
    """The completion, on-time and dispute parts of the score of counts ``c``."""
    return Components(
        completion=60 * Fraction(c.completed + 1, c.assignments + 2),
        on_time=30 * Fraction(c.on_time + 1, c.completed + 2),
        disputes=10 * (1 - Fraction(c.disputed, c.completed + 1)),
    )


def with_components(ratings: pl.DataFrame, *, recomputed: bool = True) -> pl.DataFrame:
    """``ratings`` (a frame from :func:`workbench.audit.recompute_ratings`) with the score's
    components (:data:`COMPONENTS`, floats) of the recomputed counts (or, with
    ``recomputed=False``, of the published ones), the published and recomputed scores as
    floats (``score_published``, ``score_formula``), and ``as_of`` in UTC."""
    suffix = "_recomputed" if recomputed else ""
    parts = [
        components(RatingCounts(int(a or 0), int(c or 0), int(o or 0), int(d or 0)))
        for a, c, o, d in ratings.select(
            f"assignments{suffix}", f"completed{suffix}", f"on_time{suffix}", f"disputed{suffix}"
        ).iter_rows()
    ]
    return ratings.with_columns(
        pl.col("as_of").dt.convert_time_zone("UTC"),
        pl.Series("completion_points", [float(p.completion) for p in parts], pl.Float64),
        pl.Series("on_time_points", [float(p.on_time) for p in parts], pl.Float64),
        pl.Series("dispute_points", [float(p.disputes) for p in parts], pl.Float64),
        pl.col("score").cast(pl.Float64).alias("score_published"),
        pl.col("score_recomputed").cast(pl.Float64).alias("score_formula"),
    )


def mismatches(ratings: pl.DataFrame) -> pl.DataFrame:
    """The ratings that do not match their recomputation, with ``differs``: the figures that
    differ (published vs recomputed), in :data:`FIGURES` order."""
    differs = pl.concat_list(
        [
            pl.when(pl.col(f) != pl.col(f"{f}_recomputed")).then(pl.lit(f)).otherwise(None)
            for f in FIGURES
        ]
    ).list.drop_nulls()
    return (
        ratings.filter(~pl.col("matches"))
        .with_columns(differs.alias("differs"))
        .sort("trader_id", "seq")
    )


def pick_trader(ratings: pl.DataFrame) -> str:
    """A trader worth a look: the most ratings that do not match, then the most ratings,
    then the first id."""
    counts = (
        ratings.group_by("trader_id")
        .agg(
            (~pl.col("matches")).sum().alias("off"),
            pl.len().alias("n"),
        )
        .sort(["off", "n", "trader_id"], descending=[True, True, False])
    )
    if counts.is_empty():
        raise ValueError("no ratings to pick a trader from (none in scope?)")
    return str(counts["trader_id"][0])


def latest(ratings: pl.DataFrame) -> pl.DataFrame:
    """Each trader's last published rating (highest ``seq``)."""
    return ratings.sort("trader_id", "seq").group_by("trader_id", maintain_order=True).last()
