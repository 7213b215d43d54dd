"""Reading event exports (Parquet files or directories, hive partitions allowed).

An adapter at the edge: it turns files into envelope rows (plain dicts) and never interprets
them; decoding and every rule are the domain's. A file that is not an export is a clear
:class:`SourceError` naming the file, not a stack trace.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .domain.events import ENVELOPE_FIELDS

REQUIRED = tuple(f for f in ENVELOPE_FIELDS if f not in ("correlation_id", "causation_id"))


class SourceError(ValueError):
    """A source that cannot be read as an export (missing, not Parquet, missing columns)."""


def parquet_files(sources: Sequence[str | Path]) -> list[Path]:
    """Every ``.parquet`` file under the given files and directories, in a stable order.

    Paths are paths: a name with ``*``, ``?`` or ``[`` is that name, never a pattern. Folders
    are walked by the workbench (symbolic links to folders and files are followed; a link that
    leads back into a folder being walked, or nowhere, is an error, never skipped in silence).
    A file reached twice (two sources, or a link) is read once."""
    files: list[Path] = []
    seen: set[Path] = set()
    for src in sources:
        path = Path(src)
        if not path.exists():
            if path.is_symlink():
                raise SourceError(f"{path}: a symbolic link to nothing")
            raise SourceError(f"{path}: no such file or directory")
        found = _walk(path, (path.resolve(),)) if path.is_dir() else [path]
        if path.is_dir() and not found:
            raise SourceError(f"{path}: no .parquet files in this directory")
        for f in found:
            real = f.resolve()
            if real not in seen:
                seen.add(real)
                files.append(f)
    return files


def _walk(folder: Path, ancestors: tuple[Path, ...]) -> list[Path]:
    """``.parquet`` files under ``folder``, by name, following links, refusing cycles."""
    out: list[Path] = []
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise SourceError(f"{folder}: cannot be listed ({exc.strerror})") from None
    for entry in entries:
        if entry.is_symlink() and not entry.exists():
            if entry.name.endswith(".parquet") or not entry.suffix:
                raise SourceError(f"{entry}: a symbolic link to nothing")
            continue
        if entry.is_dir():
            real = entry.resolve()
            if real in ancestors:
                raise SourceError(f"{entry}: a symbolic link back into {real} (a cycle)")
            out.extend(_walk(entry, (*ancestors, real)))
        elif entry.is_file() and entry.name.endswith(".parquet"):
            out.append(entry)
    return out


def iter_rows(sources: Sequence[str | Path]) -> Iterator[dict[str, Any]]:
    """Envelope rows of every file, batch by batch, exactly as replay reads them (see
    :mod:`workbench.replay.parquet_rows`: the catalog's types where the file has them, the
    file's own values otherwise, for the decoder to judge)."""
    from .replay import parquet_rows

    for _info, batches in parquet_rows.read(parquet_files(sources)):
        for batch in batches:
            if batch.native is not None:
                yield from batch.native.to_pylist()
            else:
                yield from batch.foreign or ()
