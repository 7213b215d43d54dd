"""How a reader opens a database: the newest read snapshot where a writer publishes them, the
file itself otherwise, with the analysts' own tables beside it (see :mod:`.snapshots`).

Every reader connection is an in-memory DuckDB with the projections attached read only under
the database's name and made current, so queries name tables as before (``events``,
``payment_orders``, ``sample.events``). The analysts' tables (audit runs, findings, triage) are
copied in as temporary tables when it opens: the analyst database is locked only for that
moment, so a notebook left open never stops an audit from recording. ``reader_snapshot``
says what a connection sees.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from ..errors import busy_from
from ..statements import schema as statement_schema
from . import snapshots
from .snapshots import FollowerStatus, Snapshot

T = TypeVar("T")

#: The analysts' tables, copied into each reader connection.
ANALYST_TABLES = ("audit_runs", "audit_findings", "audit_triage", *statement_schema.TABLES)

#: How long a reader or writer waits for a database another process holds for a moment.
WAIT = 10.0


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def alias(db: str | Path) -> str:
    """The catalog name a reader sees the projections under: the file's stem, as when DuckDB
    opens the file itself."""
    return Path(db).stem


def connect(db: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to ``db``'s newest committed state (see the module doc)."""
    path = Path(db)
    con = duckdb.connect()
    try:
        _attach(con, path)
        _copy_analyst(con, path)
    except BaseException:
        con.close()
        raise
    return con


def refresh(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Move ``con`` to the newest snapshot (and the analysts' latest tables); returns what it
    now sees. Temporary tables the reader made stay."""
    info = snapshot_of(con)
    db = Path(info["db"])
    name = alias(db)
    con.execute("USE memory").fetchall()
    con.execute(f"DETACH {_quote(name)}").fetchall()
    _attach(con, db)
    _copy_analyst(con, db)
    return snapshot_of(con)


def snapshot_of(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What a reader connection sees: the database, the snapshot file (or the database itself),
    its generation, the stream position and when it was committed and published."""
    # through Arrow: fetching a TIMESTAMPTZ as Python needs pytz, which need not be installed
    row: dict[str, Any] = con.sql("SELECT * FROM reader_snapshot").to_arrow_table().to_pylist()[0]
    return row


def _attach(con: duckdb.DuckDBPyConnection, db: Path) -> None:
    name = _quote(alias(db))
    deadline = time.monotonic() + WAIT
    while True:
        snap = newest(db)
        if snap is None and not db.exists():
            raise FileNotFoundError(
                f"{db}: no such database (run `workbench replay SOURCE --db {db}` first)"
            )
        target = snap.path if snap else db
        try:
            con.execute(f"ATTACH '{_sql_text(target)}' AS {name} (READ_ONLY)").fetchall()
            break
        except duckdb.IOException as exc:
            if snap is not None and not snap.path.exists():
                continue  # removed between listing and attaching: take the next newest
            busy = busy_from(exc, db)
            if busy is None:
                raise
            # only a follower about to publish its first snapshot is worth waiting for; any
            # other writer holds the file for the whole of its run
            if time.monotonic() >= deadline or not _publisher_starting(db):
                raise busy from exc
            time.sleep(0.1)
    con.execute(f"USE {name}").fetchall()
    con.execute("SET TimeZone = 'UTC'").fetchall()
    _describe(con, db, snap)


def newest(db: Path) -> Snapshot | None:
    """The snapshot a reader opens: the newest published, unless nobody writes ``db`` and it
    changed since (or none was ever published): then a fresh one is copied first, so a reader
    never holds the database file itself and a follower can always start. Only where that
    copy cannot be made (a write-ahead log a dead writer left, no room) does the reader fall
    back to the file."""
    snaps = snapshots.published(db)
    latest = snaps[0] if snaps else None
    if not db.exists() or (latest is not None and latest.source == snapshots.stamp(db)):
        return latest
    try:
        return snapshots.seed(db) or latest
    except (duckdb.Error, OSError):  # a writer holds it: what it published is what readers see
        return latest


def _publisher_starting(db: Path) -> bool:
    return snapshots.snapshot_dir(db).exists() or snapshots.follower_running(
        db, snapshots.read_status(db)
    )


def _describe(con: duckdb.DuckDBPyConnection, db: Path, snap: Snapshot | None) -> None:
    # A view cannot take prepared parameters, so the values are written in as SQL literals.
    con.execute("DROP VIEW IF EXISTS temp.main.reader_snapshot").fetchall()
    if snap is None:
        file, gen, seq, events, committed, published = str(db), None, None, None, None, None
    else:
        pos = snap.position
        file, gen, seq, events = str(snap.path), snap.generation, pos.last_seq, pos.events
        committed = datetime.fromtimestamp(pos.committed_at, UTC).isoformat()
        published = datetime.fromtimestamp(snap.published_at, UTC).isoformat()
    con.execute(
        "CREATE TEMP VIEW reader_snapshot AS SELECT "
        f"{_literal(str(db))}::VARCHAR AS db, {_literal(file)}::VARCHAR AS file, "
        f"{_literal(gen)}::BIGINT AS generation, {_literal(seq)}::BIGINT AS last_seq, "
        f"{_literal(events)}::BIGINT AS events, "
        f"{_literal(committed)}::TIMESTAMPTZ AS committed_at, "
        f"{_literal(published)}::TIMESTAMPTZ AS published_at"
    ).fetchall()


def _literal(value: str | int | None) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(int(value))
    return "'" + value.replace("'", "''") + "'"


def _copy_analyst(con: duckdb.DuckDBPyConnection, db: Path) -> None:
    path = snapshots.analyst_db(db)
    if not path.exists():
        return
    _while_busy(
        path,
        lambda: con.execute(f"ATTACH '{_sql_text(path)}' AS analyst_copy (READ_ONLY)").fetchall(),
    )
    try:
        have = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'analyst_copy'"
            ).fetchall()
        }
        for t in ANALYST_TABLES:
            if t in have:
                con.execute(f"DROP TABLE IF EXISTS temp.main.{t}").fetchall()
                con.execute(
                    f"CREATE TEMP TABLE {t} AS SELECT * FROM analyst_copy.main.{t}"
                ).fetchall()
    finally:
        con.execute("DETACH analyst_copy").fetchall()


def analyst_writer(db: str | Path) -> duckdb.DuckDBPyConnection:
    """The analyst database of ``db``, opened to write (briefly: readers copy from it), waiting
    a moment while another process has it."""
    path = snapshots.analyst_db(db)
    con = _while_busy(path, lambda: duckdb.connect(str(path)))
    con.execute("SET TimeZone = 'UTC'").fetchall()
    return con


def analyst_reader(db: str | Path) -> duckdb.DuckDBPyConnection:
    """The analyst database of ``db``, opened read only (briefly, as :func:`analyst_writer`),
    waiting a moment while another process writes it."""
    path = snapshots.analyst_db(db)
    con = _while_busy(path, lambda: duckdb.connect(str(path), read_only=True))
    con.execute("SET TimeZone = 'UTC'").fetchall()
    return con


def _while_busy(path: Path, open_it: Callable[[], T]) -> T:
    """``open_it()``, tried again for up to :data:`WAIT` seconds while another process holds
    ``path`` for a moment (the analyst database is only ever held briefly); then the holder is
    named (:class:`~workbench.errors.DatabaseBusy`)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return open_it()
        except duckdb.IOException as exc:
            busy = busy_from(exc, path)
            if busy is None or time.monotonic() >= deadline:
                raise busy or exc from exc
            time.sleep(0.05)


def _sql_text(path: Path) -> str:
    return str(path).replace("'", "''")


# ------------------------------------------------------------------------------------- status
@dataclass(frozen=True)
class Status:
    """Who writes a database and what its readers see (``workbench status``)."""

    db: Path
    follower: FollowerStatus | None
    follower_running: bool
    snapshot: Snapshot | None
    now: float

    @property
    def snapshot_age(self) -> float | None:
        """Seconds between the snapshot's last commit and now."""
        return None if self.snapshot is None else self.now - self.snapshot.position.committed_at

    @property
    def reader_behind(self) -> float | None:
        """Seconds by which a reader is behind the follower's last commit."""
        f, s = self.follower, self.snapshot
        if f is None or s is None or f.last_commit_at is None:
            return None
        return max(0.0, f.last_commit_at - s.position.committed_at)

    def as_dict(self) -> dict[str, Any]:
        f, s = self.follower, self.snapshot
        return {
            "db": str(self.db),
            "follower": None
            if f is None
            else {
                "running": self.follower_running,
                "pid": f.pid,
                "host": f.host,
                "url": f.url,
                "stream": f.stream,
                "consumer": f.consumer,
                "started_at": _iso(f.started_at),
                "last_seq": f.last_seq,
                "last_commit_at": _iso(f.last_commit_at),
                "events": f.events,
                "stopped_at": _iso(f.stopped_at),
            },
            "reader_sees": {
                "file": str(s.path) if s else str(self.db),
                "generation": s.generation if s else None,
                "last_seq": s.position.last_seq if s else None,
                "events": s.position.events if s else None,
                "committed_at": _iso(s.position.committed_at) if s else None,
                "published_at": _iso(s.published_at) if s else None,
                "age_seconds": None if self.snapshot_age is None else round(self.snapshot_age, 3),
                "behind_follower_seconds": None
                if self.reader_behind is None
                else round(self.reader_behind, 3),
            },
        }

    def lines(self) -> list[str]:
        f, s = self.follower, self.snapshot
        out = [f"database {self.db}"]
        if f is None:
            out.append("  follower: none has written this database")
        else:
            state = "running" if self.follower_running else "not running"
            if f.stopped_at:
                when = f" (stopped {_iso(f.stopped_at)})"
            elif not self.follower_running:
                when = " (it ended without stopping cleanly: killed or crashed)"
            else:
                when = ""
            out.append(
                f"  follower: PID {f.pid} on {f.host}, {state}{when}; {f.url} stream "
                f"{f.stream}, consumer {f.consumer}"
            )
            seq = "none" if f.last_seq is None else f"{f.last_seq:,}"
            out.append(
                f"  follower position: stream sequence {seq}, last commit "
                f"{_iso(f.last_commit_at) or 'none'}"
            )
        if s is None:
            out.append("  readers see: the database file itself (no snapshot published)")
        else:
            seq = "none" if s.position.last_seq is None else f"{s.position.last_seq:,}"
            behind = self.reader_behind
            out.append(
                f"  readers see: snapshot {s.generation} ({s.path.name}), "
                f"{s.position.events:,} events, stream sequence {seq}, committed "
                f"{_iso(s.position.committed_at)}, {self.snapshot_age:.1f} s ago"
                + ("" if behind is None else f", {behind:.1f} s behind the follower")
            )
        return out


def status(db: str | Path) -> Status:
    """Who writes ``db`` (the follower, from its status file and the file's lock), its stream
    position, and the snapshot a reader opening ``db`` now would see, with its age."""
    path = Path(db)
    if not path.exists() and not snapshots.snapshot_dir(path).exists():
        raise FileNotFoundError(f"{path}: no such database")
    follower = snapshots.read_status(path)
    snaps = snapshots.published(path)
    return Status(
        path,
        follower,
        snapshots.follower_running(path, follower),
        snaps[0] if snaps else None,
        time.time(),
    )


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    with contextlib.suppress(OverflowError, OSError, ValueError):
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
    return None
