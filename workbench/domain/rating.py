"""The ``trader_rating`` stream (catalog 3.7) and the rating formula, in exact arithmetic."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Final

from .aggregate import AggregateState
from .events import Decimal6, Event, Int32, Payload, UtcDatetime
from .money import div_round_half_even


class RatingPublished(Payload):
    KIND = "trader_rating.published"
    as_of: UtcDatetime
    window_days: Int32
    assignments: Int32
    completed: Int32
    on_time: Int32
    disputed: Int32
    score: Decimal6


PAYLOADS: tuple[type[Payload], ...] = (RatingPublished,)

#: The score of a trader with no published rating: the formula at zero counts.
DEFAULT_SCORE: Final = Decimal("55.00")


@dataclass(frozen=True, slots=True)
class RatingCounts:
    assignments: int
    completed: int
    on_time: int
    disputed: int


def score(c: RatingCounts) -> Decimal:
    """``round_half_even(100 * (0.6*(c+1)/(a+2) + 0.3*(o+1)/(c+2) + 0.1*(1 - d/(c+1))), 2)``."""
    value = 100 * (
        Fraction(6, 10) * Fraction(c.completed + 1, c.assignments + 2)
        + Fraction(3, 10) * Fraction(c.on_time + 1, c.completed + 2)
        + Fraction(1, 10) * (1 - Fraction(c.disputed, c.completed + 1))
    )
    hundredths = value * 100
    return Decimal(div_round_half_even(hundredths.numerator, hundredths.denominator)).scaleb(-2)


@dataclass(slots=True)
class RatingHistory:
    """The timestamps the formula counts, per trader, kept sorted for window counts.

    Each count is taken by the ``occurred_at`` of its own event, so a window is a pair of
    bisections per list: ``(as_of - window_days, as_of]``.
    """

    assignments: dict[str, list[datetime]] = field(default_factory=dict)
    completions: dict[str, list[datetime]] = field(default_factory=dict)
    on_time: dict[str, list[datetime]] = field(default_factory=dict)
    disputes: dict[str, list[datetime]] = field(default_factory=dict)

    @staticmethod
    def _add(index: dict[str, list[datetime]], trader_id: str, at: datetime) -> None:
        times = index.setdefault(trader_id, [])
        if times and at < times[-1]:
            times.insert(bisect_right(times, at), at)
        else:
            times.append(at)

    def assigned(self, trader_id: str, at: datetime) -> None:
        self._add(self.assignments, trader_id, at)

    def completed(self, trader_id: str, at: datetime, complete_by: datetime | None) -> None:
        self._add(self.completions, trader_id, at)
        if complete_by is not None and at <= complete_by:
            self._add(self.on_time, trader_id, at)

    def disputed(self, trader_id: str, at: datetime) -> None:
        self._add(self.disputes, trader_id, at)

    @staticmethod
    def _count(
        index: dict[str, list[datetime]], trader_id: str, start: datetime, end: datetime
    ) -> int:
        times = index.get(trader_id, [])
        return bisect_right(times, end) - bisect_right(times, start) if times else 0

    def counts(self, trader_id: str, as_of: datetime, window_days: int) -> RatingCounts:
        start = as_of - timedelta(days=window_days)
        return RatingCounts(
            assignments=self._count(self.assignments, trader_id, start, as_of),
            completed=self._count(self.completions, trader_id, start, as_of),
            on_time=self._count(self.on_time, trader_id, start, as_of),
            disputed=self._count(self.disputes, trader_id, start, as_of),
        )


@dataclass(frozen=True)
class RatingState(AggregateState):
    published: int = 0
    as_of: datetime | None = None
    window_days: int | None = None
    counts: RatingCounts | None = None
    score: Decimal = DEFAULT_SCORE
    published_at: datetime | None = None


def apply(state: RatingState | None, event: Event) -> RatingState:
    """Fold one rating: the latest published figures are the trader's current rating."""
    s = state or RatingState(event.aggregate_id)
    p = event.payload
    if isinstance(p, RatingPublished):
        counts = RatingCounts(p.assignments, p.completed, p.on_time, p.disputed)
        return s.advanced(
            event,
            published=s.published + 1,
            as_of=p.as_of,
            window_days=p.window_days,
            counts=counts,
            score=p.score,
            published_at=event.occurred_at,
        )
    raise TypeError(f"not a trader_rating event: {event.kind}")
