"""One business process (a ``correlation_id``) as a table and a chart, for a notebook: the frame
:func:`workbench.audit.process` builds (its events across all streams, each with its cause and
depth in the causation tree), shown for reading.

The table indents each event by its depth in the causation tree and writes its money in major
units; the chart puts each event on its stream's row in time and draws an arrow from each cause
to what it caused, a cause missing from the log (``PROCESS_BROKEN``) marked red.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl

from ..audit.process_view import ProcessView
from ..audit.process_view import process as view_of
from . import figures
from .tables import Table, table


@dataclass
class ProcessTimeline:
    """A process (:attr:`view`: its frame in exact minor units and its tree as text)."""

    view: ProcessView

    @property
    def frame(self) -> pl.DataFrame:
        return self.view.events

    def rows(self) -> pl.DataFrame:
        """The events as text cells: the kind indented by its depth in the causation tree (a
        cause outside the process noted), what the event did in major units."""
        f = self.frame
        step = pl.lit("  ").repeat_by(pl.col("depth")).list.join("")
        note = (
            pl.when(pl.col("cause_missing"))
            .then(pl.lit(" (cause missing)"))
            .when(pl.col("causation_id").is_not_null() & pl.col("parent").is_null())
            .then(pl.lit(" (cause in another process)"))
            .otherwise(pl.lit(""))
        )
        return f.select(
            "position",
            "occurred_at",
            (step + pl.col("kind") + note).alias("event"),
            (pl.col("stream") + ":" + pl.col("aggregate_id")).alias("aggregate"),
            "summary",
            "event_id",
        )

    def table(self, **options: Any) -> Table:
        """The process as a :class:`.tables.Table` (every row)."""
        options.setdefault("title", f"Process {self.view.correlation_id}")
        options.setdefault("subtitle", "indented under its cause; money in major units")
        options.setdefault("max_rows", None)
        options.setdefault(
            "highlight", [i for i, m in enumerate(self.frame["cause_missing"].to_list()) if m]
        )
        labels = {"event": "Event", "aggregate": "Aggregate", "summary": "What", "event_id": "Id"}
        return table(self.rows(), labels=labels, ids=["event_id"], nowrap=["event"], **options)

    def figure(self) -> go.Figure:
        """Each event on its stream's row in time; an arrow from each cause to its effect."""
        return process_figure(self.frame, self.view.correlation_id)

    def show(self) -> None:
        """Display the table, the chart and the causation tree (in a notebook)."""
        from IPython.display import display

        display(self.table())  # type: ignore[no-untyped-call]
        display(self.figure())  # type: ignore[no-untyped-call]
        print(self.view.tree)


def process_figure(frame: pl.DataFrame, correlation_id: str) -> go.Figure:
    """A process's events (:attr:`ProcessView.events`) by stream over time, causes linked."""
    x = figures._times(frame["occurred_at"])
    streams = frame["stream"].to_list()
    at = {e: (t, s) for e, t, s in zip(frame["event_id"].to_list(), x, streams, strict=True)}
    fig = go.Figure()
    for child, parent in zip(frame["event_id"].to_list(), frame["parent"].to_list(), strict=True):
        if parent is not None and parent in at:
            (x0, y0), (x1, y1) = at[parent], at[child]
            fig.add_annotation(
                x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y",
                showarrow=True, arrowhead=2, arrowsize=1, arrowwidth=1, arrowcolor="#999",
                text="",
            )  # fmt: skip
    missing = frame["cause_missing"].to_list()
    fig.add_trace(
        go.Scatter(
            name="events",
            x=x,
            y=streams,
            mode="markers",
            marker={
                "color": ["#d62728" if m else figures.PALETTE[0] for m in missing],
                "symbol": ["x" if m else "circle" for m in missing],
                "size": [12 if m else 9 for m in missing],
            },
            customdata=list(zip(frame["kind"].to_list(), frame["summary"].to_list(), strict=True)),
            hovertemplate="%{customdata[0]} at %{x}<br>%{customdata[1]}<extra></extra>",
            showlegend=False,
        )
    )
    order = list(dict.fromkeys(streams))
    fig.update_yaxes(title_text="stream", categoryorder="array", categoryarray=order[::-1])
    fig = figures._layout(
        fig,
        f"Process {correlation_id}: → caused, × cause missing",
        height=max(260, 120 + 40 * len(order)),
    )
    fig.update_xaxes(title_text="time (UTC)")
    return fig


def process(db: str | Path, correlation_id: str) -> ProcessTimeline:
    """The process ``correlation_id`` (a finding's ``process``, e.g. ``order:po-1a2b3c4d``)."""
    return ProcessTimeline(view_of(db, correlation_id))
