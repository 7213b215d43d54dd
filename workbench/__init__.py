"""workbench: audit and simulation workbench for an event-sourced P2P payment platform.

The domain model lives in :mod:`workbench.domain` (pure, no I/O); generating histories in
:mod:`workbench.generator`; reading exports in :mod:`workbench.sources`.

After ``import workbench`` every subpackage is reachable as an attribute
(``workbench.summary.summarize(...)``, ``workbench.audit.audit(...)``), as the README writes
them; each is imported the first time it is used, so ``import workbench`` itself stays cheap
(the CLI's start-up and a notebook's first cell pay only for what they touch).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("workbench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__", "connect", "refresh", "status"]


def __getattr__(name: str) -> Any:
    """``workbench.summary`` and the like after a bare ``import workbench`` (PEP 562): the
    submodule is imported now, once, and is then an ordinary attribute (see :mod:`._lazy`)."""
    from ._lazy import submodule

    return submodule(__name__, name)


def __dir__() -> list[str]:
    from ._lazy import names

    return sorted(set(globals()) | names(__path__))


def connect(db: str, read_only: bool = False) -> Any:
    """Open a replay database (a DuckDB connection) for queries, e.g. from a notebook.

    ``read_only`` is what a notebook wants: while a live follower writes ``db`` it opens the
    newest read snapshot the follower published (a committed batch, at most about the
    follower's reader lag behind), never waiting for the follower nor stopping it; the view
    ``reader_snapshot`` says which. :func:`refresh` moves it to the newest one."""
    from .replay.store import connect as _connect

    return _connect(db, read_only=read_only)


def refresh(con: Any) -> dict[str, Any]:
    """Move a read-only connection from :func:`connect` to the newest read snapshot; returns
    what it now sees (the row of ``reader_snapshot``)."""
    from .replay.readers import refresh as _refresh

    return _refresh(con)


def status(db: str) -> Any:
    """Who writes ``db`` (a live follower?), its stream position and the snapshot a reader
    would see, with its age (``workbench status``); ``.lines()`` or ``.as_dict()``."""
    from .replay.readers import status as _status

    return _status(db)
