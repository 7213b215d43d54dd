"""Any finding's timeline as a table and a chart: the frame :func:`workbench.audit.explain` folds
(its subject's events with the state before and after each), shown for reading.

The table writes each change as ``before → after`` in major units of the finding's currency
(the numbers never wrap); the chart draws the subject's balance, held and available money after
each event (or, for a subject without money, its events in time by kind), the offending event
marked. Nothing is parsed from ``explain``'s text: both read :attr:`Explanation.timeline`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl

from ..audit.explain import Explanation, explain
from ..domain.money import EXPONENTS, format_major, format_money
from . import figures
from .tables import MISSING, Table, table

#: How the timeline marks an event (``explain``'s marks, in words).
MARKS: dict[str, str] = {">>": "offending", "*": "evidence", "": ""}

#: The money a subject's state carries, in the order the table and chart show it.
AMOUNTS: tuple[str, ...] = ("balance", "held", "available")


@dataclass
class Timeline:
    """A finding (:attr:`finding`) and its timeline (:attr:`frame`, exact minor units)."""

    explanation: Explanation

    @property
    def finding(self) -> dict[str, Any]:
        return self.explanation.finding

    @property
    def frame(self) -> pl.DataFrame:
        return self.explanation.timeline

    @property
    def currency(self) -> str | None:
        cur = self.finding.get("currency")
        return str(cur) if cur else None

    def summary(self) -> str:
        """The finding in a few lines: id, check, severity, subject, detail, money at stake."""
        f = self.finding
        lines = [f"{f['finding_id']}  {f['check']} ({f['severity']})  {f['subject']}"]
        lines.append(f"  {f['detail']}")
        if f.get("amount_delta") is not None:
            lines.append(
                "  amount at stake: " + format_money(f["amount_delta"], self.currency, signed=True)
            )
        return "\n".join(lines)

    def rows(self) -> pl.DataFrame:
        """The timeline as text cells: each state change ``before → after``, money in major
        units of the finding's currency."""
        cur = self.currency
        out: dict[str, list[str]] = {"mark": [], "status": []}
        for name in AMOUNTS:
            out[name] = []
        for r in self.frame.iter_rows(named=True):
            out["mark"].append(MARKS.get(r["mark"], r["mark"]))
            out["status"].append(_change(r["status_before"], r["status_after"], str))
            for name in AMOUNTS:
                out[name].append(
                    _change(r[f"{name}_before"], r[f"{name}_after"], lambda v: format_major(v, cur))
                )
        subject = self.frame.select(
            (pl.col("stream") + ":" + pl.col("aggregate_id")).alias("subject")
        )
        text = pl.DataFrame(out, schema=dict.fromkeys(out, pl.String))
        frame = pl.concat(
            [
                self.frame.select("position", "occurred_at", "kind", "event_id"),
                subject,
                text,
            ],
            how="horizontal",
        )
        keep = [c for c in ("status", *AMOUNTS) if any(v != MISSING for v in frame[c])]
        return frame.select("mark", "position", "occurred_at", "kind", "subject", *keep, "event_id")

    def table(self, **options: Any) -> Table:
        """The timeline as a :class:`.tables.Table` (every row: a timeline is short)."""
        cur = self.currency
        unit = f" ({cur})" if cur in EXPONENTS else (" (minor units)" if not cur else "")
        labels = {name: f"{name.capitalize()}{unit}" for name in AMOUNTS}
        labels["event_id"] = "Event"
        labels["subject"] = "Aggregate"
        options.setdefault("title", f"Timeline of {self.finding['finding_id']}")
        options.setdefault("subtitle", f"{self.finding['check']} · {self.finding['subject']}")
        options.setdefault("max_rows", None)
        options.setdefault(
            "highlight", [i for i, m in enumerate(self.frame["mark"].to_list()) if m == ">>"]
        )
        rows = self.rows()
        amounts = [c for c in AMOUNTS if c in rows.columns]
        return table(
            rows,
            labels=labels,
            ids=["event_id"],
            nowrap=[c for c in ("status", *amounts) if c in rows.columns],
            right=amounts,
            **options,
        )

    def figure(self) -> go.Figure:
        """The timeline as a chart (:func:`.figures.finding_timeline`)."""
        return figures.finding_timeline(
            self.frame, self.currency, f"{self.finding['finding_id']} {self.finding['check']}"
        )

    def show(self) -> None:
        """Display the summary, the table and the chart (in a notebook)."""
        from IPython.display import display

        print(self.summary())
        display(self.table())  # type: ignore[no-untyped-call]
        display(self.figure())  # type: ignore[no-untyped-call]


def _change(before: Any, after: Any, fmt: Any) -> str:
    if before is None and after is None:
        return MISSING
    if before == after:
        return str(fmt(after))
    if before is None:
        return f"{MISSING} → {fmt(after)}"
    if after is None:
        return f"{fmt(before)} → {MISSING}"
    return f"{fmt(before)} → {fmt(after)}"


def timeline(db: str | Path, finding: str, *, findings: pl.DataFrame | None = None) -> Timeline:
    """The timeline of ``finding`` (an id); ``findings``: the audit's findings at hand, so the
    finding is not looked for by running the checks again."""
    return Timeline(explain(db, finding, findings=findings))
