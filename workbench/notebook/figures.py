"""Plotly figures for the notebooks; each builder takes a frame from :mod:`.breaks`,
:mod:`.ratings`, :mod:`.policies` or :mod:`workbench.sim` and returns a
:class:`plotly.graph_objects.Figure`.

Figures hold plain lists (no NumPy arrays), times as UTC strings without an offset, and no random
ids: the same frame gives the same figure JSON, which the notebooks' strict checks compare.
Money is drawn in major units of its currency (a float, for the axis only); what a person reads
of it, the axis title naming the currency, tick labels, bar labels and hover, is written exactly
from the integer minor units (:func:`workbench.domain.money.format_money`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from ..domain.money import EXPONENTS, format_major, format_money
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


@dataclass(frozen=True)
class Nothing:
    """What a chart shows when its frame is empty (a figure without traces would draw an empty
    frame, which reads as a chart that failed)."""

    text: str

    def __repr__(self) -> str:
        return self.text


def drawn(
    frame: pl.DataFrame, build: Callable[[pl.DataFrame], go.Figure], nothing: str
) -> go.Figure | Nothing:
    """``build(frame)``, or the sentence ``nothing`` when ``frame`` has no rows (a notebook
    pointed at one account or day may have nothing to draw)."""
    return Nothing(nothing) if frame.is_empty() else build(frame)


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
    :func:`.breaks.money_at_stake`): one panel per currency (amounts of different currencies are
    never on one axis), each on a log axis of that currency's major units, ticked at powers of
    ten written exactly; bar labels and hover give each amount exactly."""
    currencies = sorted(set(at_stake["currency"].to_list()), key=str)
    parts = [
        at_stake.filter(pl.col("currency") == c).sort("at_stake", "check", descending=[False, True])
        for c in currencies
    ]
    sizes = [max(p.height, 1) for p in parts]
    fig = make_subplots(
        rows=max(len(currencies), 1),
        cols=1,
        row_heights=[s / sum(sizes) for s in sizes] if sizes else None,
        vertical_spacing=0.12 / max(len(currencies), 1) + 0.04,
    )
    for row, (currency, part) in enumerate(zip(currencies, parts, strict=True), start=1):
        values = part["at_stake"].to_list()
        fig.add_trace(
            go.Bar(
                name=currency,
                orientation="h",
                y=part["check"].to_list(),
                x=[major(v, currency) for v in values],
                text=[format_major(v, currency) for v in values],
                textposition="outside",
                cliponaxis=False,
                customdata=[
                    [format_money(v, currency), n, format_money(big, currency)]
                    for v, n, big in zip(
                        values, part["findings"].to_list(), part["largest"].to_list(), strict=True
                    )
                ],
                marker={"color": PALETTE[(row - 1) % len(PALETTE)]},
                hovertemplate=(
                    "%{y}<br>%{customdata[0]} at stake"
                    "<br>%{customdata[1]} findings, largest %{customdata[2]}<extra></extra>"
                ),
                showlegend=False,
            ),
            row=row,
            col=1,
        )
        ticks = decade_ticks(min(values), max(values), currency)
        low, high = math.log10(ticks[0][0]), math.log10(ticks[-1][0])
        fig.update_xaxes(
            type="log",
            title_text=f"{currency} at stake (log scale)",
            tickvals=[t for t, _ in ticks],
            ticktext=[t for _, t in ticks],
            range=[low - 0.2, high + 0.9],  # room for the labels outside the bars
            row=row,
            col=1,
        )
    fig = _layout(
        fig,
        "Money at stake by check (sum of |amount_delta|), per currency",
        height=max(320, 80 + 34 * sum(sizes) + 90 * len(currencies)),
    )
    fig.update_layout(margin={"l": 200, "r": 40, "t": 60, "b": 50})
    return fig


def major(minor: int, currency: str | None) -> float:
    """``minor`` units as a float of major units: for drawing only (the axis); what a person
    reads (labels, ticks, hover) is written exactly by :func:`format_major`."""
    return float(Fraction(minor, 10 ** EXPONENTS.get(currency or "", 0)))


def tick_text(minor: int, currency: str | None) -> str:
    """An axis tick exactly, in major units, without the zeros a tick does not need
    (``1,000`` rather than ``1,000.000000``)."""
    text = format_major(minor, currency)
    return text.rstrip("0").rstrip(".") if "." in text else text


def decade_ticks(low: int, high: int, currency: str | None) -> list[tuple[float, str]]:
    """Ticks of a log axis at the powers of ten (in minor units) from below ``low`` to above
    ``high`` (positive amounts), each as (major units for drawing, exact text)."""
    first = max(len(str(max(low, 1))) - 1, 0)
    last = len(str(max(high, 1)))
    return [(major(10**k, currency), tick_text(10**k, currency)) for k in range(first, last + 1)]


def _money_axis(currencies: set[str]) -> tuple[str, str | None]:
    """An axis title naming the currency of its amounts, and its tick format (the currency's
    decimals at most, trailing zeros trimmed); several currencies: each line's own."""
    known = {c for c in currencies if c}
    if len(known) == 1:
        (cur,) = known
        if cur in EXPONENTS:
            return cur, f",.{EXPONENTS[cur]}~f"
        return f"minor units {cur}", ",d"
    return "major units of each line's currency", None


def _steps(
    frame: pl.DataFrame, key: str, x: str, y: str, title: str, x_title: str, y_title: str
) -> go.Figure:
    """Step lines of the money ``y`` (integer minor units of ``currency``) over ``x`` per
    ``key`` and currency, each from 0 at the first ``x`` of the whole frame to its last value
    at the last ``x`` (a line is flat where nothing happened). Drawn in major units; the axis
    names the currency and the hover gives each amount exactly."""
    fig = go.Figure()
    xs = [v for v in _times(frame[x]) if v is not None]
    first, last = (min(xs), max(xs)) if xs else (None, None)
    if "currency" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("currency"))
    currencies = set(frame["currency"].to_list())
    lines = sorted(set(frame.select(key, "currency").iter_rows()), key=lambda r: (r[0], r[1] or ""))
    for i, (value, currency) in enumerate(lines):
        part = frame.filter((pl.col(key) == value) & pl.col("currency").eq_missing(currency))
        name = str(value) if len(currencies) == 1 else f"{value} ({currency})"
        px, py = _times(part[x]), part[y].to_list()
        amounts = [0, *py, py[-1]]
        fig.add_trace(
            go.Scatter(
                name=name,
                x=[first, *px, last],
                y=[major(v, currency) for v in amounts],
                customdata=[format_money(v, currency, signed=True) for v in amounts],
                mode="lines+markers",
                line={"shape": "hv", "color": PALETTE[i % len(PALETTE)]},
                marker={"size": [0, *([7] * len(px)), 0]},
                hovertemplate=f"{name}<br>%{{x}}<br>%{{customdata}}<extra></extra>",
            )
        )
    fig = _layout(fig, title)
    fig.add_hline(y=0, line={"color": "#888", "width": 1})
    fig.update_xaxes(title_text=x_title)
    axis, ticks = _money_axis({c for c in currencies if c})
    fig.update_yaxes(title_text=f"{y_title} ({axis})", tickformat=ticks)
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
        "running drift",
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
        "running difference",
    )
    fig.update_xaxes(type="date", dtick=86400000.0, tickformat="%b %d")
    return fig


#: How a timeline chart marks events: the offending one, other evidence, the rest.
_MARK_STYLE: dict[str, tuple[str, str, int]] = {
    ">>": ("#d62728", "x", 13),
    "*": ("#ff7f0e", "diamond", 10),
    "": ("#555", "circle", 6),
}


def finding_timeline(timeline: pl.DataFrame, currency: str | None, title: str) -> go.Figure:
    """A finding's timeline (:attr:`workbench.audit.Explanation.timeline`) over time: when its
    subject has money, the balance, held and available amounts after each event as step lines
    in major units of ``currency`` (hover exact), else each event by kind; the offending event
    a red cross, other evidence orange."""
    x = _times(timeline["occurred_at"])
    fig = go.Figure()
    amounts = [
        n for n in ("balance", "held", "available") if timeline[f"{n}_after"].is_not_null().any()
    ]
    marks = timeline["mark"].to_list()
    if amounts:
        for i, name in enumerate(amounts):
            values = timeline[f"{name}_after"].to_list()
            points = [(t, v, m) for t, v, m in zip(x, values, marks, strict=True) if v is not None]
            fig.add_trace(
                go.Scatter(
                    name=name,
                    x=[t for t, _, _ in points],
                    y=[major(v, currency) for _, v, _ in points],
                    customdata=[format_money(v, currency) for _, v, _ in points],
                    mode="lines+markers",
                    line={"shape": "hv", "color": PALETTE[i]},
                    marker={
                        "color": [_MARK_STYLE[m][0] if m else PALETTE[i] for *_, m in points],
                        "symbol": [_MARK_STYLE[m][1] for *_, m in points],
                        "size": [_MARK_STYLE[m][2] for *_, m in points],
                    },
                    hovertemplate=f"{name} after %{{x}}: %{{customdata}}<extra></extra>",
                )
            )
        axis, ticks = _money_axis({currency} if currency else set())
        fig.update_yaxes(title_text=f"after each event ({axis})", tickformat=ticks)
    else:
        kinds = timeline["kind"].to_list()
        fig.add_trace(
            go.Scatter(
                name="events",
                x=x,
                y=kinds,
                mode="markers",
                marker={
                    "color": [_MARK_STYLE[m][0] for m in marks],
                    "symbol": [_MARK_STYLE[m][1] for m in marks],
                    "size": [_MARK_STYLE[m][2] for m in marks],
                },
                customdata=[
                    [str(p), f"{s or ''}{' → ' + a if a and a != s else ''}"]
                    for p, s, a in zip(
                        timeline["position"].to_list(),
                        timeline["status_before"].to_list(),
                        timeline["status_after"].to_list(),
                        strict=True,
                    )
                ],
                hovertemplate="%{y} at %{x}<br>position %{customdata[0]}<br>%{customdata[1]}"
                "<extra></extra>",
                showlegend=False,
            )
        )
        order = list(dict.fromkeys(kinds))
        fig.update_yaxes(title_text="event", categoryorder="array", categoryarray=order[::-1])
    fig = _layout(
        fig,
        f"{title}: × offending event, ◆ other evidence",
        height=380 if amounts else max(260, 120 + 28 * len(set(timeline["kind"].to_list()))),
    )
    fig.update_xaxes(title_text="time (UTC)")
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
    money: Mapping[str, str] | None = None,
) -> go.Figure:
    """One panel per metric: ``value`` with its interval [``low``, ``high``] per ``label``. A
    metric in ``money`` (metric → currency) is a mean of integer minor units: drawn in major
    units of its currency, the axis titled with it, the hover to the currency's decimals."""
    metrics = list(metrics)
    money = dict(money or {})
    fig = make_subplots(rows=len(metrics), cols=1, subplot_titles=metrics, vertical_spacing=0.08)
    for row, metric in enumerate(metrics, start=1):
        part = frame.filter(pl.col("metric") == metric)
        cur = money.get(metric)
        scale = 10 ** EXPONENTS.get(cur or "", 0) if cur else 1

        def scaled(values: list[Any], scale: int = scale) -> list[float | None]:
            return [None if v is None else v / scale for v in (_finite(x) for x in values)]

        y = scaled(part[value].to_list())
        low = scaled(part["low"].to_list())
        high = scaled(part["high"].to_list())
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
        number = f",.{EXPONENTS.get(cur or '', 0)}f" if cur in EXPONENTS else ".4g"
        unit = f" {cur}" if cur else ""
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
                    f"{metric}<br>%{{x}}: %{{y:{number}}}{unit}"
                    f"<br>interval [%{{customdata[0]:{number}}}, %{{customdata[1]:{number}}}]"
                    f"{unit}<extra></extra>"
                ),
                showlegend=False,
            ),
            row=row,
            col=1,
        )
        if cur:
            axis, ticks = _money_axis({cur})
            fig.update_yaxes(title_text=axis, tickformat=ticks, row=row, col=1)
        if zero:
            fig.add_hline(y=0, line={"color": "#888", "width": 1}, row=row, col=1)
    return _layout(fig, title, height=80 + 230 * len(metrics))


def policy_intervals(
    summary: pl.DataFrame, metrics: Sequence[str], money: Mapping[str, str] | None = None
) -> go.Figure:
    """Each policy's mean of each of ``metrics`` with its interval (``Comparison.summary``),
    one panel per metric; ``money``: the metrics that are money (e.g. ``{"revenue": "USDT"}``),
    drawn in major units of their currency."""
    level = summary["level"][0] if summary.height else 0.95
    return _interval_subplots(
        summary.filter(pl.col("metric").is_in(list(metrics))),
        metrics,
        "policy",
        "mean",
        f"Policies: mean and {level:.0%} interval over replications",
        zero=False,
        money=money,
    )


def policy_differences(
    differences: pl.DataFrame, metrics: Sequence[str], money: Mapping[str, str] | None = None
) -> go.Figure:
    """Each policy's paired difference from the baseline (``Comparison.differences``) with its
    interval, one panel per metric; a difference whose interval excludes zero is in red;
    ``money`` as in :func:`policy_intervals`."""
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
        money=money,
    )
