"""Replay: rebuild every projection into DuckDB from the platform's exports, losing nothing.

``rebuild(sources, db)`` replays Parquet exports into a DuckDB file and returns a
:class:`ReplaySummary`; ``catch_up(db, url)`` applies what the live stream (NATS JetStream) has
published since the database last read it, exactly once (``follow`` keeps at it);
``connect(db)`` opens the database for queries (notebooks use it).
"""

from __future__ import annotations

from .engine import ReplayError, ReplaySummary, rebuild
from .store import connect
from .stream import StreamSummary, catch_up, follow

__all__ = [
    "ReplayError",
    "ReplaySummary",
    "StreamSummary",
    "catch_up",
    "connect",
    "follow",
    "rebuild",
]
