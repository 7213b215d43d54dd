"""Analysts read while a follower writes: a real nats-server, a follower in its own process
(``workbench replay URL --db DB --follow``), a steady publisher in another, and readers that
open the database the way notebooks and the CLI do.

What a reader sees is checked against the stream itself: a snapshot that says it holds the
stream up to sequence S must hold exactly what a fresh database holds after taking the first S
messages (same projection hashes), and its own bookkeeping must add up (every message applied,
skipped or quarantined), so half a batch cannot pass."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import workbench
from workbench.replay import catch_up, readers
from workbench.replay import snapshots as snaps
from workbench.replay.nats_local import LocalServer
from workbench.replay.nats_source import publish
from workbench.replay.store import projection_hashes

WORKBENCH = Path(sys.executable).parent / "workbench"
ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers
_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_process_left() -> Any:
    """A test that fails half-way leaves no follower or publisher running."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


class Follower:
    """The follower CLI in a child process, with a short reader lag so a test sees many
    snapshots."""

    def __init__(self, url: str, db: Path, *, batch: int = 60, reader_lag: float = 1.0) -> None:
        self.db = db
        self.proc = subprocess.Popen(
            [
                *(str(WORKBENCH), "replay", url, "--db", str(db), "--follow"),
                *("--batch", str(batch), "--status-every", "0", "--reader-lag", str(reader_lag)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _STARTED.append(self.proc)

    def wait_for(self, test: Callable[[snaps.FollowerStatus], bool], timeout: float = 60) -> None:
        """Until the follower's status file passes ``test``."""
        deadline = time.monotonic() + timeout
        while True:
            st = snaps.read_status(self.db)
            if st is not None and st.pid == self.proc.pid and test(st):
                return
            if self.proc.poll() is not None:
                _, err = self.proc.communicate()
                raise AssertionError(f"follower exited {self.proc.returncode}: {err[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"follower made no such progress: {st}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


def publisher(url: str, export: Path, rate: int) -> subprocess.Popen[str]:
    """``workbench publish --rate``: a steady publisher in its own process."""
    proc = subprocess.Popen(
        [str(WORKBENCH), "publish", str(export), "--to", url, "--rate", str(rate)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _STARTED.append(proc)
    return proc


def published_count(pub: subprocess.Popen[str]) -> int:
    out, err = pub.communicate(timeout=180)
    assert pub.returncode == 0, err
    m = re.search(r"stored ([\d,]+)", out + err)
    assert m, out + err
    return int(m.group(1).replace(",", ""))


def seen(con: Any) -> dict[str, Any]:
    """What a reader connection holds, read in one go: its snapshot and its bookkeeping."""
    row = readers.snapshot_of(con)
    pos = con.execute(
        "SELECT coalesce(max(last_seq), 0), coalesce(sum(messages), 0), "
        "coalesce(sum(applied), 0), coalesce(sum(duplicates), 0), "
        "coalesce(sum(quarantined), 0) FROM stream_positions"
    ).fetchall()[0]
    events, quarantined = con.execute(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM quarantine)"
    ).fetchall()[0]
    return {
        "generation": row["generation"],
        "snapshot_seq": row["last_seq"],
        "snapshot_events": row["events"],
        "last_seq": int(pos[0]),
        "messages": int(pos[1]),
        "applied": int(pos[2]),
        "duplicates": int(pos[3]),
        "quarantined": int(pos[4]),
        "events": int(events),
        "quarantine_rows": int(quarantined),
    }


def assert_whole(state: dict[str, Any]) -> None:
    """A committed batch's bookkeeping: every message of the stream up to ``last_seq`` taken
    in once, and the tables hold what the position says (half a batch breaks one of these)."""
    assert state["messages"] == state["last_seq"], state
    assert state["messages"] == state["applied"] + state["duplicates"] + state["quarantined"]
    assert state["events"] == state["applied"] == (state["snapshot_events"] or 0), state
    assert state["quarantine_rows"] == state["quarantined"], state
    assert (state["snapshot_seq"] or 0) == state["last_seq"], state


def hashes_at(url: str, seq: int, tmp: Path) -> dict[str, str]:
    """The projections of a fresh database that took the stream's first ``seq`` messages."""
    summary = catch_up(tmp / f"ref-{seq}.duckdb", url, max_messages=seq)
    assert summary.last_seq == seq, summary
    return summary.hashes


# --------------------------------------------------------------------------- the tests
def test_readers_see_whole_batches_while_a_held_connection_keeps_its_snapshot(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    """(a) a reader polling counts and hashes sees only committed batches, never an error;
    (b) a connection held open across the whole run keeps its snapshot (its file is not
    removed under it), and the follower keeps up all the same."""
    db = tmp_path / "live.duckdb"
    pub = publisher(nats_server.url, small_export, rate=800)  # makes the stream
    follower = Follower(nats_server.url, db)
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
                    if state["last_seq"] not in sampled and len(sampled) < 4:
                        sampled[state["last_seq"]] = projection_hashes(con)
                finally:
                    con.close()
                polled.append(state)
                assert seen(held) == held_state  # the held connection does not move
            except BaseException as exc:  # reported by the test below
                errors.append(exc)
                return
            time.sleep(0.05)

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
    for seq, hashes in list(sampled.items())[:3]:
        assert hashes == hashes_at(nats_server.url, seq, tmp_path), seq
    # A clean stop leaves its last snapshot stamped with the file as it closed it, so the next
    # reader opens that one without copying again; old snapshots went once unused, the newest
    # two apart.
    before = snaps.published(db)
    assert before[0].source == snaps.stamp(db)
    workbench.connect(str(db), read_only=True).close()
    assert snaps.published(db) == before
    assert len(before) <= snaps.KEEP


def test_audit_and_a_notebook_run_on_the_live_database(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    """(c) `workbench audit` (recording its run) and a notebook run end to end while the
    follower writes; the recorded runs outlive the snapshots; `status` says who writes."""
    db = tmp_path / "live.duckdb"
    pub = publisher(nats_server.url, small_export, rate=600)
    follower = Follower(nats_server.url, db)
    follower.wait_for(lambda st: (st.last_seq or 0) > 500)
    time.sleep(1.2)
    try:
        first = subprocess.run(
            [str(WORKBENCH), "audit", "--db", str(db), "--format", "json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert first.returncode in (0, 1), first.stderr
        assert "Traceback" not in first.stderr and "audit run 1" in first.stderr, first.stderr
        status = subprocess.run(
            [str(WORKBENCH), "status", "--db", str(db), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr
        said = json.loads(status.stdout)
        assert said["follower"]["running"] and said["follower"]["pid"] == follower.proc.pid
        assert said["follower"]["url"] == nats_server.url
        assert said["reader_sees"]["generation"] >= 1
        assert said["reader_sees"]["age_seconds"] < 30

        report = subprocess.run(
            [
                *(str(WORKBENCH), "report", str(ROOT / "notebooks/payout_reconciliation.ipynb")),
                *("-p", f"db={db}", "-p", f"findings_out={tmp_path / 'findings.csv'}"),
                *("--out", str(tmp_path / "report.html"), "--timeout", "300"),
            ],
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert report.returncode == 0, report.stderr[-3000:]
        assert (tmp_path / "findings.csv").exists()

        total = published_count(pub)
        follower.wait_for(lambda st: st.last_seq == total, timeout=60)
        time.sleep(2.5)  # a newer snapshot than the first audit's
        second = subprocess.run(
            [str(WORKBENCH), "audit", "--db", str(db), "--format", "json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1, second.stderr  # the export has every anomaly planted
        assert "audit run 2" in second.stderr, second.stderr
    finally:
        if pub.poll() is None:
            pub.kill()
        code, _, err = follower.stop()
    assert code == 0, err
    con = workbench.connect(str(db), read_only=True)
    try:
        runs = con.execute("SELECT audit_run_id FROM audit_runs ORDER BY 1").fetchall()
        statuses = {r[0] for r in con.execute("SELECT status FROM audit_findings").fetchall()}
    finally:
        con.close()
    assert runs == [(1,), (2,)]  # both runs kept across the snapshots in between
    assert "open" in statuses or "new" in statuses


def test_a_killed_follower_leaves_readers_on_the_last_good_snapshot(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    """(d) SIGKILL mid-stream: readers still open the last published snapshot, which is a
    whole prefix of the stream; `status` says the follower is gone; a new follower goes on."""
    db = tmp_path / "live.duckdb"
    follower = Follower(nats_server.url, db, batch=40, reader_lag=0.5)
    pub = publisher(nats_server.url, small_export, rate=1500)
    follower.wait_for(lambda st: st.snapshot is not None and st.snapshot["position"]["streams"])
    follower.wait_for(lambda st: (st.last_seq or 0) > 1000)
    code, _, _ = follower.stop(signal.SIGKILL)
    assert code == -signal.SIGKILL
    total = published_count(pub)

    con = workbench.connect(str(db), read_only=True)
    try:
        state = seen(con)
        hashes = projection_hashes(con)
    finally:
        con.close()
    assert_whole(state)
    assert 0 < state["last_seq"] < total
    assert hashes == hashes_at(nats_server.url, state["last_seq"], tmp_path)
    st = workbench.status(str(db))
    assert not st.follower_running and st.follower is not None
    assert any("killed or crashed" in line for line in st.lines())

    again = Follower(nats_server.url, db)
    again.wait_for(lambda s: s.last_seq == total, timeout=60)
    time.sleep(2.5)
    con = workbench.connect(str(db), read_only=True)
    try:
        final = seen(con)
        final_hashes = projection_hashes(con)
    finally:
        con.close()
    code, _, err = again.stop()
    assert code == 0, err
    assert_whole(final)
    assert final["last_seq"] == total
    assert final_hashes == hashes_at(nats_server.url, total, tmp_path)
    assert not list(snaps.snapshot_dir(db).glob(".tmp-*")), "a half copy was left behind"


def test_a_parquet_replay_into_a_followed_database_is_refused_naming_the_follower(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    db = tmp_path / "live.duckdb"
    publish([small_export], nats_server.url)
    follower = Follower(nats_server.url, db)
    try:
        follower.wait_for(lambda st: st.consumer != "")
        out = subprocess.run(
            [str(WORKBENCH), "replay", str(small_export), "--db", str(db), "--no-progress"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        code, _, err = follower.stop()
    assert code == 0, err
    assert out.returncode == 3, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"PID {follower.proc.pid}" in lines[0] and "live follower" in lines[0], lines[0]
    assert nats_server.url in lines[0]
    # once it has stopped the replay goes in, and readers see it
    again = subprocess.run(
        [str(WORKBENCH), "replay", str(small_export), "--db", str(db), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode in (0, 1), again.stderr
    con = workbench.connect(str(db), read_only=True)
    try:
        events = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    finally:
        con.close()
    assert events > 0


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v", "-p", "no:xdist"]))
