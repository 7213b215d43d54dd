"""Shared fixtures of the domain tests: an event factory and the platform's fixture export."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from workbench.domain.catalog import decode
from workbench.domain.events import ENVELOPE_FIELDS, Event, Payload

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)

_DEFAULT_EXPORT = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "platform-export-3d"
FIXTURE_EXPORT = Path(os.environ.get("WORKBENCH_FIXTURE_EXPORT", _DEFAULT_EXPORT))


class EventFactory:
    """Builds envelopes around payloads with unique ids and per-aggregate contiguous ``seq``."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._seq: dict[tuple[str, str], int] = {}

    def __call__(
        self,
        stream: str,
        aggregate_id: str,
        payload: Payload,
        at: datetime | None = None,
        *,
        seq: int | None = None,
    ) -> Event:
        n = next(self._ids)
        key = (stream, aggregate_id)
        if seq is None:
            seq = self._seq.get(key, 0) + 1
        self._seq[key] = seq
        when = at or T0 + timedelta(seconds=n)
        return Event(
            event_id=f"ev-{n:06d}",
            position=n,
            stream=stream,
            aggregate_id=aggregate_id,
            seq=seq,
            kind=payload.KIND,
            schema_version=payload.VERSION,
            occurred_at=when,
            recorded_at=when,
            correlation_id=None,
            causation_id=None,
            payload=payload,
        )


@pytest.fixture
def make_event() -> EventFactory:
    return EventFactory()


@pytest.fixture(scope="session")
def event_factory_maker() -> Callable[[], EventFactory]:
    """For hypothesis tests (no function-scoped fixtures there): a fresh factory per example."""
    return EventFactory


# ---------------------------------------------------------------------- the fixture export
@pytest.fixture(scope="session")
def fixture_rows() -> list[dict[str, Any]]:
    """Every row of the export, read file by file (envelope columns only, no hive column)."""
    files = sorted(FIXTURE_EXPORT.glob("date=*/*.parquet"))
    if not files:
        pytest.fail(f"fixture export not found under {FIXTURE_EXPORT}")
    rows: list[dict[str, Any]] = []
    for f in files:
        table = pq.read_table(f, partitioning=None)
        assert tuple(table.column_names) == ENVELOPE_FIELDS, f
        rows.extend(table.to_pylist())
    return rows


@pytest.fixture(scope="session")
def fixture_unique_rows(fixture_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per ``event_id``; a redelivery must be an identical copy."""
    by_id: dict[str, dict[str, Any]] = {}
    for row in fixture_rows:
        seen = by_id.setdefault(row["event_id"], row)
        assert seen == row, f"conflicting copies of {row['event_id']}"
    return list(by_id.values())


@pytest.fixture(scope="session")
def fixture_events(fixture_unique_rows: list[dict[str, Any]]) -> list[Event]:
    """Every unique row decoded (raises on the first undecodable row), in ``position`` order."""
    return sorted((decode(row) for row in fixture_unique_rows), key=lambda e: e.position)
