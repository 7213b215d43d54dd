"""Report parameters that name files: made absolute from where the command runs, and checked.

Why: a report's notebook runs in its own folder, and its first cell,
``open_database(db, export)``, replays the bundled sample when ``db`` is missing. So
``workbench report notebooks/quickstart.ipynb -p db=../out/fixtur.duckdb`` (a typo) used to
report on a freshly built sample and exit 0, and ``-p db=out/sample.duckdb`` typed at the
repository root built a new ``notebooks/out/sample.duckdb``. A path a person types is relative
to where they type it, and a database they name must be the one reported on.

The rule, by parameter name (the notebooks follow it):

* inputs, which must exist: ``db``, ``export``, ``statements`` and names ending ``_db``, ``_export``, ``_path``;
* outputs, which the notebook writes: names ending ``_out``;
* both are made absolute from the current directory before they are injected; a ``db`` (or
  ``NAME_db``) that does not exist is accepted only when ``export`` (``NAME_export``) is given
  too: the notebook then replays that export into it.

Only values given to the run are touched (a string or a path): the defaults in a notebook's
parameters cell stay relative to its folder, so a notebook run without ``-p db`` still uses its
own copy of the sample, built on first run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

INPUTS = ("db", "export", "statements")
INPUT_SUFFIXES = ("_db", "_export", "_path")
OUTPUT_SUFFIXES = ("_out",)


def is_input(name: str) -> bool:
    """A parameter naming a file or folder the notebook reads (it must exist)."""
    return name in INPUTS or name.endswith(INPUT_SUFFIXES)


def is_output(name: str) -> bool:
    """A parameter naming a file the notebook writes."""
    return name.endswith(OUTPUT_SUFFIXES)


def _export_for(name: str) -> str | None:
    """The export a missing database ``name`` may be built from: ``db`` → ``export``,
    ``baseline_db`` → ``baseline_export``."""
    if name == "db":
        return "export"
    if name.endswith("_db"):
        return name[: -len("_db")] + "_export"
    return None


def resolve(
    parameters: Mapping[str, Any], declared: Iterable[str], base: str | Path | None = None
) -> dict[str, Any]:
    """``parameters`` with the value of every path parameter the notebook declares made absolute
    from ``base`` (default: the current directory; ``~`` expanded). Raises
    :class:`FileNotFoundError`, naming the parameter and the path looked for, when an input does
    not exist (see the module doc). Names the notebook does not declare pass through untouched,
    for :func:`.execute.inject` to refuse."""
    where = Path.cwd() if base is None else Path(base)
    known = set(declared)
    out = dict(parameters)
    for name, value in parameters.items():
        if name not in known or not isinstance(value, str | os.PathLike):
            continue
        if not (is_input(name) or is_output(name)):
            continue
        path = Path(os.path.abspath(where / Path(value).expanduser()))
        out[name] = str(path)
        if is_input(name) and not path.exists():
            export = _export_for(name)
            if export is not None and isinstance(parameters.get(export), str | os.PathLike):
                continue  # the notebook replays that export into the new database
            raise FileNotFoundError(_missing(name, value, path, export))
    return out


def _missing(name: str, value: object, path: Path, export: str | None) -> str:
    what = "database" if export is not None else "file or folder"
    hint = "relative paths are from the current directory"
    if export is not None:
        hint += f"; to build it from an export, give -p {export}=EXPORT too"
    return f"parameter {name}={value}: no such {what} {path} ({hint})"
