"""Plotly figures for the notebooks; each builder takes a frame from :mod:`.breaks`,
:mod:`.ratings`, :mod:`.policies` or :mod:`workbench.sim` and returns a
:class:`plotly.graph_objects.Figure`.

Figures hold plain lists (no NumPy arrays), times as UTC strings without an offset, money as the
integers it was summed in (an axis plots them as numbers; hover text shows them exactly), and
no random ids: the same frame gives the same figure JSON, which the notebooks' strict checks
compare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from .breaks import SEVERITIES

TEMPLATE = "plotly_white"

#: One colour per severity, worst in red.
SEVERITY_COLOURS: dict[str, str] = {"high": "#d62728", "medium": "#ff7f0e", "low": "#1f77b4"}

#: The palette traces cycle through (plotly's default qualitative colours).
PALETTE: tuple[str, ...] = (
    "#636efa",
    "#ef553b",
    "#00cc96",
    "#ab63fa",
    "#ffa15a",
    "#19d3f3",
    "#ff6692",
    "#b6e880",
    "#ff97ff",
    "#fecb52",
)


def _layout(fig: go.Figure, title: str, **more: Any) -> go.Figure:
    fig.update_layout(
        title={"text": title},
        template=TEMPLATE,
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
        **more,
    )
    return fig


def _times(col: pl.Series) -> list[str | None]:
    """Timestamps as UTC ``YYYY-MM-DD HH:MM:SS`` strings (what plotly.js reads as a date)."""
    if isinstance(col.dtype, pl.Datetime) and col.dtype.time_zone is not None:
        col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    if isinstance(col.dtype, pl.Datetime):
        return col.dt.strftime("%Y-%m-%d %H:%M:%S").to_list()
    if isinstance(col.dtype, pl.Date):
        return col.dt.strftime("%Y-%m-%d").to_list()
    return [None if v is None else str(v) for v in col.to_list()]


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


# ------------------------------------------------------------------------------ audit
def breaks_over_time(by_day: pl.DataFrame, by: str = "severity") -> go.Figure:
    """Stacked bars of findings per day of their offending event (a frame from
    :func:`.breaks.breaks_by_day` with the same ``by``); findings of unknown time are counted
    in the title, not drawn."""
    known = by_day.filter(pl.col("day").is_not_null())
    unknown = int(by_day.filter(pl.col("day").is_null())["findings"].sum())
    groups = (
        [s for s in SEVERITIES if s in set(known[by].to_list())]
        if by == "severity"
        else sorted(set(known[by].to_list()))
    )
    fig = go.Figure()
    for i, g in enumerate(groups):
        part = known.filter(pl.col(by) == g).sort("day")
        colour = SEVERITY_COLOURS.get(g) if by == "severity" else PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Bar(
                name=g,
                x=_times(part["day"]),
                y=part["findings"].to_list(),
                marker={"color": colour},
                hovertemplate=f"{g}<br>%{{x}}: %{{y}} findings<extra></extra>",
            )
        )
    title = "Breaks over time (day of the offending event)"
    if unknown:
        title += f"; {unknown} of unknown time not shown"
    fig = _layout(fig, title, barmode="stack")
    fig.update_xaxes(title_text="day (UTC)", type="date", dtick=86400000.0, tickformat="%b %d")
    fig.update_yaxes(title_text="findings")
    return fig


def money_at_stake(at_stake: pl.DataFrame) -> go.Figure:
    """Horizontal bars of the money at stake per check (a frame from
    :func:`.breaks.money_at_stake`), one colour per currency, on a log axis of minor units;
    labels and hover give the exact integers."""
    fig = go.Figure()
    checks = (
        at_stake.group_by("check")
        .agg(pl.col("at_stake").max())
        .sort("at_stake", "check", descending=[False, True])["check"]
        .to_list()
    )
    for i, currency in enumerate(sorted(set(at_stake["currency"].to_list()))):
        part = at_stake.filter(pl.col("currency") == currency)
        fig.add_trace(
            go.Bar(
                name=currency,
                orientation="h",
                y=part["check"].to_list(),
                x=part["at_stake"].to_list(),
                text=[f"{v:,}" for v in part["at_stake"].to_list()],
                textposition="outside",
                customdata=list(
                    zip(
                        part["findings"].to_list(),
                        [f"{v:,}" for v in part["largest"].to_list()],
                        strict=True,
                    )
                ),
                marker={"color": PALETTE[i % len(PALETTE)]},
                hovertemplate=(
                    f"%{{y}}<br>%{{text}} {currency} minor units at stake"
                    "<br>%{customdata[0]} findings, largest %{customdata[1]}<extra></extra>"
                ),
            )
        )
    fig = _layout(
        fig,
        "Money at stake by check (sum of |amount_delta|, minor units)",
        barmode="group",
        height=max(320, 60 + 45 * len(checks)),
    )
    fig.update_xaxes(title_text="minor units (log scale)", type="log")
    fig.update_yaxes(categoryorder="array", categoryarray=checks)
    return fig


def _steps(frame: pl.DataFrame, key: str, x: str, y: str, title: str, x_title: str) -> go.Figure:
    """Step lines of ``y`` over ``x`` per ``key``, each from 0 at the first ``x`` of the whole
    frame to its last value at the last ``x`` (a line is flat where nothing happened)."""
    fig = go.Figure()
    xs = [v for v in _times(frame[x]) if v is not None]
    first, last = (min(xs), max(xs)) if xs else (None, None)
    for i, value in enumerate(sorted(set(frame[key].to_list()))):
        part = frame.filter(pl.col(key) == value)
        currency = part["currency"][0] if "currency" in part.columns else ""
        px, py = _times(part[x]), part[y].to_list()
        fig.add_trace(
            go.Scatter(
                name=str(value),
                x=[first, *px, last],
                y=[0, *py, py[-1]],
                mode="lines+markers",
                line={"shape": "hv", "color": PALETTE[i % len(PALETTE)]},
                marker={"size": [0, *([7] * len(px)), 0]},
                hovertemplate=f"{value}<br>%{{x}}<br>%{{y:,}} {currency} minor units<extra></extra>",
            )
        )
    fig = _layout(fig, title)
    fig.add_hline(y=0, line={"color": "#888", "width": 1})
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text="minor units")
    return fig


def trader_drift(drift: pl.DataFrame) -> go.Figure:
    """Step lines of each trader's running drift, trader stream against ledger (a frame from
    :func:`.breaks.trader_drift`), over the time of each drifting ``ref``'s last event."""
    return _steps(
        drift,
        "trader_id",
        "occurred_at",
        "drift",
        "Per-trader drift: trader stream minus ledger, running total",
        "time (UTC)",
    )


def account_drift(drift: pl.DataFrame) -> go.Figure:
    """Step lines of each account's running reconciliation difference, orders plus payouts
    (a frame from :func:`.breaks.account_drift`), by day."""
    fig = _steps(
        drift,
        "account",
        "day",
        "drift",
        "Per-account drift: settled or paid out minus ledger, running total",
        "day (UTC)",
    )
    fig.update_xaxes(type="date", dtick=86400000.0, tickformat="%b %d")
    return fig


# ------------------------------------------------------------------------------ ratings
_COMPONENT_NAMES: dict[str, str] = {
    "completion_points": "completion 60·(c+1)/(a+2)",
    "on_time_points": "on time 30·(o+1)/(c+2)",
    "dispute_points": "disputes 10·(1−d/(c+1))",
}


def rating_components(ratings: pl.DataFrame, trader_id: str) -> go.Figure:
    """One trader's score over time (a frame from :func:`.ratings.with_components`): its three
    components stacked, the formula's score on top, and the published score as markers (a
    red cross where it does not match the recomputation)."""
    part = ratings.filter(pl.col("trader_id") == trader_id).sort("seq")
    if part.is_empty():
        raise ValueError(f"no ratings of trader {trader_id!r}")
    x = _times(part["as_of"])
    fig = go.Figure()
    for i, (col, name) in enumerate(_COMPONENT_NAMES.items()):
        fig.add_trace(
            go.Scatter(
                name=name,
                x=x,
                y=part[col].to_list(),
                mode="lines",
                stackgroup="score",
                line={"color": PALETTE[i]},
                hovertemplate=f"{name}: %{{y:.2f}}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            name="published score",
            x=x,
            y=part["score_published"].to_list(),
            mode="markers",
            marker={
                "color": ["#222" if m else "#d62728" for m in part["matches"].to_list()],
                "symbol": ["circle" if m else "x" for m in part["matches"].to_list()],
                "size": [6 if m else 11 for m in part["matches"].to_list()],
            },
            hovertemplate="published %{y:.2f}<extra></extra>",
        )
    )
    fig = _layout(
        fig, f"Rating of {trader_id}: the score's components over time", hovermode="x unified"
    )
    fig.update_xaxes(title_text="as of (UTC)")
    fig.update_yaxes(title_text="points (score out of 100)", range=[0, 100])
    return fig


def score_distribution(ratings: pl.DataFrame, column: str = "score_formula") -> go.Figure:
    """The spread of scores across traders at each publication (a frame from
    :func:`.ratings.with_components`): one box per ``as_of``."""
    fig = go.Figure()
    rows = ratings.sort("as_of", "trader_id")
    fig.add_trace(
        go.Box(
            name="traders",
            x=_times(rows["as_of"]),
            y=rows[column].to_list(),
            text=rows["trader_id"].to_list(),
            boxpoints="all",
            jitter=0.4,
            pointpos=0,
            marker={"size": 4, "color": PALETTE[0]},
            line={"color": PALETTE[0]},
            hovertemplate="%{text}: %{y:.2f}<extra></extra>",
        )
    )
    fig = _layout(fig, "Scores across traders at each publication", showlegend=False)
    fig.update_xaxes(title_text="as of (UTC)")
    fig.update_yaxes(title_text="score")
    return fig


# ------------------------------------------------------------------------------ policies
def lorenz(curves: pl.DataFrame, title: str = "Lorenz curves") -> go.Figure:
    """Lorenz curves per policy (a frame from :func:`.policies.lorenz_curves`), the line of
    equality dashed, each policy's Gini in the legend."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            name="equality",
            x=[0.0, 1.0],
            y=[0.0, 1.0],
            mode="lines",
            line={"color": "#888", "dash": "dash", "width": 1},
            hoverinfo="skip",
        )
    )
    for i, ((policy,), part) in enumerate(curves.group_by("policy", maintain_order=True)):
        g = float(part["gini"][0])
        fig.add_trace(
            go.Scatter(
                name=f"{policy} (Gini {g:.3f})",
                x=part["share_of_population"].to_list(),
                y=part["share_of_total"].to_list(),
                mode="lines",
                line={"color": PALETTE[i % len(PALETTE)], "shape": "linear"},
                hovertemplate=(
                    f"{policy}<br>poorest %{{x:.0%}} of traders: %{{y:.1%}}<extra></extra>"
                ),
            )
        )
    fig = _layout(fig, title, height=500, width=560)
    fig.update_layout(
        legend={"orientation": "v", "x": 0.02, "y": 0.98, "xanchor": "left", "yanchor": "top"}
    )
    fig.update_xaxes(title_text="share of traders (fewest first)", range=[0, 1], tickformat=".0%")
    fig.update_yaxes(title_text="share of the total", range=[0, 1], tickformat=".0%")
    return fig


def _interval_subplots(
    frame: pl.DataFrame,
    metrics: Sequence[str],
    label: str,
    value: str,
    title: str,
    zero: bool,
) -> go.Figure:
    metrics = list(metrics)
    fig = make_subplots(rows=len(metrics), cols=1, subplot_titles=metrics, vertical_spacing=0.08)
    for row, metric in enumerate(metrics, start=1):
        part = frame.filter(pl.col("metric") == metric)
        y = [_finite(v) for v in part[value].to_list()]
        low = [_finite(v) for v in part["low"].to_list()]
        high = [_finite(v) for v in part["high"].to_list()]
        plus = [
            h - v if h is not None and v is not None else None for v, h in zip(y, high, strict=True)
        ]
        minus = [
            v - lo if lo is not None and v is not None else None
            for v, lo in zip(y, low, strict=True)
        ]
        significant = (
            part["significant"].to_list()
            if "significant" in part.columns
            else [False] * part.height
        )
        fig.add_trace(
            go.Scatter(
                x=part[label].to_list(),
                y=y,
                mode="markers",
                marker={
                    "size": 10,
                    "color": [PALETTE[1] if s else PALETTE[0] for s in significant],
                },
                error_y={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus},
                customdata=list(zip(low, high, strict=True)),
                hovertemplate=(
                    f"{metric}<br>%{{x}}: %{{y:.4g}}"
                    "<br>interval [%{customdata[0]:.4g}, %{customdata[1]:.4g}]<extra></extra>"
                ),
                showlegend=False,
            ),
            row=row,
            col=1,
        )
        if zero:
            fig.add_hline(y=0, line={"color": "#888", "width": 1}, row=row, col=1)
    return _layout(fig, title, height=80 + 230 * len(metrics))


def policy_intervals(summary: pl.DataFrame, metrics: Sequence[str]) -> go.Figure:
    """Each policy's mean of each of ``metrics`` with its interval (``Comparison.summary``),
    one panel per metric."""
    level = summary["level"][0] if summary.height else 0.95
    return _interval_subplots(
        summary.filter(pl.col("metric").is_in(list(metrics))),
        metrics,
        "policy",
        "mean",
        f"Policies: mean and {level:.0%} interval over replications",
        zero=False,
    )


def policy_differences(differences: pl.DataFrame, metrics: Sequence[str]) -> go.Figure:
    """Each policy's paired difference from the baseline (``Comparison.differences``) with its
    interval, one panel per metric; a difference whose interval excludes zero is in red."""
    frame = differences.filter(pl.col("metric").is_in(list(metrics))).with_columns(
        (pl.col("policy") + " − " + pl.col("baseline")).alias("pair")
    )
    level = frame["level"][0] if frame.height else 0.95
    return _interval_subplots(
        frame,
        metrics,
        "pair",
        "difference",
        f"Paired differences from the baseline, {level:.0%} intervals (red: excludes 0)",
        zero=True,
    )
