"""Progress bars for long work: shown on a terminal, silent when piped or in CI."""

from __future__ import annotations

import contextlib
import sys
from typing import Any


def bar(enabled: bool | None, **options: Any) -> Any:
    """A tqdm bar on stderr, or None. ``enabled=None`` means: only if stderr is a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(file=sys.stderr, **options)


def no_progress_bar(con: Any) -> None:
    """Turn DuckDB's own progress bar off on ``con``. In a Jupyter kernel without ipywidgets
    DuckDB refuses to change that setting (it has no bar to show there anyway), so the refusal
    is not an error."""
    import duckdb

    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false").fetchall()
