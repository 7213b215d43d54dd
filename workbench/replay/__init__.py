"""Replay: rebuild every projection into DuckDB from the platform's exports, losing nothing.

``rebuild(sources, db)`` replays Parquet exports into a DuckDB file and returns a
:class:`ReplaySummary`; ``connect(db)`` opens the database for queries (notebooks use it).
"""

from __future__ import annotations

from .engine import ReplayError, ReplaySummary, rebuild
from .store import connect

__all__ = ["ReplayError", "ReplaySummary", "connect", "rebuild"]
