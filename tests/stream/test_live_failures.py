"""A follower killed mid-stream, and a Parquet replay into a database a follower writes (see
test_live_readers.py for the setting)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import workbench
from workbench.replay import snapshots as snaps
from workbench.replay.nats_local import LocalServer
from workbench.replay.nats_source import publish
from workbench.replay.store import projection_hashes

from .live import (
    WORKBENCH,
    Follower,
    assert_whole,
    hashes_at,
    published_count,
    publisher,
    seen,
)


def test_a_killed_follower_leaves_readers_on_the_last_good_snapshot(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    """(d) SIGKILL mid-stream: readers still open the last published snapshot, which is a
    whole prefix of the stream; `status` says the follower is gone; a new follower goes on."""
    db = tmp_path / "live.duckdb"
    follower = Follower(nats_server.url, db, batch=40, reader_lag=1.0)
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
