"""Helpers for the live-reader tests: the follower and the publisher in processes of their
own, and what a reader connection holds, checked against the stream."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.replay import catch_up, readers
from workbench.replay import snapshots as snaps

WORKBENCH = Path(sys.executable).parent / "workbench"
ROOT = Path(__file__).resolve().parents[2]

STARTED: list[subprocess.Popen[str]] = []


class Follower:
    """The follower CLI in a child process, with a short reader lag so a test sees many
    snapshots."""

    def __init__(self, url: str, db: Path, *, batch: int = 200, reader_lag: float = 1.0) -> None:
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
        STARTED.append(self.proc)

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
    STARTED.append(proc)
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
