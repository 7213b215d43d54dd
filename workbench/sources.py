"""Reading event exports (Parquet files or directories, hive partitions allowed).

An adapter at the edge: it turns files into envelope rows (plain dicts) and never interprets
them; decoding and every rule are the domain's. A file that is not an export is a clear
:class:`SourceError` naming the file, not a stack trace.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from .domain.events import ENVELOPE_FIELDS

REQUIRED = tuple(f for f in ENVELOPE_FIELDS if f not in ("correlation_id", "causation_id"))


class SourceError(ValueError):
    """A source that cannot be read as an export (missing, not Parquet, missing columns)."""


def parquet_files(sources: Sequence[str | Path]) -> list[Path]:
    """Every ``.parquet`` file under the given files and directories, in a stable order."""
    files: list[Path] = []
    for src in sources:
        path = Path(src)
        if not path.exists():
            raise SourceError(f"{path}: no such file or directory")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.parquet") if p.is_file())
            if not found:
                raise SourceError(f"{path}: no .parquet files in this directory")
            files.extend(found)
        else:
            files.append(path)
    return files


def read_table(path: Path, require: bool = True) -> pa.Table:
    """One export file as an Arrow table. With ``require``, a missing envelope column is an
    error; without, the caller decides (replay quarantines such rows, keeping them whole)."""
    try:
        table = ds.dataset(str(path), format="parquet").to_table()
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from None
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing and require:
        raise SourceError(f"{path}: missing envelope column(s) {missing}")
    return table


def iter_rows(sources: Sequence[str | Path]) -> Iterator[dict[str, Any]]:
    """Envelope rows of every file, file by file (memory bounded by the largest file)."""
    for path in parquet_files(sources):
        table = read_table(path)
        keep = [c for c in ENVELOPE_FIELDS if c in table.column_names]
        yield from table.select(keep).to_pylist()
