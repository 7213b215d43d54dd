"""``workbench explain``: why a finding is a finding, as a timeline an analyst can read.

The subject's events (its aggregate's stream, or for a ``client:`` account the ledger plans that
moved it) are folded again through the domain's appliers, so each row shows the state before and
after the event (status; balance, held and available where the subject has money) exactly as the
catalog defines them. The finding's evidence events from other streams are shown in place, and
the offending event is marked. Long timelines are cut to a window around the offending event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ..domain.catalog import try_decode
from ..domain.events import ENVELOPE_FIELDS, STREAMS, Event
from ..domain.ledger import apply as apply_plan
from ..domain.ledger import balance_effects
from ..domain.money import EXPONENTS, format_major, format_money
from ..domain.world import APPLIERS
from ..replay import store

#: Rows kept on each side of the offending event in a long timeline.
WINDOW = 15

TIMELINE_COLUMNS = (
    "position",
    "occurred_at",
    "event_id",
    "stream",
    "aggregate_id",
    "kind",
    "mark",
    "status_before",
    "status_after",
    "balance_before",
    "balance_after",
    "held_before",
    "held_after",
    "available_before",
    "available_after",
)


@dataclass
class Explanation:
    """A finding, its timeline (a Polars frame of :data:`TIMELINE_COLUMNS`) and what analysts
    judged of it (its triage history, oldest first: :func:`workbench.audit.triage_history`)."""

    finding: dict[str, Any]
    timeline: pl.DataFrame
    triage: pl.DataFrame = field(default_factory=pl.DataFrame)

    def __str__(self) -> str:
        f = self.finding
        lines = [
            f"{f['finding_id']}  {f['check']} ({f['severity']})  {f['subject']}",
            f"  {f['detail']}",
        ]
        if f.get("amount_delta") is not None:
            lines.append(
                "  amount at stake: "
                + format_money(f["amount_delta"], f.get("currency"), signed=True)
            )
        lines.append(f"  evidence: {', '.join(f['evidence'])}")
        if f.get("process"):
            lines.append(f"  process: {f['process']} (workbench explain --process {f['process']})")
        lines.extend(self._triage_lines())
        lines.append("")
        cur = f.get("currency")
        unit = f"money in {cur}" if cur in EXPONENTS else "money in minor units"
        lines.append(f"  timeline (>> offending event, *  other evidence; {unit}):")
        for r in self.timeline.iter_rows(named=True):
            state = _state_text(r, f.get("currency"))
            lines.append(
                f"  {r['mark']:>2} {r['position']:>9} {str(r['occurred_at'])[:19]}  "
                f"{r['kind']:<34} {r['stream']}:{r['aggregate_id']}  {state}".rstrip()
            )
        return "\n".join(lines)

    def _triage_lines(self) -> list[str]:
        """Each judgement, and a warning when the money at stake is no longer what the latest
        one judged (the rule of :func:`workbench.audit.triage_log.fingerprint_differs`)."""
        if self.triage.is_empty():
            return []
        from .triage_log import CHANGED_BY

        out = []
        for j in self.triage.iter_rows(named=True):
            note = " ".join(str(j["note"]).split())
            out.append(
                f"  triage: {j['status']} by {j['triaged_by']}, "
                f"{j['triaged_at']:%Y-%m-%d %H:%M} UTC: {note}"
            )
        last = self.triage.row(-1, named=True)
        if any(last[c] != self.finding.get(c) for c in CHANGED_BY):
            then = _money_or_none(last["amount_delta"], last["currency"])
            out.append(f"  ! changed since the latest judgement, which saw {then} at stake")
        return out


def _money_or_none(minor: int | None, currency: str | None) -> str:
    return "no amount" if minor is None else format_money(minor, currency, signed=True)


def _state_text(r: dict[str, Any], currency: str | None) -> str:
    """The subject's state around an event; money in the finding's currency, in major units
    (the timeline's columns stay exact minor units)."""
    parts = []
    if r["status_before"] is not None or r["status_after"] is not None:
        parts.append(f"status {r['status_before']} → {r['status_after']}")
    for name in ("balance", "held", "available"):
        b, a = r[f"{name}_before"], r[f"{name}_after"]
        if b is not None or a is not None:
            bt, at = (_amount(v, currency) for v in (b, a))
            parts.append(f"{name} {bt} → {at}" if b != a else f"{name} {at}")
    return "; ".join(parts)


def _amount(minor: int | None, currency: str | None) -> str:
    return "none" if minor is None else format_major(minor, currency)


def explain(db: str | Path, finding: str, *, findings: pl.DataFrame | None = None) -> Explanation:
    """The finding ``finding`` (an id from ``workbench audit``) with its subject's timeline.

    ``findings``: an audit's findings already at hand (e.g. ``audit(db, record=False).findings``)
    to take the finding from; without them, or when the id is not among them, it is looked up in
    the recorded runs or else found by running the checks again (which takes a whole audit)."""
    path = Path(db)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such database")
    con = store.connect(path, read_only=True)
    try:
        hit = None if findings is None else findings.filter(pl.col("finding_id") == finding)
        if hit is not None and hit.height:
            row = dict(hit.row(0, named=True))
        else:
            row = _finding(con, path, finding)
        if row.get("process") is None:  # a run an older version recorded has none stored
            row["process"] = _process_of(con, row.get("event_id"))
        events = _timeline_events(con, row)
    finally:
        con.close()
    return Explanation(row, _timeline(row, events), _judgements(path, finding))


def _judgements(db: Path, finding: str) -> pl.DataFrame:
    """The finding's triage history; none where nobody triaged it (or no run was recorded)."""
    from ..replay import snapshots
    from . import triage_log

    if not snapshots.analyst_db(db).exists():
        return pl.DataFrame()
    every = triage_log.history(db)
    return every.filter(pl.col("finding_id") == finding)


def _finding(con: duckdb.DuckDBPyConnection, path: Path, fid: str) -> dict[str, Any]:
    stored = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'audit_findings'"
    ).fetchall()[0][0]
    if stored:
        rows = (
            con.sql(
                "SELECT * FROM audit_findings WHERE finding_id = ? ORDER BY audit_run_id DESC LIMIT 1",
                params=[fid],
            )
            .to_arrow_table()
            .to_pylist()
        )
        if rows:
            return dict(rows[0])
    from .run import run_checks

    found, _ = run_checks(con)
    hit = found.filter(pl.col("finding_id") == fid)
    if hit.height == 0:
        raise LookupError(
            f"no finding {fid} in {path} (run `workbench audit --db {path}` to list them)"
        )
    return dict(hit.row(0, named=True))


def _process_of(con: duckdb.DuckDBPyConnection, event_id: str | None) -> str | None:
    """The correlation id of an event (None for no event, or an event without one)."""
    rows = con.execute(
        "SELECT correlation_id FROM events WHERE event_id = ? LIMIT 1", [event_id]
    ).fetchall()
    return rows[0][0] if rows else None


def _rows(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[dict[str, Any]]:
    cols = ", ".join(ENVELOPE_FIELDS)
    return list(
        con.sql(
            f"SELECT {cols} FROM events WHERE {where} ORDER BY position, event_id", params=params
        )
        .to_arrow_table()
        .to_pylist()
    )


def _timeline_events(con: duckdb.DuckDBPyConnection, f: dict[str, Any]) -> dict[str, Any]:
    """The subject's own events (to fold) and the evidence events (to show)."""
    stream, _, agg = str(f["subject"]).partition(":")
    evidence = [e for e in f["evidence"] if e]
    if stream == "client" and f["check"] in ("NEGATIVE_AVAILABLE",):
        own = _rows(
            con,
            "kind LIKE 'ledger_plan.%' AND aggregate_id IN (SELECT DISTINCT plan_id FROM ledger_postings "
            "WHERE from_account = ? OR to_account = ?)",
            [f["subject"], f["subject"]],
        )
        mode = "account"
    elif stream in STREAMS:
        own = _rows(con, "stream = ? AND aggregate_id = ?", [stream, agg])
        mode = "aggregate"
    else:
        own, mode = [], "none"
    others = _rows(con, "event_id IN (SELECT unnest(?::VARCHAR[]))", [evidence]) if evidence else []
    return {"mode": mode, "own": own, "others": others, "stream": stream, "subject": f["subject"]}


def _summary(state: Any) -> tuple[Any, Any, Any, Any]:
    if state is None:
        return None, None, None, None
    status = getattr(state, "status", None)
    if hasattr(state, "balance"):
        return status, state.balance, state.held, state.available
    return status, None, None, None


def _timeline(f: dict[str, Any], ev: dict[str, Any]) -> pl.DataFrame:
    rows: dict[str, dict[str, Any]] = {}
    if ev["mode"] == "aggregate":
        applier = APPLIERS[ev["stream"]]
        state: Any = None
        for raw in ev["own"]:
            decoded = try_decode(raw)
            before = _summary(state)
            if isinstance(decoded, Event):
                state = applier(state, decoded)
            rows[raw["event_id"]] = _row(raw, before, _summary(state))
    elif ev["mode"] == "account":
        plans: dict[str, Any] = {}
        own = held = 0
        account = ev["subject"]
        for raw in ev["own"]:
            decoded = try_decode(raw)
            before = (None, own, held, own - held)
            if isinstance(decoded, Event):
                plan = plans.get(decoded.aggregate_id)
                for e in balance_effects(plan, decoded):
                    if e.account == account:
                        own += e.own
                        held += e.held
                plans[decoded.aggregate_id] = apply_plan(plan, decoded)
            rows[raw["event_id"]] = _row(raw, before, (None, own, held, own - held))
    for raw in ev["others"]:
        rows.setdefault(raw["event_id"], _row(raw, (None,) * 4, (None,) * 4))
    evidence = set(f["evidence"])
    ordered = sorted(rows.values(), key=lambda r: (r["position"], r["event_id"]))
    for r in ordered:
        r["mark"] = (
            ">>" if r["event_id"] == f["event_id"] else ("*" if r["event_id"] in evidence else "")
        )
    ordered = _window(ordered, f["event_id"], evidence)
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "position": pl.Int64,
        "occurred_at": pl.Datetime("us", "UTC"),
        "event_id": pl.String,
        "stream": pl.String,
        "aggregate_id": pl.String,
        "kind": pl.String,
        "mark": pl.String,
        "status_before": pl.String,
        "status_after": pl.String,
        **{
            f"{n}_{w}": pl.Int64
            for n in ("balance", "held", "available")
            for w in ("before", "after")
        },
    }
    return pl.DataFrame(
        [{c: r.get(c) for c in TIMELINE_COLUMNS} for r in ordered], schema=schema, orient="row"
    )


def _row(raw: dict[str, Any], before: tuple[Any, ...], after: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "position": raw["position"],
        "occurred_at": raw["occurred_at"],
        "event_id": raw["event_id"],
        "stream": raw["stream"],
        "aggregate_id": raw["aggregate_id"],
        "kind": raw["kind"],
        "status_before": before[0],
        "status_after": after[0],
        "balance_before": before[1],
        "balance_after": after[1],
        "held_before": before[2],
        "held_after": after[2],
        "available_before": before[3],
        "available_after": after[3],
    }


def _window(rows: list[dict[str, Any]], offending: str, evidence: set[str]) -> list[dict[str, Any]]:
    """Rows within :data:`WINDOW` of the offending event, plus every evidence event."""
    idx = next((i for i, r in enumerate(rows) if r["event_id"] == offending), None)
    if idx is None or len(rows) <= 2 * WINDOW + 1:
        return rows
    return [r for i, r in enumerate(rows) if abs(i - idx) <= WINDOW or r["event_id"] in evidence]
