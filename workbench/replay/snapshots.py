"""Read snapshots: how analysts read a database while a follower writes it.

DuckDB lets one process write a database file and nobody else open it meanwhile, so a reader
never opens a file a follower writes. The writer publishes **read snapshots** instead: after a
commit it checkpoints (the main file then holds exactly the committed state and the write-ahead
log is empty), copies the main file aside while it goes on taking batches in, checks the copy,
and renames it into ``<db>.snapshots/`` in one step. A reader attaches the newest snapshot read
only: one committed batch, never half of one, and its file is never written again.

Why a copy taken while batches commit is exact: after a checkpoint, commits only append to the
write-ahead log and write blocks the checkpoint left free; only the next checkpoint rewrites the
file's header or reuses the blocks the copied state refers to, and the writer takes none while a
copy runs (it turns DuckDB's automatic checkpoints off, see :func:`writer_settings`). The copy is
opened and its position and counts compared with the writer's before it is published.

Old snapshots are removed once unused: a reader holds DuckDB's shared lock on the file it
attached, so the writer deletes a superseded snapshot only when it can take the file's lock
itself (and always keeps the newest two). The lock is for disk accounting, not for safety: a
process that closes one of two connections to a file loses its lock on it (POSIX locks belong
to the process), and a snapshot removed then stays readable through the descriptor the other
connection holds, since DuckDB never reopens an attached file; its space is freed when that
connection closes. The follower also writes a small status file
(``<db>.follower.json``) so ``workbench status`` can say who writes the database and how far
it is, without opening the file the follower holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

#: Snapshots kept besides any a reader still uses.
KEEP = 2


def snapshot_dir(db: str | Path) -> Path:
    p = Path(db)
    return p.with_name(p.name + ".snapshots")


def status_file(db: str | Path) -> Path:
    p = Path(db)
    return p.with_name(p.name + ".follower.json")


def analyst_db(db: str | Path) -> Path:
    """Where analysts' writes (audit runs, triage) live: beside the projections, never in them,
    so a new snapshot, a replay or a follower never loses them, and writing them never waits
    for the follower."""
    p = Path(db)
    return p.with_name(p.stem + ".analyst.duckdb")


@dataclass(frozen=True)
class Position:
    """What a snapshot holds: enough to check a copy and to say how far it is."""

    events: int
    quarantined: int
    runs: int
    #: ``(source, epoch, partition, last_seq)`` of each stream the database follows.
    streams: tuple[tuple[str, str, str, int], ...]
    committed_at: float  # the last commit it holds (UNIX time)

    @property
    def last_seq(self) -> int | None:
        return max((s[3] for s in self.streams), default=None)


def position(con: duckdb.DuckDBPyConnection, committed_at: float) -> Position:
    """The committed state of the database ``con`` is on (the same query judges a copy)."""
    events, quarantined, runs = con.execute(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM quarantine), "
        "(SELECT coalesce(max(run_id), 0) FROM replay_runs)"
    ).fetchall()[0]
    streams = con.execute(
        "SELECT source, epoch, partition_id, last_seq FROM stream_positions ORDER BY ALL"
    ).fetchall()
    return Position(
        int(events),
        int(quarantined),
        int(runs),
        tuple((str(a), str(b), str(c), int(d)) for a, b, c, d in streams),
        committed_at,
    )


@dataclass(frozen=True)
class Snapshot:
    """A published snapshot: its file and what it holds."""

    path: Path
    generation: int
    published_at: float
    position: Position
    #: ``(size, mtime_ns)`` of the database when a reader copied it (:func:`seed`); ``None``
    #: when a writer published it (its file changes on with every commit).
    source: tuple[int, int] | None = None

    def meta(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "published_at": self.published_at,
            "source": None if self.source is None else list(self.source),
            "position": asdict(self.position),
        }


def _generation(name: str) -> int | None:
    stem, _, ext = name.partition(".")
    return int(stem) if ext == "duckdb" and stem.isdigit() else None


def published(db: str | Path) -> list[Snapshot]:
    """The published snapshots of ``db``, newest first (none if no writer ever published)."""
    d = snapshot_dir(db)
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(d):
            gen = _generation(entry.name)
            if gen is None:
                continue
            try:
                meta = json.loads((d / f"{gen:010d}.json").read_text())
                pos = meta["position"]
                pos["streams"] = tuple(tuple(s) for s in pos["streams"])
                src = meta.get("source")
                found.append(
                    Snapshot(
                        Path(entry.path),
                        gen,
                        float(meta["published_at"]),
                        Position(**pos),
                        None if src is None else (int(src[0]), int(src[1])),
                    )
                )
            except (FileNotFoundError, ValueError, KeyError, TypeError):
                continue  # removed meanwhile, or not finished: not a published snapshot
    return sorted(found, key=lambda s: s.generation, reverse=True)


def stamp(db: str | Path) -> tuple[int, int] | None:
    """``(size, mtime_ns)`` of the database file: what tells a reader its snapshot is stale."""
    try:
        st = os.stat(db)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def seed(db: str | Path) -> Snapshot | None:
    """Publish a snapshot of a database nobody writes (a reader's first look at a database a
    Parquet replay built, or one changed since its newest snapshot), so that readers never hold
    the file itself and a follower can start while notebooks stay open.

    Holds DuckDB's shared lock on ``db`` while it copies (no writer can start meanwhile) and
    checks the copy like a writer's. Returns ``None`` where it cannot: a write-ahead log left
    beside the file (a writer that died: only a writer may replay it) or no room to write the
    snapshot. Raises DuckDB's lock error when a writer holds ``db``."""
    path = Path(db)
    d = snapshot_dir(path)
    if path.with_name(path.name + ".wal").exists():
        return None
    src = duckdb.connect(str(path), read_only=True)  # the lock error goes to the caller
    tmp = d / f".tmp-seed-{os.getpid()}-{threading.get_ident()}.duckdb"
    try:
        try:
            d.mkdir(exist_ok=True)
            source = stamp(path)
            assert source is not None
            pos = position(src, source[1] / 1e9)
            copy_file(path, tmp)
        finally:
            src.close()
        check = duckdb.connect(str(tmp), read_only=True)
        try:
            if position(check, pos.committed_at) != pos:
                return None
        finally:
            check.close()
        return _link_next(path, tmp, pos, source)
    except (OSError, duckdb.Error):  # no room, or a writer removed the half copy meanwhile
        return None
    finally:
        tmp.unlink(missing_ok=True)


def _link_next(db: Path, tmp: Path, pos: Position, source: tuple[int, int]) -> Snapshot | None:
    """Publish ``tmp`` under the next free generation (a hard link never replaces a file, so two
    readers seeding at once both publish, one after the other)."""
    d = snapshot_dir(db)
    for _ in range(5):
        gen = 1 + max((_generation(p.name) or 0 for p in d.glob("*.duckdb")), default=0)
        snap = Snapshot(d / f"{gen:010d}.duckdb", gen, time.time(), pos, source)
        try:
            os.link(tmp, snap.path)
        except FileExistsError:
            continue
        _write_json(d / f"{gen:010d}.json", snap.meta())  # visible from here on
        remove_unused(db)
        return snap
    return None


def restamp(db: str | Path, snap: Snapshot) -> None:
    """Record in ``snap``'s sidecar the stamp of ``db`` as it is now, for a writer that has
    published its last commit and closed the file. Takes DuckDB's shared lock while it reads
    the stamp, so no writer can have changed the file meanwhile; leaves it alone if one holds
    the file or the file no longer holds ``snap``'s position."""
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return
    try:
        now = stamp(db)
        same = position(con, snap.position.committed_at) == snap.position
    finally:
        con.close()
    if now is not None and same and snap.path.exists():
        stamped = Snapshot(snap.path, snap.generation, snap.published_at, snap.position, now)
        _write_json(snap.path.with_suffix(".json"), stamped.meta())


def remove_unused(db: str | Path) -> None:
    """Remove superseded snapshots no process holds (the newest :data:`KEEP` always stay)."""
    for old in published(db)[KEEP:]:
        if not in_use(old.path):
            old.path.unlink(missing_ok=True)
            old.path.with_suffix(".json").unlink(missing_ok=True)


def writer_settings(con: duckdb.DuckDBPyConnection) -> None:
    """A publishing writer takes its checkpoints itself (never while a copy runs)."""
    con.execute("SET checkpoint_threshold = '1TB'").fetchall()


def in_use(path: Path) -> bool:
    """Whether another process holds DuckDB's lock on ``path`` (a reader attached to it).
    Only ever called on files this process has no DuckDB connection to: closing a descriptor
    drops every POSIX lock the process holds on the file."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def copy_file(src: Path, dst: Path) -> None:
    """Copy ``src`` in another process. Closing any descriptor of a file drops every POSIX lock
    the process holds on it, DuckDB's write lock included: a copy made in the writer's own
    process would leave its database unlocked, open to a second writer."""
    cp = shutil.which("cp")
    if cp is not None:
        cmd = [cp, "--", str(src), str(dst)]
    else:  # pragma: no cover - every Linux and macOS has cp
        cmd = [sys.executable, "-c", "import shutil,sys; shutil.copyfile(*sys.argv[1:])"]
        cmd += [str(src), str(dst)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"copying {src} to {dst} failed: {done.stderr.strip()}")


class Publisher:
    """Publishes snapshots of the database this process writes (see the module doc).

    The writer calls :meth:`checkpoint` in its database thread (between batches); the copy,
    its check and the rename run in a thread of their own while batches go on. Only one copy
    runs at a time and :meth:`wait` must return before the writer checkpoints or closes."""

    def __init__(self, db: str | Path, *, reader_lag: float = 5.0) -> None:
        self.db = Path(db)
        self.dir = snapshot_dir(db)
        self.reader_lag = reader_lag
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".tmp-*"):  # a copy a killed writer or reader left half-done
            stale.unlink(missing_ok=True)
        known = published(db)
        self.latest: Snapshot | None = known[0] if known else None
        self._next = max((_generation(p.name) or 0 for p in self.dir.glob("*.duckdb")), default=0)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._started = float("-inf")
        #: How long the last publication took, checkpoint to rename (seconds).
        self.last_cost: float | None = None
        self.on_publish: Callable[[Snapshot], None] | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def due(self, committed_at: float | None) -> bool:
        """A new snapshot is wanted: commits not yet published, the last copy done, and the
        gap since the last one began used up.

        A commit waits at most one gap for the next snapshot to begin, then one publication
        (checkpoint, copy, check, rename) to be seen: the gap is half of what ``reader_lag``
        leaves after the last publication's cost, so readers stay within ``reader_lag`` of the
        last commit with room to spare, and a small database is not copied more than needed.
        Where one publication alone costs more than ``reader_lag`` (a database of many GB),
        snapshots follow each other and :attr:`over_budget` says so."""
        if committed_at is None or self.busy:
            return False
        if self.latest is not None and committed_at <= self.latest.position.committed_at:
            return False
        gap = max(0.0, (self.reader_lag - (self.last_cost or 0.0)) / 2)
        return time.monotonic() - self._started >= gap

    @property
    def over_budget(self) -> bool:
        return self.last_cost is not None and self.last_cost > self.reader_lag / 2

    def checkpoint(self, con: duckdb.DuckDBPyConnection, committed_at: float) -> None:
        """In the writer's database thread: checkpoint and start copying (waits for a copy
        still running first)."""
        self.wait()
        self._started = time.monotonic()
        began = time.perf_counter()
        con.execute("CHECKPOINT").fetchall()
        pos = position(con, committed_at)
        self._next += 1
        gen = self._next
        self._thread = threading.Thread(
            target=self._copy, args=(gen, pos, began), name=f"snapshot-{gen}", daemon=True
        )
        self._thread.start()

    def publish_now(self, con: duckdb.DuckDBPyConnection, committed_at: float) -> Snapshot | None:
        """Checkpoint, copy and publish before returning (a replay's end, a follower's stop)
        unless the newest snapshot already holds this state."""
        self.wait()
        if not self.stale(con):
            return self.latest
        self.checkpoint(con, committed_at)
        self.wait()
        return self.latest

    def stale(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Whether the database holds commits the newest snapshot does not (a writer starting
        on a database published before needs no new copy until it commits)."""
        if self.latest is None:
            return True
        now = position(con, self.latest.position.committed_at)
        return now != self.latest.position

    def wait(self) -> None:
        """Wait for a running copy; raises what went wrong in it."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def _copy(self, gen: int, pos: Position, began: float) -> None:
        tmp = self.dir / f".tmp-{gen:010d}.duckdb"
        try:
            copy_file(self.db, tmp)
            check = duckdb.connect(str(tmp), read_only=True)
            try:
                got = position(check, pos.committed_at)
            finally:
                check.close()
            if got != pos:
                raise RuntimeError(
                    f"snapshot {gen} of {self.db} does not hold the checkpointed state "
                    f"({got} != {pos}); nothing published"
                )
            snap = Snapshot(self.dir / f"{gen:010d}.duckdb", gen, time.time(), pos)
            meta = self.dir / f"{gen:010d}.json"
            _write_json(meta, snap.meta())
            os.replace(tmp, snap.path)  # the moment readers can see it
            self.latest = snap
            self.last_cost = time.perf_counter() - began
            remove_unused(self.db)
            if self.on_publish is not None:
                self.on_publish(snap)
        except BaseException as exc:  # handed to the writer by wait()
            tmp.unlink(missing_ok=True)
            self._error = exc


# ----------------------------------------------------------------------------- the status file
@dataclass
class FollowerStatus:
    """What ``<db>.follower.json`` says: the follower that writes the database and how far."""

    pid: int
    host: str
    url: str
    stream: str
    consumer: str
    started_at: float
    updated_at: float
    last_seq: int | None = None
    last_commit_at: float | None = None
    events: int | None = None
    stopped_at: float | None = None
    snapshot: dict[str, Any] | None = field(default=None)


def write_status(db: str | Path, status: FollowerStatus) -> None:
    status.updated_at = time.time()
    _write_json(status_file(db), asdict(status))


def read_status(db: str | Path) -> FollowerStatus | None:
    try:
        data = json.loads(status_file(db).read_text())
        return FollowerStatus(**data)
    except (FileNotFoundError, ValueError, TypeError):
        return None


def write_holder(db: str | Path) -> int | None:
    """The PID of the process holding DuckDB's write lock on ``db``, from ``/proc/locks``
    (Linux; ``None`` elsewhere or when nobody writes). Reads no descriptor of ``db``, so it
    never drops a lock this process holds."""
    try:
        st = os.stat(db)
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    inode = st.st_ino
    for line in text.splitlines():
        parts = line.split()
        # "1: POSIX  ADVISORY  WRITE 24956 fd:00:1234567 0 EOF"
        if len(parts) >= 6 and parts[1] == "POSIX" and parts[3] == "WRITE":
            dev_ino = parts[5].split(":")
            if len(dev_ino) == 3 and dev_ino[2] == str(inode):
                with contextlib.suppress(ValueError):
                    return int(parts[4])
    return None


def follower_running(db: str | Path, status: FollowerStatus | None) -> bool:
    """The status file's follower still writes ``db``: it holds the write lock (or, where locks
    cannot be read, its process is alive on this host)."""
    if status is None or status.stopped_at is not None:
        return False
    if Path("/proc/locks").exists():
        return write_holder(db) == status.pid
    if status.host != socket.gethostname():
        return False
    try:
        os.kill(status.pid, 0)
    except OSError:
        return False
    return True


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)
