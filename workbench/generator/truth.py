"""An audit judged against the truth a planted history was written with (``--truth``).

The quality gate of the audit: every planted anomaly must be found by its check, with the
planted event in the finding's evidence, and every finding must be explained by some planted
event (the planted event itself, or a consequence the finding proves with it: a second negative
balance caused by a planted hold names that hold in its evidence). One rule, used by every test
that plants and audits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from ..domain.events import Event
    from .history import HistoryGenerator


@dataclass(frozen=True)
class TruthRow:
    """One planted anomaly: the check it sets off, its offending event and subject, the variant
    that planted it and what it changed."""

    check: str
    event_id: str
    subject: str
    variant: str
    detail: str


class PlanterPart:
    """What a family of variants (:mod:`.moment_variants`, :mod:`.review_variants`) needs of the
    :class:`~.anomalies.Planter` that has it: the generator, the planter's random numbers, the
    variant being planted and :meth:`record`, which writes its truth."""

    gen: HistoryGenerator
    rng: random.Random
    _variant: str

    def record(
        self,
        check: str,
        event: Event,
        detail: str,
        subject: str | None = None,
        variant: str | None = None,
    ) -> None:
        raise NotImplementedError

    @staticmethod
    def _first(events: list[Event], kind: str) -> Event:
        return next(e for e in events if e.kind == kind)


def gate(
    findings: pl.DataFrame, truth: pl.DataFrame
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(planted anomalies not found, findings the truth does not explain)."""
    missed = [
        r
        for r in truth.iter_rows(named=True)
        if findings.filter(
            (pl.col("check") == r["check"]) & pl.col("evidence").list.contains(r["event_id"])
        ).is_empty()
    ]
    planted = set(truth["event_id"])
    unexplained = [
        r for r in findings.iter_rows(named=True) if not planted.intersection(r["evidence"])
    ]
    return missed, unexplained
