"""Processes: the events of one business process (one ``correlation_id``) followed as one story.

The platform links its events two ways (catalog section 1): ``correlation_id`` names the
business process an event belongs to (``order:<id>`` for an order's assignments, holds,
settlement and payout; ``payout:<id>`` for a withdrawal's hold, transfer and revert;
``topup:<id>`` for a top-up), and ``causation_id`` names the event that caused it. In the
platform's own export every caused event is in its cause's process, and a step that is undone
or finished later (a ledger plan held, a trader hold placed) is finished in the process that
opened it.

``PROCESS_BROKEN`` is two rules over those links, defined here once (the audit's SQL,
``workbench/models/checks/process_broken.sql``, is tested equal to :func:`breaks`):

- **dangling cause**: an event whose ``causation_id`` names no event of the log, nor a row the
  replay quarantined (a quarantined cause exists as a fact and is ``MALFORMED_EVENT``'s finding,
  not this one). An export may start anywhere, so a process is judged only when the log holds
  its beginning: its first event (by ``(position, event_id)``) has no cause. An event with no
  process is always judged.
- **compensation outside the process**: a compensation (a plan's ``committed`` or
  ``rolled_back``; a trader hold's ``hold_captured`` or ``hold_released``) whose opening step
  (the latest ``batch_held`` of the same plan, or ``hold_placed`` of the same trader and ``ref``,
  before it) was recorded under another ``correlation_id`` (or under none while it has one): the
  opening process never sees its step closed. A compensation that never came is ``HOLD_LEAK``'s
  (the attempt or payout ended with the plan or hold open), so it is not reported twice.

Pure: no I/O; the events in, the breaks out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

CHECK = "PROCESS_BROKEN"

#: Each compensation kind and the opening step it closes.
COMPENSATES: dict[str, str] = {
    "ledger_plan.committed": "ledger_plan.batch_held",
    "ledger_plan.rolled_back": "ledger_plan.batch_held",
    "trader.hold_captured": "trader.hold_placed",
    "trader.hold_released": "trader.hold_placed",
}
OPENINGS: frozenset[str] = frozenset(COMPENSATES.values())

DANGLING = "dangling_cause"
ELSEWHERE = "compensation_elsewhere"


class Envelope(Protocol):
    """What the rules read of an event (a :class:`~workbench.domain.events.Event` has it)."""

    @property
    def event_id(self) -> str: ...
    @property
    def position(self) -> int: ...
    @property
    def stream(self) -> str: ...
    @property
    def aggregate_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def causation_id(self) -> str | None: ...


@dataclass(frozen=True)
class Break:
    """One broken process: ``event_id`` the offending event, ``other`` the missing cause's id
    (dangling) or the opening step's event id (compensation elsewhere), ``other_process`` the
    opening step's correlation."""

    rule: str
    event_id: str
    process: str | None
    other: str
    other_process: str | None = None


def step_of(event: Envelope, ref: str | None) -> str | None:
    """The step an opening or compensation belongs to: ``ledger_plan:<plan>``, or
    ``trader:<trader> <ref>`` for a trader hold (one hold per trader and ref, as the catalog
    says; None without a ref); None for any other event. ``ref`` is the trader event's payload ``ref``."""
    if event.kind not in COMPENSATES and event.kind not in OPENINGS:
        return None
    if event.stream == "ledger_plan":
        return f"ledger_plan:{event.aggregate_id}"
    return None if ref is None else f"trader:{event.aggregate_id} {ref}"


def _order(e: Envelope) -> tuple[int, str]:
    return (e.position, e.event_id)


def dangling(events: Sequence[Envelope], quarantined: Iterable[str] = ()) -> list[Break]:
    """Events caused by an event neither the log nor the quarantine has, in a process the log
    holds from its beginning (see the module's docstring)."""
    known = {e.event_id for e in events} | set(quarantined)
    first: dict[str, Envelope] = {}
    for e in sorted(events, key=_order):
        if e.correlation_id is not None and e.correlation_id not in first:
            first[e.correlation_id] = e
    out = []
    for e in sorted(events, key=_order):
        cause = e.causation_id
        if cause is None or cause in known:
            continue
        corr = e.correlation_id
        if corr is not None and first[corr].causation_id is not None:
            continue  # the process began before the log did
        out.append(Break(DANGLING, e.event_id, corr, cause))
    return out


def compensations_elsewhere(
    events: Sequence[Envelope], refs: dict[str, str | None] | None = None
) -> list[Break]:
    """Compensations recorded in another process than their opening step's. ``refs`` maps a
    trader hold event's id to its payload ``ref``."""
    refs = refs or {}
    opened: dict[str, Envelope] = {}
    out = []
    for e in sorted(events, key=_order):
        step = step_of(e, refs.get(e.event_id))
        if step is None:
            continue
        if e.kind in OPENINGS:
            opened[step] = e
            continue
        o = opened.get(step)
        if o is not None and o.correlation_id != e.correlation_id:
            out.append(Break(ELSEWHERE, e.event_id, e.correlation_id, o.event_id, o.correlation_id))
    return out


def breaks(
    events: Sequence[Envelope],
    refs: dict[str, str | None] | None = None,
    quarantined: Iterable[str] = (),
) -> list[Break]:
    """Every ``PROCESS_BROKEN`` of a log: dangling causes, then compensations elsewhere."""
    return dangling(events, quarantined) + compensations_elsewhere(events, refs)


def refs_of(events: Iterable[object]) -> dict[str, str | None]:
    """The payload ``ref`` of each trader hold event among decoded events."""
    out: dict[str, str | None] = {}
    for e in events:
        kind = getattr(e, "kind", "")
        if kind.startswith("trader.hold_"):
            out[e.event_id] = getattr(e.payload, "ref", None)  # type: ignore[attr-defined]
    return out


# ---------------------------------------------------------------------------- the tree
@dataclass(frozen=True)
class Node:
    """One event of a process placed in its causation tree: ``parent`` its cause when the cause
    is in the same process (None: a root), ``depth`` 0 for a root."""

    event_id: str
    parent: str | None
    depth: int


def tree(events: Sequence[Envelope]) -> list[Node]:
    """The causation forest of one process's events, in ``(position, event_id)`` order. A cause
    is a parent only when it is among the events given and comes before its event (a cause in
    another process, missing, or later in the log makes its event a root: no cycle is
    possible)."""
    ordered = sorted(events, key=_order)
    at = {e.event_id: _order(e) for e in ordered}
    depth: dict[str, int] = {}
    out = []
    for e in ordered:
        c = e.causation_id
        parent = c if c is not None and c in at and at[c] < _order(e) else None
        depth[e.event_id] = 0 if parent is None else depth[parent] + 1
        out.append(Node(e.event_id, parent, depth[e.event_id]))
    return out
