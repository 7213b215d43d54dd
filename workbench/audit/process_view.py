"""``workbench explain --process``: one business process (a ``correlation_id``) across all its
streams, as a timeline and a causation tree.

An order's assignments, holds, settlement and payout, or a payout's hold, transfer and revert,
are written to several streams (``payment_order``, ``receipt``, ``ledger_plan``, ``trader``,
``payout``) under one correlation; each event names the event that caused it. This view puts them
back together: the events in ``(position, event_id)`` order with their cause, their depth in the
causation tree (:func:`workbench.domain.process.tree`, the one definition) and what each did, in
major units as people read money (the frame keeps exact minor units).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ..domain import process as rules
from ..domain.money import format_money
from ..replay import store

#: Width of the printed timeline and tree.
WIDTH = 120

PROCESS_COLUMNS = (
    "position",
    "occurred_at",
    "event_id",
    "stream",
    "aggregate_id",
    "kind",
    "causation_id",
    "parent",
    "depth",
    "cause_missing",
    "amount",
    "currency",
    "summary",
)

_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "position": pl.Int64,
    "occurred_at": pl.Datetime("us", "UTC"),
    "event_id": pl.String,
    "stream": pl.String,
    "aggregate_id": pl.String,
    "kind": pl.String,
    "causation_id": pl.String,
    "parent": pl.String,
    "depth": pl.Int64,
    "cause_missing": pl.Boolean,
    "amount": pl.Int64,
    "currency": pl.String,
    "summary": pl.String,
}


@dataclass
class ProcessView:
    """One process: ``events`` a Polars frame of :data:`PROCESS_COLUMNS` in ``(position,
    event_id)`` order (``parent`` the cause when it is an earlier event of this process, else
    NULL: a root; ``cause_missing`` when the cause is in no stream of the log), and ``tree`` the
    causation tree as text."""

    correlation_id: str
    events: pl.DataFrame
    tree: str

    def __str__(self) -> str:
        n = self.events.height
        streams = sorted(set(self.events["stream"]))
        lines = [
            f"process {self.correlation_id}: {n} event(s) in {', '.join(streams)}",
            "",
            "timeline (money in major units; ! cause not in the log, ^ cause in another process):",
        ]
        for r in self.events.iter_rows(named=True):
            mark = (
                "!"
                if r["cause_missing"]
                else ("^" if r["causation_id"] and not r["parent"] else "")
            )
            line = (
                f"{mark:1} {r['position']:>10} {str(r['occurred_at'])[:19]}  {r['kind']:<32} "
                f"{r['aggregate_id']:<20} {r['summary']}"
            )
            lines.append(_cut(line.rstrip()))
        lines += ["", "causation tree:", self.tree]
        return "\n".join(lines)

    def to_json(self) -> str:
        """The process as one JSON object: its id, its events (exact minor units) and the tree."""
        rows = [
            {**r, "occurred_at": r["occurred_at"].isoformat() if r["occurred_at"] else None}
            for r in self.events.iter_rows(named=True)
        ]
        return json.dumps(
            {"correlation_id": self.correlation_id, "events": rows, "tree": self.tree.splitlines()},
            indent=2,
        )


def _cut(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


def process(db: str | Path, correlation_id: str) -> ProcessView:
    """The process ``correlation_id`` (e.g. ``order:po-1a2b3c4d``) of a replayed database: its
    events across all streams with their causation parent and depth, and the rendered tree.
    Raises ``LookupError`` (one line) when no event has that correlation."""
    path = Path(db)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such database")
    con = store.connect(path, read_only=True)
    try:
        rows = (
            con.sql(
                """SELECT e.event_id, e.position, e.stream, e.aggregate_id, e.kind, e.occurred_at,
                          e.correlation_id, e.causation_id, e.payload,
                          e.causation_id IS NOT NULL AND c.event_id IS NULL AS cause_missing,
                          t.settlement_currency AS trader_currency
                   FROM events e
                   LEFT JOIN events c ON c.event_id = e.causation_id
                   LEFT JOIN traders t ON e.stream = 'trader' AND t.trader_id = e.aggregate_id
                   WHERE e.correlation_id = ?
                   ORDER BY e.position, e.event_id""",
                params=[correlation_id],
            )
            .to_arrow_table()
            .to_pylist()
        )
    finally:
        con.close()
    if not rows:
        raise LookupError(
            f"no process {correlation_id} in {path} (a correlation id such as order:<order id>, "
            "payout:<payout id> or topup:<id>, as a finding's `process` names it)"
        )
    return build(correlation_id, rows)


@dataclass(frozen=True)
class _Env:
    event_id: str
    position: int
    stream: str
    aggregate_id: str
    kind: str
    correlation_id: str | None
    causation_id: str | None


def build(correlation_id: str, rows: list[dict[str, Any]]) -> ProcessView:
    """The view of a process from its event rows (envelope, ``payload`` JSON, ``cause_missing``
    and the trader's ``trader_currency`` for trader events), in any order."""
    envs = [
        _Env(
            r["event_id"],
            r["position"],
            r["stream"],
            r["aggregate_id"],
            r["kind"],
            r.get("correlation_id"),
            r.get("causation_id"),
        )
        for r in rows
    ]
    nodes = {n.event_id: n for n in rules.tree(envs)}
    order_currency: str | None = None
    out = []
    for r in sorted(rows, key=lambda r: (r["position"], r["event_id"])):
        p = _payload(r.get("payload"))
        if r["kind"] == "payment_order.created":
            order_currency = p.get("money", p).get("currency")
        amount, currency, summary = describe(r["kind"], p, r.get("trader_currency"), order_currency)
        n = nodes[r["event_id"]]
        out.append(
            {
                "position": r["position"],
                "occurred_at": r["occurred_at"],
                "event_id": r["event_id"],
                "stream": r["stream"],
                "aggregate_id": r["aggregate_id"],
                "kind": r["kind"],
                "causation_id": r.get("causation_id"),
                "parent": n.parent,
                "depth": n.depth,
                "cause_missing": bool(r.get("cause_missing")),
                "amount": amount,
                "currency": currency,
                "summary": summary,
            }
        )
    frame = pl.DataFrame(out, schema=_SCHEMA, orient="row")
    return ProcessView(correlation_id, frame, render_tree(frame))


def _payload(raw: Any) -> dict[str, Any]:
    try:
        p = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return p if isinstance(p, dict) else {}


def _money(minor: Any, currency: Any) -> str:
    return format_money(minor, currency) if isinstance(minor, int) else "?"


def describe(
    kind: str, p: dict[str, Any], trader_currency: str | None, order_currency: str | None
) -> tuple[int | None, str | None, str]:
    """What an event did, in words, and its main amount (exact minor units) and currency."""
    name = kind.partition(".")[2]
    if kind == "payment_order.created":
        m = p.get("money", p)
        return (
            m.get("amount"),
            m.get("currency"),
            (f"{p.get('direction')} {_money(m.get('amount'), m.get('currency'))}"),
        )
    if kind == "payment_order.assigned":
        cur = p.get("settlement_currency")
        return (
            p.get("settlement_amount"),
            cur,
            (
                f"attempt {p.get('attempt')} to {p.get('trader_id')}, settlement "
                f"{_money(p.get('settlement_amount'), cur)}, fee {_money(p.get('platform_fee'), cur)}"
            ),
        )
    if kind == "payment_order.completed":
        return (
            p.get("paid_amount"),
            order_currency,
            (f"by {p.get('trader_id')}, paid {_money(p.get('paid_amount'), order_currency)}"),
        )
    if kind == "receipt.uploaded":
        return (
            p.get("amount"),
            p.get("currency"),
            (f"{_money(p.get('amount'), p.get('currency'))} by {p.get('trader_id')}"),
        )
    if kind == "ledger_plan.batch_held":
        posts = p.get("postings") or []
        text = "; ".join(
            f"{x.get('from')} → {x.get('to')} {_money(x.get('amount'), x.get('currency'))}"
            for x in posts
        )
        return None, None, f"batch {p.get('batch_id')}: {text}"
    if kind in ("ledger_plan.committed", "ledger_plan.rolled_back"):
        return None, None, f"batches {p.get('batch_ids')}"
    if kind.startswith("trader.") and "ref" in p:
        return (
            p.get("amount"),
            trader_currency,
            (f"{p.get('ref')} {_money(p.get('amount'), trader_currency)}"),
        )
    if kind == "payout.created":
        cur = p.get("currency")
        return (
            p.get("amount"),
            cur,
            (f"{p.get('owner')} {_money(p.get('amount'), cur)}, fee {_money(p.get('fee'), cur)}"),
        )
    for field in ("trader_id", "reason", "outcome", "receipt_id", "by", "bank_ref", "error"):
        if field in p:
            return None, None, f"{field} {p[field]}"
    return None, None, name if not p else ""


def render_tree(events: pl.DataFrame) -> str:
    """The causation forest as text, like ``tree``: each root (no cause in this process) at the
    left, each caused event under its cause, in log order; a missing cause is named."""
    rows = list(events.iter_rows(named=True))
    children: dict[str | None, list[dict[str, Any]]] = {}
    for r in rows:
        children.setdefault(r["parent"], []).append(r)
    lines: list[str] = []

    def label(r: dict[str, Any]) -> str:
        note = ""
        if r["cause_missing"]:
            note = f"  [cause {r['causation_id']} not in the log]"
        elif r["causation_id"] and not r["parent"]:
            note = f"  [cause {r['causation_id']} in another process]"
        return f"{r['kind']} {r['stream']}:{r['aggregate_id']} ({r['event_id'][:8]}){note}"

    # depth-first, iteratively (a hostile log may chain thousands of events)
    stack = [(r, "", True, True) for r in reversed(children.get(None, []))]
    while stack:
        r, prefix, last, root = stack.pop()
        head = "" if root else prefix + ("└── " if last else "├── ")
        lines.append(_cut(head + label(r)))
        kids = children.get(r["event_id"], [])
        below = "" if root else prefix + ("    " if last else "│   ")
        for i in reversed(range(len(kids))):
            stack.append((kids[i], below, i == len(kids) - 1, False))
    return "\n".join(lines)
