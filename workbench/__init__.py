"""workbench: audit and simulation workbench for an event-sourced P2P payment platform.

The domain model lives in :mod:`workbench.domain` (pure, no I/O); generating histories in
:mod:`workbench.generator`; reading exports in :mod:`workbench.sources`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("workbench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__", "connect"]


def connect(db: str, read_only: bool = False) -> Any:
    """Open a replay database (a DuckDB connection) for queries, e.g. from a notebook."""
    from .replay.store import connect as _connect

    return _connect(db, read_only=read_only)
