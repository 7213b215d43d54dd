"""Import statement files into the analyst database, losing nothing and changing nothing.

Every line of a file ends in exactly one place, and the counts say so (stored in
``statement_files`` and checked against the rows written before the file's transaction commits):

    lines in = stored + duplicates + quarantined + conflicts

* stored: a line id not seen before (``statement_lines``);
* duplicate: a line id already stored with the same content (:func:`.records.same_content`),
  from this file or an earlier one: skipped;
* quarantined: a line that cannot be read, with its raw text, the field and the reason
  (``statement_quarantine``); a file that is not a statement of its format at all is one
  quarantined record at line 0 (then lines in = 1);
* conflict: a line id already stored with other content: kept in ``statement_conflicts`` and
  reported, the stored line stays (first seen wins, nothing is overwritten).

A file is known by the SHA-256 of its bytes: importing it again adds nothing. Each file is one
transaction, so a file is either imported whole or not at all. Files are read and parsed before
the analyst database is opened, so it is held only for the writes (a notebook's reader copies
from it at any time).

The format, when not given, is told by content: XML (``<`` first) is camt.053, a file starting
with ``:20:`` or a SWIFT envelope ``{1:`` is MT940, anything else is CSV.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from . import camt053, csv_format, mt940, schema
from .csv_format import CsvLayout
from .records import Line, NotAStatement, Parsed, Quarantined, same_content


class ImportCountError(RuntimeError):
    """The rows written for a file are not the counts it was imported with (rolled back)."""


@dataclass(frozen=True)
class Conflict:
    """A line id seen again with other content: where, and which file's line is stored."""

    line_id: str
    line_no: int
    raw: str
    kept_file_sha256: str


@dataclass(frozen=True)
class FileResult:
    """What importing one file did. ``already_imported``: the same bytes were imported before
    (as ``path`` of that import); then nothing was added and the counts are that import's.
    ``refused``: the reason the whole file was quarantined (``not_a_statement``,
    ``unsafe_xml``), with ``refused_detail``."""

    path: str
    sha256: str
    format: str
    period_from: date | None
    period_to: date | None
    lines_in: int
    stored: int
    duplicates: int
    quarantined: int
    conflicts: int
    already_imported: bool = False
    refused: str | None = None
    refused_detail: str | None = None
    reasons: Mapping[str, int] = field(default_factory=dict)
    conflict_lines: tuple[Conflict, ...] = ()
    given_path: str | None = None  # the path given this time, when already imported

    def line(self) -> str:
        """One line for a person: the file, its format and period, and where its lines went."""
        where = self.given_path or self.path
        period = (
            f", {self.period_from}..{self.period_to}" if self.period_from and self.period_to else ""
        )
        if self.already_imported:
            return (
                f"{where}: already imported as {self.path} (same SHA-256 {self.sha256[:12]}); "
                "nothing added"
            )
        if self.refused:
            return f"{where} ({self.format}): whole file quarantined, {self.refused}: {self.refused_detail}"
        counts = (
            f"{self.lines_in} in = {self.stored} stored + {self.duplicates} duplicate + "
            f"{self.quarantined} quarantined + {self.conflicts} conflict"
        )
        why = ", ".join(f"{r} {n}" for r, n in sorted(self.reasons.items()))
        return f"{where} ({self.format}{period}): {counts}" + (f" ({why})" if why else "")


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`import_statements` did, file by file, and its exit code: 0 every line stored
    or a duplicate (or nothing new), 1 a line quarantined or a conflict, 2 a whole file refused
    as not a statement (wrong file or ``format``)."""

    db: Path
    files: tuple[FileResult, ...]

    def _new(self) -> list[FileResult]:
        return [f for f in self.files if not f.already_imported]

    @property
    def lines_in(self) -> int:
        return sum(f.lines_in for f in self._new())

    @property
    def stored(self) -> int:
        return sum(f.stored for f in self._new())

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self._new())

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self._new())

    @property
    def conflicts(self) -> int:
        return sum(f.conflicts for f in self._new())

    @property
    def exit_code(self) -> int:
        if any(f.refused for f in self._new()):
            return 2
        return 1 if self.quarantined or self.conflicts else 0

    def lines(self) -> list[str]:
        out = []
        for f in self.files:
            out.append(f.line())
            out += [
                f"  conflict: line {c.line_id} (line {c.line_no}) differs from the stored one "
                f"(file {c.kept_file_sha256[:12]}); the stored line stays"
                for c in f.conflict_lines
            ]
        out.append(
            f"total: {self.lines_in} in = {self.stored} stored + {self.duplicates} duplicate + "
            f"{self.quarantined} quarantined + {self.conflicts} conflict"
        )
        return out


def guess_format(data: bytes) -> str:
    """The format of a file by its content (see the module doc)."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "camt053"
    if mt940.looks_like(head[:200].decode("utf-8", "replace")):
        return "mt940"
    return "csv"


def parse_file(data: bytes, fmt: str, csv_layout: CsvLayout | None = None) -> Parsed:
    """One file's lines and quarantined lines in ``fmt`` (:class:`NotAStatement` if it is not
    a statement of that format)."""
    if fmt == "csv":
        return csv_format.parse(data, csv_layout)
    if fmt == "camt053":
        return camt053.parse(data)
    if fmt == "mt940":
        return mt940.parse(data)
    raise ValueError(f"format {fmt!r} is not one of {', '.join(schema.FORMATS)}")


def import_statements(
    paths: Iterable[str | Path],
    db: str | Path,
    *,
    format: str | None = None,
    csv_layout: CsvLayout | None = None,
) -> ImportSummary:
    """Import statement files into the analyst database beside ``db`` (see the module doc).

    ``format`` (``csv``, ``camt053``, ``mt940``) applies to every file; without it each file's
    is told by its content. ``csv_layout`` says how CSV files are laid out (default columns,
    ``.`` decimals, no thousands separator). A file that cannot be read at all (missing, a
    directory, no permission) fails the whole call before anything is written."""
    if format is not None and format not in schema.FORMATS:
        raise ValueError(f"format {format!r} is not one of {', '.join(schema.FORMATS)}")
    from ..replay import snapshots

    db = Path(db)
    if not db.exists() and not snapshots.snapshot_dir(db).exists():
        raise FileNotFoundError(
            f"{db}: no such database (run `workbench replay SOURCE --db {db}` first)"
        )
    given = [Path(p) for p in paths]
    if not given:
        raise ValueError("no statement file given")
    read = [(str(p), p.read_bytes()) for p in given]  # every file readable, or nothing is done
    parsed: list[tuple[str, bytes, str, Parsed | NotAStatement]] = []
    for path, data in read:
        fmt = format or guess_format(data)
        try:
            parsed.append((path, data, fmt, parse_file(data, fmt, csv_layout)))
        except NotAStatement as refused:
            # the whole file is its raw text: in the CSV layout's encoding, else UTF-8
            encoding = csv_layout.encoding if fmt == "csv" and csv_layout else "utf-8"
            refused.raw = data.decode(encoding, "backslashreplace")
            parsed.append((path, data, fmt, refused))
    from ..replay.readers import analyst_writer

    con = analyst_writer(db)
    try:
        for ddl in schema.DDL:
            con.execute(ddl).fetchall()
        results = tuple(_import_one(con, *item) for item in parsed)
    finally:
        con.close()
    return ImportSummary(db, results)


def _import_one(
    con: duckdb.DuckDBPyConnection,
    path: str,
    data: bytes,
    fmt: str,
    parsed: Parsed | NotAStatement,
) -> FileResult:
    digest = sha256(data).hexdigest()
    con.execute("BEGIN TRANSACTION").fetchall()
    try:
        result = _write(con, path, data, digest, fmt, parsed)
        con.execute("COMMIT").fetchall()
    except BaseException:
        con.execute("ROLLBACK").fetchall()
        raise
    return result


def _write(
    con: duckdb.DuckDBPyConnection,
    path: str,
    data: bytes,
    digest: str,
    fmt: str,
    parsed: Parsed | NotAStatement,
) -> FileResult:
    before = con.execute(
        "SELECT path, format, period_from, period_to, lines_in, stored, duplicates, "
        "quarantined, conflicts FROM statement_files WHERE file_sha256 = ?",
        [digest],
    ).fetchall()
    if before:
        old = before[0]
        return FileResult(
            path=old[0],
            sha256=digest,
            format=old[1],
            period_from=old[2],
            period_to=old[3],
            lines_in=old[4],
            stored=old[5],
            duplicates=old[6],
            quarantined=old[7],
            conflicts=old[8],
            already_imported=True,
            given_path=path,
        )
    if isinstance(parsed, NotAStatement):
        raw = parsed.raw if parsed.raw is not None else data.decode("utf-8", "backslashreplace")
        parsed_ok = Parsed(
            quarantined=[Quarantined(0, raw, parsed.field, parsed.reason, parsed.detail)]
        )
    else:
        parsed_ok = parsed
    stored, duplicates, conflicts = _sort(con, parsed_ok.lines, digest)
    dates = [line.value_date for line in parsed_ok.lines]
    period_from = parsed_ok.period_from or (min(dates) if dates else None)
    period_to = parsed_ok.period_to or (max(dates) if dates else None)
    result = FileResult(
        path,
        digest,
        fmt,
        period_from,
        period_to,
        lines_in=len(parsed_ok.lines) + len(parsed_ok.quarantined),
        stored=len(stored),
        duplicates=duplicates,
        quarantined=len(parsed_ok.quarantined),
        conflicts=len(conflicts),
        refused=parsed.reason if isinstance(parsed, NotAStatement) else None,
        refused_detail=parsed.detail if isinstance(parsed, NotAStatement) else None,
        reasons=dict(Counter(q.reason for q in parsed_ok.quarantined)),
        conflict_lines=tuple(conflicts),
    )
    _insert_lines(con, stored, digest)
    _insert(
        con,
        "statement_quarantine",
        {
            "file_sha256": [digest] * len(parsed_ok.quarantined),
            "path": [path] * len(parsed_ok.quarantined),
            "line_no": [q.line_no for q in parsed_ok.quarantined],
            "raw": [q.raw for q in parsed_ok.quarantined],
            "field": [q.field for q in parsed_ok.quarantined],
            "reason": [q.reason for q in parsed_ok.quarantined],
            "detail": [q.detail for q in parsed_ok.quarantined],
        },
    )
    _insert(
        con,
        "statement_conflicts",
        {
            "line_id": [c.line_id for c in conflicts],
            "file_sha256": [digest] * len(conflicts),
            "line_no": [c.line_no for c in conflicts],
            "raw": [c.raw for c in conflicts],
            "kept_file_sha256": [c.kept_file_sha256 for c in conflicts],
        },
    )
    con.execute(
        "INSERT INTO statement_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            digest,
            path,
            fmt,
            period_from,
            period_to,
            datetime.now(UTC),
            result.lines_in,
            result.stored,
            result.duplicates,
            result.quarantined,
            result.conflicts,
        ],
    ).fetchall()
    _check(con, result)
    return result


def _sort(
    con: duckdb.DuckDBPyConnection, lines: list[Line], digest: str
) -> tuple[list[Line], int, list[Conflict]]:
    """Which of ``lines`` are new (to store), how many are duplicates, which are conflicts:
    against the lines stored before and the ones before them in this file."""
    seen: dict[str, tuple[tuple[object, ...], str]] = {}
    ids = pa.table({"line_id": pa.array(sorted({x.line_id for x in lines}), pa.string())})
    con.register("statement_import_ids", ids)
    try:
        rows = con.execute(
            "SELECT s.line_id, s.file_sha256, s.value_date, epoch_us(s.booked_at), "
            "s.amount_minor, s.currency, s.reference, s.counterparty "
            "FROM statement_lines s JOIN statement_import_ids USING (line_id)"
        ).fetchall()
    finally:
        con.unregister("statement_import_ids")
    for line_id, file_sha, value_date, booked_us, amount, currency, ref, party in rows:
        booked = None if booked_us is None else _EPOCH + timedelta(microseconds=booked_us)
        seen[line_id] = ((value_date, booked, amount, currency, ref, party), file_sha)
    stored: list[Line] = []
    duplicates = 0
    conflicts: list[Conflict] = []
    for line in lines:
        known = seen.get(line.line_id)
        if known is None:
            stored.append(line)
            seen[line.line_id] = (line.content(), digest)
        elif same_content(known[0], line.content()):
            duplicates += 1
        else:
            conflicts.append(Conflict(line.line_id, line.line_no, line.raw, known[1]))
    return stored, duplicates, conflicts


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _insert_lines(con: duckdb.DuckDBPyConnection, lines: list[Line], digest: str) -> None:
    _insert(
        con,
        "statement_lines",
        {
            "line_id": pa.array([x.line_id for x in lines], pa.string()),
            "file_sha256": pa.array([digest] * len(lines), pa.string()),
            "line_no": pa.array([x.line_no for x in lines], pa.int64()),
            "value_date": pa.array([x.value_date for x in lines], pa.date32()),
            "booked_at": pa.array([x.booked_at for x in lines], pa.timestamp("us", tz="UTC")),
            "amount_minor": pa.array([x.amount_minor for x in lines], pa.int64()),
            "currency": pa.array([x.currency for x in lines], pa.string()),
            "reference": pa.array([x.reference for x in lines], pa.string()),
            "counterparty": pa.array([x.counterparty for x in lines], pa.string()),
            "raw": pa.array([x.raw for x in lines], pa.string()),
        },
    )


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, Any]) -> None:
    """Append ``columns`` (name → values or an Arrow array) to ``table``, by column name."""
    first = next(iter(columns.values()))
    if len(first) == 0:
        return
    arrays = {
        name: values if isinstance(values, pa.Array) else pa.array(values, _TYPES[name])
        for name, values in columns.items()
    }
    con.register("statement_import_rows", pa.table(arrays))
    try:
        names = ", ".join(columns)
        con.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM statement_import_rows"
        ).fetchall()
    finally:
        con.unregister("statement_import_rows")


_TYPES = {
    "line_id": pa.string(),
    "file_sha256": pa.string(),
    "path": pa.string(),
    "line_no": pa.int64(),
    "raw": pa.string(),
    "field": pa.string(),
    "reason": pa.string(),
    "detail": pa.string(),
    "kept_file_sha256": pa.string(),
}


def _check(con: duckdb.DuckDBPyConnection, result: FileResult) -> None:
    """Nothing lost: the rows now in the tables for this file are its counts, and the counts
    add up; else :class:`ImportCountError` (the file's transaction is rolled back)."""
    stored, quarantined, conflicts = con.execute(
        "SELECT (SELECT count(*) FROM statement_lines WHERE file_sha256 = $f), "
        "(SELECT count(*) FROM statement_quarantine WHERE file_sha256 = $f), "
        "(SELECT count(*) FROM statement_conflicts WHERE file_sha256 = $f)",
        {"f": result.sha256},
    ).fetchall()[0]
    total = result.stored + result.duplicates + result.quarantined + result.conflicts
    if (stored, quarantined, conflicts) != (
        result.stored,
        result.quarantined,
        result.conflicts,
    ) or total != result.lines_in:
        raise ImportCountError(
            f"{result.path}: {result.lines_in} lines in, but {stored} stored, "
            f"{result.duplicates} duplicates, {quarantined} quarantined, {conflicts} conflicts "
            "written; nothing of it was kept"
        )
