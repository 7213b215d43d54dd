"""Analysts read while a follower writes: a real nats-server, a follower in its own process
(``workbench replay URL --db DB --follow``), a steady publisher in another, and readers that
open the database the way notebooks and the CLI do.

What a reader sees is checked against the stream itself: a snapshot that says it holds the
stream up to sequence S must hold exactly what a fresh database holds after taking the first S
messages (same projection hashes), and its own bookkeeping must add up (every message applied,
skipped or quarantined), so half a batch cannot pass."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import workbench
from workbench.replay import catch_up, readers
from workbench.replay import snapshots as snaps
from workbench.replay.nats_local import LocalServer
from workbench.replay.nats_source import publish
from workbench.replay.store import projection_hashes

from .live import (
    ROOT,
    Follower,
    assert_whole,
    hashes_at,
    published_count,
    publisher,
    seen,
)


def test_readers_see_whole_batches_while_a_held_connection_keeps_its_snapshot(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    """(a) a reader polling counts and hashes sees only committed batches, never an error;
    (b) a connection held open across the whole run keeps its snapshot (its file is not
    removed under it), and the follower keeps up all the same."""
    db = tmp_path / "live.duckdb"
    pub = publisher(nats_server.url, small_export, rate=800)  # makes the stream
    follower = Follower(nats_server.url, db, reader_lag=0.5)  # many snapshots in a short run
    follower.wait_for(lambda st: (st.last_seq or 0) > 0)
    time.sleep(1.2)  # the first snapshot with messages in it
    held = workbench.connect(str(db), read_only=True)
    held_state = seen(held)
    held_hashes = projection_hashes(held)
    assert held_state["last_seq"] > 0
    polled: list[dict[str, Any]] = []
    sampled: dict[int, dict[str, str]] = {}
    errors: list[BaseException] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                con = workbench.connect(str(db), read_only=True)
                try:
                    state = seen(con)
                    if state["last_seq"] not in sampled and len(sampled) < 2:
                        sampled[state["last_seq"]] = projection_hashes(con)
                finally:
                    con.close()
                polled.append(state)
                assert seen(held) == held_state  # the held connection does not move
            except BaseException as exc:  # reported by the test below
                errors.append(exc)
                return
            time.sleep(0.2)  # each look opens a connection: leave the cores to the follower

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        total = published_count(pub)
        follower.wait_for(lambda st: st.last_seq == total, timeout=90)
        time.sleep(2.5)  # the last commit gets published
    finally:
        done.set()
        reader.join(timeout=60)
    assert not errors, errors
    # Its snapshot may have been removed meanwhile (this process closed other connections to
    # the same file, which drops its lock): the open file stays readable all the same.
    assert held_state["generation"] is not None
    assert seen(held) == held_state
    assert projection_hashes(held) == held_hashes
    held.close()
    code, _, err = follower.stop()
    assert code == 0, err

    generations = [s["generation"] for s in polled]
    seqs = [s["last_seq"] for s in polled]
    assert len(set(generations)) >= 4, "expected many snapshots in a run of several seconds"
    assert generations == sorted(generations) and seqs == sorted(seqs), "readers went back"
    for state in polled:
        assert_whole(state)
    assert seqs[-1] == total, "the readers never saw the end of the stream"
    # The follower took the whole stream in while a reader held a snapshot for the whole run
    # (wait_for above); how far behind it stays is a timing, measured in
    # benchmarks/live_readers.py, not asserted here where other tests share the cores.
    # what readers saw is exactly a prefix of the stream, taken in by a fresh database
    for seq, hashes in sampled.items():
        assert hashes == hashes_at(nats_server.url, seq, tmp_path), seq
    # A clean stop leaves its last snapshot stamped with the file as it closed it, so the next
    # reader opens that one without copying again; old snapshots went once unused, the newest
    # two apart.
    before = snaps.published(db)
    assert before[0].source == snaps.stamp(db)
    workbench.connect(str(db), read_only=True).close()
    assert snaps.published(db) == before
    assert len(before) <= snaps.KEEP


def test_a_notebook_left_open_does_not_stop_a_follower_from_starting(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    """A database built from the export, a notebook's connection open on it, then the stream
    taken in on top: the follower starts, and the notebook sees it once it refreshes."""
    from workbench.replay import rebuild

    db = tmp_path / "month.duckdb"
    rebuild([small_export], db, progress=False)
    notebook = workbench.connect(str(db), read_only=True)
    try:
        before = seen(notebook)
        assert readers.snapshot_of(notebook)["generation"] == 1  # a snapshot, not the file
        publish([small_export], nats_server.url)
        summary = catch_up(db, nats_server.url)  # would be refused if the notebook held db
        assert summary.messages > 0
        assert seen(notebook) == before  # its snapshot does not move under it
        workbench.refresh(notebook)
        after = seen(notebook)
        assert after["last_seq"] == summary.last_seq and after["events"] == before["events"]
    finally:
        notebook.close()


def test_a_database_changed_since_its_snapshot_is_read_as_it_is_now(tmp_path: Path) -> None:
    """Whatever wrote the file last (a replay, a stopped follower, DuckDB by hand), a reader
    that opens it sees its current state, not an older snapshot."""
    import duckdb

    from workbench.replay import rebuild

    db = tmp_path / "sample.duckdb"
    rebuild([ROOT / "data" / "sample_events"], db, progress=False)
    first = workbench.connect(str(db), read_only=True)
    n = first.execute("SELECT count(*) FROM events").fetchall()[0][0]
    writer = duckdb.connect(str(db))
    writer.execute(
        "DELETE FROM events WHERE event_id = (SELECT min(event_id) FROM events)"
    ).fetchall()
    writer.close()
    second = workbench.connect(str(db), read_only=True)
    try:
        assert second.execute("SELECT count(*) FROM events").fetchall()[0][0] == n - 1
        assert first.execute("SELECT count(*) FROM events").fetchall()[0][0] == n
        assert readers.snapshot_of(second)["generation"] == 2
    finally:
        first.close()
        second.close()
    # unchanged since: the next reader opens the same snapshot, no copy
    third = workbench.connect(str(db), read_only=True)
    try:
        assert readers.snapshot_of(third)["generation"] == 2
    finally:
        third.close()


def test_a_reader_holds_the_analyst_database_only_while_it_opens(tmp_path: Path) -> None:
    """A notebook left open never stops an audit from recording; it sees the new run once it
    refreshes."""
    from workbench.audit import audit
    from workbench.replay import rebuild

    db = tmp_path / "sample.duckdb"
    rebuild([ROOT / "data" / "sample_events"], db, progress=False)
    audit(db)
    notebook = workbench.connect(str(db), read_only=True)
    try:
        before = notebook.execute("SELECT count(*) FROM audit_runs").fetchall()[0][0]
        audit(db)  # records while the notebook's connection is open
        assert notebook.execute("SELECT count(*) FROM audit_runs").fetchall()[0][0] == before
        workbench.refresh(notebook)
        assert notebook.execute("SELECT count(*) FROM audit_runs").fetchall()[0][0] == before + 1
    finally:
        notebook.close()
    assert before == 1
