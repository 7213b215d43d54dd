"""The scheduler's decisions, for the notebook ``notebooks/scheduler_decisions.ipynb``: how long
orders sat in review (from :func:`workbench.audit.review_times`, the rows ``REVIEW_OVERDUE``
judges) and how often the scheduler did not assign the production policy's pick (from
``POLICY_DEVIATION``'s model), drawn for a risk analyst looking for a misbehaving scheduler.

Figures follow :mod:`.figures`' rules: plain lists, times as UTC strings, nothing random, so the
same frame gives the same figure JSON that the notebooks' strict checks compare.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import plotly.graph_objects as go
import polars as pl

from ..audit.policy import (
    DeviationShares,
    judged_assignments,
    policy_deviation_shares,
    shares_of,
)
from .figures import PALETTE, SEVERITY_COLOURS, _layout, _times
from .scope import Scope


def review_hours(times: pl.DataFrame, threshold_hours: float) -> go.Figure:
    """Time in review per reason (a frame from :func:`workbench.audit.review_times`): one box
    per reason (its outliers as points) and the reviews still open as crosses at their age so
    far, with the REVIEW_OVERDUE threshold as a dashed line: a point above it is a finding."""
    fig = go.Figure()
    rows = times.sort("reason", "started_at", "order_id", nulls_last=True)
    for i, reason in enumerate(rows["reason"].unique(maintain_order=True).to_list()):
        part = rows.filter(pl.col("reason").eq_missing(reason))
        colour = PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Box(
                name=str(reason),
                x=[str(reason)] * part.height,
                y=part["hours"].to_list(),
                text=part["order_id"].to_list(),
                boxpoints="outliers",
                marker={"size": 4, "color": colour},
                line={"color": colour},
                hovertemplate="%{text}: %{y:.2f} h<extra></extra>",
            )
        )
        still = part.filter(pl.col("still_open"))
        if still.height:
            fig.add_trace(
                go.Scatter(
                    name=f"{reason}, still open",
                    x=[str(reason)] * still.height,
                    y=still["hours"].to_list(),
                    text=still["order_id"].to_list(),
                    customdata=_times(still["started_at"]),
                    mode="markers",
                    marker={"size": 9, "color": colour, "symbol": "x"},
                    hovertemplate="%{text}: open for %{y:.2f} h since %{customdata}<extra></extra>",
                )
            )
    fig.add_hline(
        y=threshold_hours,
        line={"dash": "dash", "color": SEVERITY_COLOURS["high"]},
        annotation_text=f"overdue after {threshold_hours:g} h",
        annotation_position="top left",
    )
    fig = _layout(fig, "Time in review, per reason (× still open)", showlegend=False)
    fig.update_yaxes(title_text="hours in review", rangemode="tozero")
    fig.update_xaxes(title_text="reason")
    return fig


def broken_assignments(findings: pl.DataFrame) -> pl.DataFrame:
    """ASSIGNMENT_VIOLATION findings with the trader they went to (``assigned_to``) and the
    rules they broke (``rules``, as the check's detail names them: the domain scheduler's
    :data:`~workbench.domain.scheduler.RULES`)."""
    return findings.filter(pl.col("check") == "ASSIGNMENT_VIOLATION").with_columns(
        assigned_to=pl.col("detail").str.extract(r" assigned to (\S+) breaking rule "),
        rules=pl.col("detail").str.extract(r" breaking rule (.+?) \("),
    )


def counted(frame: pl.DataFrame, by: str) -> pl.DataFrame:
    """How many rows of ``frame`` per ``by``, most first (ties by name)."""
    return (
        frame.group_by(by)
        .agg(pl.len().cast(pl.Int64).alias("assignments"))
        .sort("assignments", by, descending=[True, False])
    )


def policy_shares(
    db: str | Path | duckdb.DuckDBPyConnection, where: Scope | None = None
) -> DeviationShares:
    """The share of assignments not given to the production policy's pick, per trader (as the
    trader assigned and as the pick passed over) and per day: POLICY_DEVIATION's definition
    (:func:`workbench.audit.policy_deviation_shares`), over the assignments ``where`` keeps
    (:meth:`.scope.Scope.assignments`; ``None``: all)."""
    if where is None:
        return policy_deviation_shares(db)
    return shares_of(where.assignments(judged_assignments(db)))


def deviations_by_day(by_day: pl.DataFrame) -> go.Figure:
    """The share of assignments per day that went to another trader than the policy's pick
    (``policy_shares(...).by_day``): one bar per day, its counts in the hover."""
    rows = by_day.sort("day")
    fig = go.Figure(
        go.Bar(
            x=[str(d) for d in rows["day"].to_list()],
            y=[0.0 if s is None else 100 * s for s in rows["share"].to_list()],
            customdata=list(
                zip(rows["deviations"].to_list(), rows["assignments"].to_list(), strict=True)
            ),
            marker={"color": SEVERITY_COLOURS["medium"]},
            hovertemplate="%{x}: %{customdata[0]} of %{customdata[1]} (%{y:.2f} %)<extra></extra>",
        )
    )
    fig = _layout(fig, "Assignments not given to the policy's pick, per day", showlegend=False)
    fig.update_yaxes(title_text="% of assignments", rangemode="tozero")
    fig.update_xaxes(title_text="day (UTC)")
    return fig
