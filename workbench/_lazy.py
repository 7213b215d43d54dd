"""Submodules as attributes, imported on first use.

Why: the README writes ``import workbench`` and then ``workbench.summary.summarize(...)`` or
``workbench.sim.calibrate.calibrate(db)``, as one does with numpy or scipy. A package's
submodules are its attributes only once something imported them, so without this that line
works or raises ``AttributeError`` depending on what the session happened to import before.
Importing every submodule up front would make ``import workbench`` (and each CLI start) pay
for DuckDB, Polars, SimPy and Plotly; a package's ``__getattr__`` (PEP 562) calls
:func:`submodule` instead, which imports only the one asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Iterable
from types import ModuleType


def submodule(package: str, name: str) -> ModuleType:
    """``package.name`` imported, when ``package`` has a submodule ``name``; else the
    ``AttributeError`` that ``getattr`` and ``hasattr`` expect. Private and dunder names are
    never looked up (tools probe ``__wrapped__``, ``_repr_html_`` and the like)."""
    if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
        return importlib.import_module(f"{package}.{name}")
    raise AttributeError(f"module {package!r} has no attribute {name!r}")


def names(path: Iterable[str]) -> set[str]:
    """The public submodules of a package whose ``__path__`` is ``path`` (for ``dir()``)."""
    return {m.name for m in pkgutil.iter_modules(list(path)) if not m.name.startswith("_")}
