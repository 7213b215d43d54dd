"""Replay: rebuild every projection into DuckDB from the platform's exports, losing nothing.

``rebuild(sources, db)`` replays Parquet exports into a DuckDB file and returns a
:class:`ReplaySummary`; ``catch_up(db, url)`` applies what the live stream (NATS JetStream) has
published since the database last read it, exactly once (``follow`` keeps at it);
``connect(db)`` opens the database for queries (notebooks use it).
"""

from __future__ import annotations

from typing import Any

from .. import _lazy
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


def __getattr__(name: str) -> Any:
    """A submodule (``workbench.replay.publish``) imported on first use, so that it works after a
    bare ``import workbench`` (see :mod:`workbench._lazy`)."""
    return _lazy.submodule(__name__, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | _lazy.names(__path__))
