"""One read of each export file, and its rows exactly as the Parquet holds them.

Both replay engines read their input through :func:`read`, so they see the same rows: each file
is memory-mapped once, its SHA-256 is taken from those bytes (so ``replay_runs`` records exactly
what was read), and its record batches are handed out one by one, each either

* **native**: every envelope column has a type the catalog's type holds without loss (an
  ``int32`` ``seq``, an ``int64`` ``position``, a timestamp in s/ms/µs, valid UTF-8 strings). The
  batch is cast to the catalog's types (:data:`CANONICAL`), which changes no value, and the fast
  path may vouch for its rows; or
* **foreign**: anything else (a float ``seq``, a string ``position``, binary or struct payloads,
  ``uint64``, nanosecond or date columns, invalid UTF-8, a duplicated column). Its rows are
  given as Python values that keep the Parquet's own types (:func:`rows`), and the domain's
  decoder judges each one: it refuses every type the catalog does not name instead of casting.

Nothing here decides whether a row is valid; that is :func:`workbench.domain.catalog.decode`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..domain.events import ENVELOPE_FIELDS
from ..sources import SourceError

#: The catalog's envelope as Arrow types (catalog section 1).
CANONICAL = pa.schema(
    [
        ("event_id", pa.string()),
        ("position", pa.int64()),
        ("stream", pa.string()),
        ("aggregate_id", pa.string()),
        ("seq", pa.int32()),
        ("kind", pa.string()),
        ("schema_version", pa.int16()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
        ("correlation_id", pa.string()),
        ("causation_id", pa.string()),
        ("payload", pa.string()),
    ]
)

_INTS_INTO: dict[str, tuple[pa.DataType, ...]] = {
    "position": (
        pa.int8(),
        pa.int16(),
        pa.int32(),
        pa.int64(),
        pa.uint8(),
        pa.uint16(),
        pa.uint32(),
    ),
    "seq": (pa.int8(), pa.int16(), pa.int32(), pa.uint8(), pa.uint16()),
    "schema_version": (pa.int8(), pa.int16(), pa.uint8()),
}

#: Rows per batch handed to an engine (bounds memory whatever the file's size).
BATCH_ROWS = 131_072


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_string(t.value_type)
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def foreign_column(name: str, t: pa.DataType) -> str | None:
    """Why a column of type ``t`` cannot be read into the catalog's type without a judgement
    (``None``: it can, exactly)."""
    if pa.types.is_null(t):
        return None  # every value is null: the decoder refuses it where a value is required
    if name in _INTS_INTO:
        return None if t in _INTS_INTO[name] else f"{name} is {t}, not an integer that fits"
    if name in ("occurred_at", "recorded_at"):
        if pa.types.is_timestamp(t) and t.unit in ("s", "ms", "us"):
            return None
        return f"{name} is {t}, not a timestamp of at most microseconds"
    if _is_string(t):
        return None
    return f"{name} is {t}, not a string"


def foreign_schema(schema: pa.Schema) -> str | None:
    """Why a file's rows must be judged one by one (``None``: the fast path may read them)."""
    names = [n for n in schema.names if n in ENVELOPE_FIELDS]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        return f"column(s) {repeated} appear more than once"
    missing = [c for c in ENVELOPE_FIELDS if c not in names and c not in _OPTIONAL]
    if missing:
        return f"missing envelope column(s) {missing}"
    for name in names:
        why = foreign_column(name, schema.field(name).type)
        if why:
            return why
    return None


_OPTIONAL = ("correlation_id", "causation_id")


@dataclass
class Batch:
    """Rows of one file, in one of two forms (see the module docstring)."""

    source: str
    native: pa.Table | None = None  # cast to CANONICAL
    foreign: list[dict[str, Any]] | None = None  # Python values as the Parquet holds them
    why: str | None = None  # why the batch is foreign

    @property
    def num_rows(self) -> int:
        return self.native.num_rows if self.native is not None else len(self.foreign or ())


@dataclass
class ExportFile:
    """One file as it was read: its path as listed and the SHA-256 of the bytes parsed."""

    path: Path
    sha256: str = ""
    rows: int = 0
    #: the same bytes were replayed before by the same code: not read again (see :func:`read`)
    unchanged: bool = False


def read(
    files: list[Path], known: frozenset[str] = frozenset()
) -> Iterator[tuple[ExportFile, Iterator[Batch]]]:
    """Each file with its batches (iterate the batches before the next file).

    A file whose SHA-256 is in ``known`` (bytes this database already took in, judged by the
    same code) yields no batches: every row of it was applied, skipped or quarantined then, and
    judging the same bytes again can only find the same (``unchanged`` says so; its row count
    comes from the file's footer)."""
    for path in files:
        info = ExportFile(path)
        if known:
            mm, pf = _open(path)
            try:
                info.sha256 = _sha256(mm)
                if info.sha256 in known:
                    info.rows, info.unchanged = pf.metadata.num_rows, True
                    yield info, iter(())
                    continue
            finally:
                mm.close()
        yield info, _batches(path, info)


def _open(path: Path) -> tuple[pa.MemoryMappedFile, pq.ParquetFile]:
    try:
        mm = pa.memory_map(str(path), "r")
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc})") from None
    try:
        return mm, pq.ParquetFile(mm)
    except (pa.ArrowException, OSError, ValueError) as exc:
        mm.close()
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from None


def _sha256(mm: pa.MemoryMappedFile) -> str:
    h = hashlib.sha256()
    size = mm.size()
    mm.seek(0)
    while mm.tell() < size:
        h.update(mm.read(min(1 << 24, size - mm.tell())))
    mm.seek(0)
    return h.hexdigest()


def _batches(path: Path, info: ExportFile) -> Iterator[Batch]:
    mm, pf = _open(path)
    try:
        info.sha256 = _sha256(mm)
        schema = pf.schema_arrow
        why = foreign_schema(schema)
        keep = [i for i, n in enumerate(schema.names) if n in ENVELOPE_FIELDS]
        try:
            for rb in pf.iter_batches(batch_size=BATCH_ROWS, use_threads=True):
                info.rows += rb.num_rows
                table = pa.Table.from_batches([rb]).select(keep)
                yield _batch(str(path), table, why)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"{path}: corrupt Parquet data ({exc})") from None
    finally:
        mm.close()


def _batch(source: str, table: pa.Table, why: str | None) -> Batch:
    if why is None:
        try:
            table.validate(full=True)  # strings must be UTF-8 (DuckDB would stop the run)
        except pa.ArrowInvalid as exc:
            why = f"invalid data ({exc})"
    if why is None:
        why = _times_outside_calendar(table)
    if why is not None:
        found = rows(table)
        for name in _OPTIONAL:  # as a native batch has them: null (the raw text is the same)
            if name not in table.column_names:
                for r in found:
                    r[name] = None
        return Batch(source, foreign=found, why=why)
    return Batch(source, native=canonical(table))


#: The calendar a ``datetime`` holds (years 1..9999), in microseconds since the epoch.
_FIRST_US = -62_135_596_800_000_000
_LAST_US = 253_402_300_799_999_999


def _times_outside_calendar(table: pa.Table) -> str | None:
    """A timestamp column with a value outside years 1..9999 (or past int64 microseconds once
    widened): its rows go to the decoder, which refuses such a value instead of wrapping it."""
    for name in ("occurred_at", "recorded_at"):
        if name not in table.column_names:
            continue
        col = table.column(name)
        if not pa.types.is_timestamp(col.type) or col.null_count == len(col):
            continue
        mul = _PER_US[col.type.unit][0]
        ints = col.cast(pa.int64())
        lo, hi = pc.min(ints).as_py(), pc.max(ints).as_py()
        if lo * mul < _FIRST_US or hi * mul > _LAST_US:
            return f"{name} holds a timestamp outside the years 1..9999"
    return None


def canonical(table: pa.Table) -> pa.Table:
    """A native table in the catalog's types: every cast is a widening that keeps each value."""
    arrays = []
    for f in CANONICAL:
        if f.name in table.column_names:
            arrays.append(table.column(f.name).cast(f.type, safe=True))
        else:
            arrays.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(arrays, schema=CANONICAL)


# --------------------------------------------------------------------------- foreign rows
def rows(table: pa.Table) -> list[dict[str, Any]]:
    """Every row as Python values of the Parquet's own types, nothing converted: integers and
    floats as they are, strings as ``str`` (or ``bytes`` where they are not UTF-8), binary as
    ``bytes``, timestamps as UTC ``datetime`` when a datetime holds them exactly (otherwise a
    ``str`` saying why, which the decoder refuses). A repeated column keeps every copy, the
    second as ``<name>#2``: the decoder refuses the row as ambiguous."""
    names: list[str] = []
    columns: list[list[Any]] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(table.column_names):
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
        columns.append(_values(table.column(i)))
    out = []
    for i in range(table.num_rows):
        out.append({name: col[i] for name, col in zip(names, columns, strict=True)})
    return out


def _values(col: pa.ChunkedArray) -> list[Any]:
    t = col.type
    if pa.types.is_dictionary(t):
        return _values(col.cast(t.value_type))
    if _is_string(t):
        raw = col.cast(pa.large_binary()).to_pylist()
        return [None if v is None else _text_or_bytes(v) for v in raw]
    if pa.types.is_timestamp(t):
        return _timestamps(col)
    try:
        return list(col.to_pylist())
    except Exception:  # a nested value Python cannot hold (bad UTF-8 inside a struct, ...)
        return [_scalar(col, i) for i in range(len(col))]


def _scalar(col: pa.ChunkedArray, i: int) -> Any:
    try:
        return col[i].as_py()
    except Exception as exc:
        return f"unreadable {col.type} value ({type(exc).__name__})"


def _text_or_bytes(v: bytes) -> str | bytes:
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError:
        return v


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PER_US = {"s": (1_000_000, 1), "ms": (1000, 1), "us": (1, 1), "ns": (1, 1000)}


def _timestamps(col: pa.ChunkedArray) -> list[Any]:
    unit = col.type.unit
    mul, div = _PER_US[unit]
    out: list[Any] = []
    for v in col.cast(pa.int64()).to_pylist():
        if v is None:
            out.append(None)
            continue
        us, rest = divmod(v * mul, div)
        if rest:
            out.append(f"timestamp[{unit}] {v}: finer than the catalog's microseconds")
            continue
        try:
            out.append(_EPOCH + timedelta(microseconds=us))
        except OverflowError:
            out.append(f"timestamp[{unit}] {v}: outside the years 1..9999")
    return out


# --------------------------------------------------------------------------- raw text
def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"bytes_base64": base64.b64encode(bytes(value)).decode("ascii")}
    return str(value)


def raw_json(row: dict[str, Any]) -> str:
    """A row as JSON for the quarantine's ``raw``: every value kept (bytes as base64, lone
    surrogates as ``\\u`` escapes), keys sorted, so the same row always gives the same text."""
    text = json.dumps(row, default=_plain, sort_keys=True, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(row, default=_plain, sort_keys=True, ensure_ascii=True)
    return text
