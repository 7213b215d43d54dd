"""Clocks are judged: an event's two timestamps must be plausible (catalog section 1).

``recorded_at`` is when the platform's event store wrote the event, ``occurred_at`` the business
time its service claims; the catalog requires ``recorded_at >= occurred_at``. A service's clock
may run a little ahead of the store's, so ``occurred_at`` may pass ``recorded_at`` by up to
:data:`SKEW_TOLERANCE`; past that the event is applied (it is a fact) and flagged ``CLOCK_SKEW``.
Either timestamp outside the platform's era (:data:`ERA_START` to :data:`ERA_END`, end excluded)
is flagged too: a year-1 or year-9999 timestamp is a broken clock, never a business time.

The audit's "now" is never an event's claim: it is ``--as-of``, else the latest ``recorded_at``
inside the era (:func:`workbench.audit.run.run_checks`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from .events import Event
from .violations import CLOCK_SKEW, Violation

#: How far ``occurred_at`` may pass ``recorded_at`` before the event is flagged (a service's
#: clock slightly ahead of the event store's). Exactly the tolerance is not flagged.
SKEW_TOLERANCE: Final = timedelta(seconds=5)

#: The platform's era: timestamps before ``ERA_START`` or at/after ``ERA_END`` are impossible.
ERA_START: Final = datetime(2000, 1, 1, tzinfo=UTC)
ERA_END: Final = datetime(2100, 1, 1, tzinfo=UTC)

_ERA = f"the era [{ERA_START:%Y-%m-%d}, {ERA_END:%Y-%m-%d})"
#: The reasons a detail names, in this order (the SQL engine writes the same words).
SKEW_REASON: Final = (
    f"occurred_at more than {int(SKEW_TOLERANCE.total_seconds())} s after recorded_at"
)
OCCURRED_OUTSIDE: Final = f"occurred_at outside {_ERA}"
RECORDED_OUTSIDE: Final = f"recorded_at outside {_ERA}"


def stamp(value: datetime) -> str:
    """A timestamp as the details write it: UTC, always six fractional digits, any year."""
    t = value.astimezone(UTC)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond:06d}Z"
    )


def in_era(value: datetime) -> bool:
    return ERA_START <= value < ERA_END


def clock_violations(event: Event) -> list[Violation]:
    """``CLOCK_SKEW`` for an event whose clocks are implausible (none if they are fine)."""
    occurred, recorded = event.occurred_at, event.recorded_at
    reasons = []
    if occurred - recorded > SKEW_TOLERANCE:
        reasons.append(SKEW_REASON)
    if not in_era(occurred):
        reasons.append(OCCURRED_OUTSIDE)
    if not in_era(recorded):
        reasons.append(RECORDED_OUTSIDE)
    if not reasons:
        return []
    return [
        Violation(
            CLOCK_SKEW,
            event.event_id,
            event.subject,
            f"occurred_at {stamp(occurred)}, recorded_at {stamp(recorded)}: {'; '.join(reasons)}",
        )
    ]
