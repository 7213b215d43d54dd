"""The payout provider's statements: imported, matched to payouts, checked.

``import_statements(paths, db)`` reads CSV, camt.053 and MT940 statement files into the analyst
database beside ``db`` (:mod:`.importer`; the tables are :mod:`.schema`). The names below are
imported on first use: :mod:`workbench.replay.readers` reads :mod:`.schema` while the importer
needs the readers, so this package itself imports nothing heavy.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .. import _lazy

#: Public names and the submodule that defines each.
_EXPORTS = {
    "import_statements": "importer",
    "ImportSummary": "importer",
    "FileResult": "importer",
    "CsvLayout": "csv_format",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """``workbench.statements.import_statements`` and the submodules, imported on first use
    (see :mod:`workbench._lazy`)."""
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    return _lazy.submodule(__name__, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _lazy.names(__path__))
