"""What a stream run does for the analysts who read while it writes: read snapshots published
after commits (:mod:`.snapshots`) and the follower's status file. Kept apart from the consumer
loop (:mod:`.stream`), which calls these at its start, after each batch, when idle and at its
end, always in its database thread."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import duckdb

from . import snapshots
from .snapshots import FollowerStatus, Publisher, Snapshot

#: How often the status file is rewritten while batches commit (seconds).
STATUS_EVERY = 0.5


class LiveReaders:
    """Snapshots and status for one stream run into ``db`` (see the module doc)."""

    def __init__(self, db: str | Path, url: str, *, reader_lag: float = 5.0) -> None:
        self.db = Path(db)
        self.publisher = Publisher(db, reader_lag=reader_lag)
        self.status = FollowerStatus(
            pid=os.getpid(),
            host=socket.gethostname(),
            url=url,
            stream="",
            consumer="",
            started_at=time.time(),
            updated_at=time.time(),
        )
        self.publisher.on_publish = self._published
        self._written = 0.0
        self._lock = threading.Lock()  # the copy thread writes the status file too
        self.committed_at: float | None = None
        self._final = False  # the last state was published at the end

    def start(self, con: duckdb.DuckDBPyConnection, stream: str, consumer: str) -> None:
        """The writer's connection is set for publishing, and the state it starts from is
        published (in the background) unless the newest snapshot holds it already."""
        snapshots.writer_settings(con)
        self.status.stream = stream
        self.status.consumer = consumer
        latest = self.publisher.latest
        if latest is not None:
            self.status.snapshot = latest.meta()
        self._write(force=True)
        if self.publisher.stale(con):
            self.publisher.checkpoint(con, time.time())

    def committed(
        self, con: duckdb.DuckDBPyConnection, at: float, last_seq: int | None, events: int
    ) -> None:
        """After a commit: the status file, and a snapshot when one is due."""
        self.committed_at = at
        self.status.last_commit_at = at
        if last_seq is not None:
            self.status.last_seq = last_seq
        self.status.events = events
        self._write()
        self.idle(con)

    def idle(self, con: duckdb.DuckDBPyConnection) -> None:
        """Between batches: a snapshot of the commits not published yet, when one is due."""
        if self.publisher.due(self.committed_at):
            self.publisher.checkpoint(con, self.committed_at or time.time())

    def stop(
        self,
        con: duckdb.DuckDBPyConnection | None,
        publish: bool,
        finished_at: float | None = None,
    ) -> None:
        """At the end: the last state published (``publish``), the status file marked stopped.
        Always waits for a running copy (the writer's close checkpoints).

        ``finished_at``: when the writer committed the run's record after its last batch (its
        hashes). That commit moves no event, quarantine row, run id nor stream position, so a
        snapshot taken after the last batch would look current while it lacks the record:
        published again whatever its position says."""
        try:
            if publish and con is not None and finished_at is not None:
                self.publisher.wait()
                self.publisher.checkpoint(con, finished_at)
                self.publisher.wait()
            elif publish and con is not None:
                self.publisher.publish_now(con, self.committed_at or time.time())
            else:
                self.publisher.wait()
            self._final = publish and con is not None
        finally:
            self.status.stopped_at = time.time()
            self._write(force=True)

    def closed(self) -> None:
        """After the writer closed the database: its last snapshot, published after the last
        commit, holds what the file now holds, so it is stamped with the file's size and time
        (:func:`.snapshots.restamp`) and the next reader opens it instead of copying again."""
        if self._final and self.publisher.latest is not None:
            snapshots.restamp(self.db, self.publisher.latest)
        snapshots.remove_unused(self.db)

    @property
    def over_budget(self) -> bool:
        return self.publisher.over_budget

    def _published(self, snap: Snapshot) -> None:
        self.status.snapshot = snap.meta()
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if force or now - self._written >= STATUS_EVERY:
                self._written = now
                snapshots.write_status(self.db, self.status)
