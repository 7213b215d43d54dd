"""workbench: audit and simulation workbench for an event-sourced P2P payment platform.

The domain model lives in :mod:`workbench.domain` (pure, no I/O); generating histories in
:mod:`workbench.generator`; reading exports in :mod:`workbench.sources`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("workbench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
