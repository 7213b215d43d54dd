"""The platform's domain in pure Python: money, events, one module per stream, the world fold,
the scheduler's rules, bookings and processors (see the README's layout table)."""

from __future__ import annotations

from typing import Any

from .. import _lazy


def __getattr__(name: str) -> Any:
    """A submodule (``workbench.domain.money``) imported on first use, so that it works after a
    bare ``import workbench`` (see :mod:`workbench._lazy`)."""
    return _lazy.submodule(__name__, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | _lazy.names(__path__))
