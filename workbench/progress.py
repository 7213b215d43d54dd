"""Progress bars for long work: shown on a terminal, silent when piped or in CI."""

from __future__ import annotations

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
