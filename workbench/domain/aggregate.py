"""What every aggregate state shares: its id, the last ``seq`` applied, and its violations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self, TypeVar

from .events import Event
from .violations import INVALID_TRANSITION, Violation

T = TypeVar("T")


def evolve(obj: T, **changes: Any) -> T:
    """``dataclasses.replace`` for the frozen states, without re-running ``__init__``.

    Appliers copy a state on every event, so on a full history this is the fold's hottest line;
    copying the instance dictionary is a single C-level operation. The state stays immutable to
    its users: only this function writes a new one.
    """
    new = object.__new__(type(obj))
    d = new.__dict__
    d.update(obj.__dict__)
    d.update(changes)
    return new


@dataclass(frozen=True)
class AggregateState:
    """Base of the aggregate states: immutable, so an applier returns a new one."""

    aggregate_id: str
    version: int = 0
    violations: tuple[Violation, ...] = ()
    updated_at: datetime | None = None  # ``occurred_at`` of the last event applied

    def flag(self, event: Event, code: str, detail: str) -> Self:
        """The same state with one more violation that names ``event``."""
        return evolve(
            self,
            violations=(*self.violations, Violation(code, event.event_id, event.subject, detail)),
        )

    def illegal(self, event: Event, status: object) -> Self:
        """Record that ``event`` is not allowed in ``status`` (it is applied anyway)."""
        return self.flag(
            event, INVALID_TRANSITION, f"{event.kind} is not allowed in status {status}"
        )

    def advanced(self, event: Event, **changes: Any) -> Self:
        """The state after ``event``: the given fields changed and the version moved on.

        The version is the highest ``seq`` seen, so one stray event with an old ``seq`` (a
        conflicting duplicate) does not make every later event look like a gap. ``updated_at``
        is the ``occurred_at`` of this event, the last one applied.
        """
        return evolve(
            self, version=max(self.version, event.seq), updated_at=event.occurred_at, **changes
        )


S = TypeVar("S", bound=AggregateState)


def check_transition(
    state: S, event: Event, status: object, allowed: dict[object, frozenset[str]]
) -> S:
    """Flag ``event`` unless the state machine ``allowed`` permits its kind in ``status``."""
    if event.kind not in allowed.get(status, frozenset()):
        return state.illegal(event, status)
    return state
