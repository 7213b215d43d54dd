"""Failures as the command line reports them: one line naming the real cause, and an exit code.

Exit codes (each means one thing):

* 0 (:data:`OK`): done;
* 1 (:data:`FINDINGS`): findings, or a failed nothing-lost check (also an unexpected internal
  error, reported with a hint to rerun with ``WORKBENCH_DEBUG=1`` for the traceback);
* 2 (:data:`BAD_INPUT`): bad input or usage (a missing or corrupt source, a bad option, a file
  that is not a DuckDB database);
* 3 (:data:`BUSY`): the database is locked by another process (named when DuckDB says which);
* 4 (:data:`NO_SPACE`): out of disk space (the path DuckDB or the OS could not write).

:func:`classify` walks an exception's ``__cause__`` / ``__context__`` chain, so a secondary error
raised while cleaning up (DuckDB's "cannot rollback - no transaction is active" after a COMMIT
that hit a full disk) never hides the first one.
"""

from __future__ import annotations

import errno
import re
import sys
from dataclasses import dataclass
from pathlib import Path

OK = 0
FINDINGS = 1
BAD_INPUT = 2
BUSY = 3
NO_SPACE = 4
#: An unexpected internal error: reported in one line with :data:`DEBUG_HINT`.
INTERNAL = 1
INTERRUPTED = 130  # the shell's convention for SIGINT (Ctrl-C)

DEBUG_ENV = "WORKBENCH_DEBUG"
DEBUG_HINT = f"run with {DEBUG_ENV}=1 for the traceback"


class DatabaseBusy(RuntimeError):
    """A DuckDB database file locked by another process (DuckDB allows one writer, or readers
    without a writer). ``holder`` is how DuckDB names the holder, e.g. ``"PID 4432
    (/usr/bin/python3.11)"``; ``pid`` its process id; both ``None`` when DuckDB does not say."""

    def __init__(self, path: str | Path, holder: str | None, pid: int | None = None) -> None:
        self.path = Path(path)
        self.holder = holder
        self.pid = pid
        by = f"another process ({holder})" if holder else "another process"
        super().__init__(
            f"{self.path} is locked by {by}; wait for it to finish or stop it, then run again"
        )


@dataclass(frozen=True)
class Failure:
    """How a failure is reported: the exit code and one line (without the command's prefix)."""

    code: int
    message: str
    kind: str  # no_space, busy, corrupt, input, findings, internal
    path: str | None = None  # the file concerned, when known

    @property
    def internal(self) -> bool:
        return self.kind == "internal"


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) made one space."""
    return re.sub(r" ([)\]])", r"\1", " ".join(str(text).split()))


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what led to it: each ``__cause__``, else ``__context__`` (suppressed or
    not), outermost first."""
    out: list[BaseException] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen and len(out) < 64:
        out.append(cur)
        seen.add(id(cur))
        cur = cur.__cause__ if cur.__cause__ is not None else cur.__context__
    return out


def _loaded_class(module: str, name: str) -> type | None:
    """A class of a module if that module is imported (if not, no exception can be of it)."""
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls if isinstance(cls, type) else None


def _is(exc: BaseException, module: str, name: str) -> bool:
    cls = _loaded_class(module, name)
    return cls is not None and isinstance(exc, cls)


def _is_duckdb(exc: BaseException) -> bool:
    return _is(exc, "duckdb", "Error")


def _is_arrow(exc: BaseException) -> bool:
    return _is(exc, "pyarrow.lib", "ArrowException")


# --- out of space -------------------------------------------------------------------------------

_NO_SPACE_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NO_SPACE_TEXT = re.compile(r"no space left on device|disk quota exceeded|\bENOSPC\b", re.I)
# DuckDB caps its temporary files at the free space of their disk, and says so when it cannot
# spill: that is the disk being full too.
_TEMP_FULL_TEXT = re.compile(r"max_temp_directory_size", re.I)
_WRITE_PATH = re.compile(
    r"(?:could not (?:write|open|create|truncate|sync|fsync|extend|allocate)[a-z ]*?"
    r"(?:file|directory)?\s*)[\"']([^\"']+)[\"']",
    re.I,
)
_QUOTED = re.compile(r"[\"']([^\"']*/[^\"']*)[\"']")


def _no_space(exc: BaseException, db: Path | None) -> Failure | None:
    text = str(exc)
    where: str | None = None
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE_ERRNOS:
        where = exc.filename if isinstance(exc.filename, str) else None
        detail = exc.strerror or "No space left on device"
    elif _NO_SPACE_TEXT.search(text):
        detail = "No space left on device"
    elif _is_duckdb(exc) and _TEMP_FULL_TEXT.search(text):
        detail = "no room for DuckDB's temporary files"
        if db is not None:
            where = f"{db}.tmp"
    else:
        return None
    if where is None:
        m = _WRITE_PATH.search(text) or _QUOTED.search(text)
        if m:
            where = m.group(1)
    if where is None and db is not None:
        where = f"{db} (or its temporary directory {db}.tmp)"
    place = f" writing {where}" if where else ""
    return Failure(
        NO_SPACE,
        f"disk full: {detail}{place}; free space on that disk (or write elsewhere) and run again",
        "no_space",
        where,
    )


# --- database locked ----------------------------------------------------------------------------

_LOCK = re.compile(r"could not set lock on file [\"']([^\"']+)[\"']", re.I)
_HOLDER = re.compile(
    r"conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)(?: by user (?P<user>[^.\s]+))?",
    re.I,
)


def busy_from(exc: BaseException, path: str | Path | None = None) -> DatabaseBusy | None:
    """A :class:`DatabaseBusy` if ``exc`` is DuckDB refusing a database another process holds."""
    if isinstance(exc, DatabaseBusy):
        return exc
    text = str(exc)
    m = _LOCK.search(text)
    if m is None:
        return None
    holder = None
    pid = None
    h = _HOLDER.search(text)
    if h:
        pid = int(h.group("pid"))
        holder = f"PID {pid}: {h.group('program')}"
        if h.group("user"):
            holder += f", user {h.group('user')}"
    return DatabaseBusy(path if path is not None else m.group(1), holder, pid)


def _busy(exc: BaseException) -> Failure | None:
    busy = busy_from(exc)
    if busy is None:
        return None
    return Failure(BUSY, f"database busy: {busy}", "busy", str(busy.path))


# --- bad input ----------------------------------------------------------------------------------

_NOT_A_DATABASE = re.compile(
    r"not a valid DuckDB database file|corrupt database file|"
    r"trying to read a database file with version|database file .* (?:version|corrupt)",
    re.I,
)
_CORRUPT_PARQUET = re.compile(
    r"snappy|zstd|lz4|brotli|gzip|decompress|inflate|thrift|TProtocolException|magic bytes|"
    r"not a parquet file|parquet file size|invalid parquet|parquet.{0,40}(?:corrupt|invalid)|"
    r"corrupt(?:ed)? (?:data|page|column|file|compressed)|invalid (?:data )?page|"
    r"invalid string encoding|failed to read file|could not read schema",
    re.I,
)
_PARQUET_PATH = re.compile(r"[\"']([^\"']+\.parquet)[\"']", re.I)
_FILE_PATH = re.compile(r"file [\"']([^\"']+)[\"']", re.I)
_DUCKDB_PREFIX = re.compile(r"^[A-Za-z ]+ Error: ")
_FAILED_TO_READ = re.compile(r"^failed to read file [\"'][^\"']+[\"']:\s*", re.I)
_INPUT_OS_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def corrupt_parquet(exc: BaseException) -> Failure | None:
    """A failure naming the file (when the error does) if ``exc`` is a Parquet reader's complaint
    about a file's bytes: a bad compressed page, a bad page header or footer, no magic bytes."""
    if not (_is_duckdb(exc) or _is_arrow(exc) or isinstance(exc, OSError)):
        return None
    text = one_line(str(exc))
    if _NOT_A_DATABASE.search(text) or not _CORRUPT_PARQUET.search(text):
        return None
    m = _PARQUET_PATH.search(text) or _FILE_PATH.search(text)
    path = m.group(1) if m else None
    detail = _FAILED_TO_READ.sub("", _DUCKDB_PREFIX.sub("", text)) or text
    what = f"{path}: " if path else "a source file: "
    return Failure(
        BAD_INPUT, f"{what}corrupt or unreadable Parquet file ({detail})", "corrupt", path
    )


def _input(exc: BaseException) -> Failure | None:
    if _is(exc, "workbench.sources", "SourceError"):
        return Failure(BAD_INPUT, one_line(str(exc)), "input")
    if _is_duckdb(exc) and _NOT_A_DATABASE.search(str(exc)):
        m = _FILE_PATH.search(str(exc))
        path = m.group(1) if m else None
        return Failure(
            BAD_INPUT,
            f"{path + ': ' if path else ''}not a usable DuckDB database "
            f"({one_line(_DUCKDB_PREFIX.sub('', str(exc)))})",
            "input",
            path,
        )
    found = corrupt_parquet(exc)
    if found is not None:
        return found
    if isinstance(exc, _INPUT_OS_ERRORS):
        return Failure(BAD_INPUT, one_line(str(exc)), "input", exc.filename or None)
    if isinstance(exc, (KeyError, IndexError)):  # a bug, not an answer to the input
        return None
    if isinstance(exc, (ValueError, LookupError)):
        return Failure(BAD_INPUT, one_line(str(exc)), "input")
    return None


# --- the rest -----------------------------------------------------------------------------------

# DuckDB's complaints while cleaning up after an earlier error: never the real cause.
_SECONDARY = re.compile(
    r"cannot rollback|no transaction is active|current transaction is aborted|"
    r"database has been invalidated|connection already closed",
    re.I,
)


def _secondary(exc: BaseException) -> bool:
    return _is_duckdb(exc) and bool(_SECONDARY.search(str(exc))) and exc.__context__ is not None


def _internal(exc: BaseException) -> Failure:
    text = one_line(str(exc))
    if len(text) > 500:
        text = text[:500] + " …"
    name = type(exc).__name__
    return Failure(INTERNAL, f"{name}: {text}" if text else name, "internal")


def classify(exc: BaseException, *, db: str | Path | None = None) -> Failure:
    """The exit code and one line for ``exc``.

    A full disk, then a database locked by another process, is looked for along the whole
    chain (however it was wrapped, it is the reason); otherwise the outermost exception that is
    not a secondary cleanup error decides: bad input (2), a failed nothing-lost check (1), or an
    unexpected internal error (1, :attr:`Failure.internal`). ``db`` is the database the command
    works on, named when the error does not say which file is concerned.
    """
    db_path = Path(db) if db is not None else None
    causes = chain(exc)
    for e in causes:
        found = _no_space(e, db_path)
        if found is not None:
            return found
    for e in causes:
        found = _busy(e)
        if found is not None:
            return found
    first = next((e for e in causes if not _secondary(e)), causes[-1])
    if _is(first, "workbench.replay.engine", "ReplayError"):
        return Failure(FINDINGS, one_line(str(first)), "findings")
    return _input(first) or _internal(first)


def locate_corrupt(files: list[Path]) -> tuple[Path, str] | None:
    """The first of ``files`` whose every value cannot be read, and the reader's complaint: for
    an error that does not name its file (DuckDB's "TProtocolException: Invalid data"). Reads
    each file whole, with DuckDB and then pyarrow; only called after a failure."""
    import duckdb
    import pyarrow.parquet as pq

    con = duckdb.connect()
    try:
        con.execute("SET threads = 1").fetchall()
        for path in files:
            try:
                con.execute(
                    "SELECT count(*), sum(hash(t)) FROM read_parquet(?) t", [str(path)]
                ).fetchall()
                for _ in pq.ParquetFile(path).iter_batches(batch_size=65_536):
                    pass
            except Exception as exc:  # whatever the reader says is the detail
                return path, one_line(_DUCKDB_PREFIX.sub("", str(exc)))
    finally:
        con.close()
    return None
