"""The live stream against a real nats-server with JetStream: the same projections as the Parquet
replay, exactly once across SIGKILL, broker restarts, redelivery and duplicates, malformed
messages quarantined and acknowledged."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import nats
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from workbench.replay import catch_up, connect, rebuild
from workbench.replay import stream as stream_mod
from workbench.replay.nats_local import LocalServer
from workbench.replay.nats_source import STREAM, NatsSource, ensure_stream, publish
from workbench.replay.schema import PAYLOAD_TABLES
from workbench.replay.store import projection_hashes
from workbench.replay.stream import Options, run, run_sync

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample_events"
WORKBENCH = Path(sys.executable).parent / "workbench"


# --------------------------------------------------------------------------- helpers
def parquet_replay(export: Path, tmp: Path) -> tuple[dict[str, str], duckdb.DuckDBPyConnection]:
    db = tmp / f"parquet-{export.name}.duckdb"
    summary = rebuild([export], db, progress=False)
    return summary.hashes, connect(db, read_only=True)


def hashes_of(db: Path) -> dict[str, str]:
    con = connect(db, read_only=True)
    try:
        return projection_hashes(con)
    finally:
        con.close()


def position(db: Path) -> dict[str, Any]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT last_seq, messages, applied, duplicates, quarantined FROM stream_positions"
        ).fetchall()
    finally:
        con.close()
    assert len(rows) == 1, rows
    return dict(
        zip(("last_seq", "messages", "applied", "duplicates", "quarantined"), rows[0], strict=True)
    )


def quarantine(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """What was quarantined and why, without where it came from (file or message)."""
    return sorted(
        con.execute("SELECT event_id, reason, field, error FROM quarantine").fetchall(),
        key=lambda r: tuple("" if x is None else str(x) for x in r),
    )


def stream_state(url: str) -> tuple[int, int]:
    """(messages in the stream, last sequence)."""

    async def go() -> tuple[int, int]:
        nc = await nats.connect(url)
        try:
            info = await nc.jetstream().stream_info(STREAM)
            return int(info.state.messages), int(info.state.last_seq)
        finally:
            await nc.close()

    return asyncio.run(go())


def publish_raw(url: str, bodies: list[tuple[str, bytes, str]]) -> None:
    """Publish bodies as they are: (subject, body, Nats-Msg-Id)."""

    async def go() -> None:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await ensure_stream(js)
            for subject, body, msg_id in bodies:
                await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id})
        finally:
            await nc.close()

    asyncio.run(go())


class Follower:
    """``workbench replay URL --db DB --follow`` in a child process, its status lines collected."""

    def __init__(self, url: str, db: Path, batch: int = 300) -> None:
        self.proc = subprocess.Popen(
            [
                str(WORKBENCH),
                "replay",
                url,
                "--db",
                str(db),
                "--follow",
                "--batch",
                str(batch),
                "--status-every",
                "0.05",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())

    def progress(self) -> tuple[int, int]:
        """(messages taken in by this process, last sequence) from its last status line."""
        for line in reversed(self.lines):
            m = re.search(r"stream: ([\d,]+) messages.*sequence ([\d,-]+)", line)
            if m:
                seq = m.group(2).replace(",", "")
                return int(m.group(1).replace(",", "")), int(seq) if seq != "-" else 0
        return 0, 0

    def wait_for(self, test: Any, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not test(*self.progress()):
            if self.proc.poll() is not None:
                raise AssertionError(f"follower exited {self.proc.returncode}: {self.lines[-5:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"follower made no such progress: {self.lines[-5:]}")
            time.sleep(0.02)

    def stop(self, sig: int) -> tuple[int, str]:
        self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=60)
        self._reader.join(timeout=5)
        return self.proc.returncode, out


# --------------------------------------------------------------------------- the tests
def test_stream_replay_gives_the_parquet_replays_projections(
    nats_server: LocalServer, tmp_path: Path
) -> None:
    """The committed sample (every planted anomaly: malformed rows, conflicting and identical
    duplicates…) published and consumed: the same projection hashes, the same quarantine."""
    pub = publish([SAMPLE], nats_server.url)
    assert pub.balanced and pub.conflicting == 7
    ref_hashes, ref = parquet_replay(SAMPLE, tmp_path)
    ref_summary = ref.execute(
        "SELECT events_read, applied, duplicates, conflicting, quarantined FROM replay_runs"
    ).fetchall()[0]
    summary = catch_up(tmp_path / "live.duckdb", nats_server.url)
    assert summary.balanced and summary.messages == pub.stored
    assert summary.hashes == ref_hashes
    # every row of the export is accounted for: read = the broker's drops + what was taken in
    read, applied, duplicates, conflicting, quarantined = ref_summary
    assert pub.read == read
    assert pub.dropped + summary.duplicates == duplicates
    assert (summary.applied, summary.conflicting, summary.quarantined) == (
        applied,
        conflicting,
        quarantined,
    )
    live = connect(tmp_path / "live.duckdb", read_only=True)
    assert quarantine(live) == quarantine(ref)
    # the stream's quarantine keeps each message's body as it came
    raw, source = live.execute(
        "SELECT raw, source FROM quarantine WHERE reason = 'bad_json' LIMIT 1"
    ).fetchall()[0]
    assert source.startswith("nats:PLATFORM_EVENTS#") and json.loads(raw)["event_id"]
    # events keep their payload text byte for byte
    assert live.execute(
        "SELECT count(*) FROM events l JOIN (SELECT * FROM read_parquet(?)) p USING (event_id) "
        "WHERE l.payload <> p.payload",
        [str(SAMPLE / "**" / "*.parquet")],
    ).fetchall() == [(0,)]
    run_row = live.execute("SELECT mode, events_read, hashes FROM replay_runs").fetchall()
    assert run_row[0][0] == "stream" and run_row[0][1] == pub.stored
    assert json.loads(run_row[0][2]) == ref_hashes
    # caught up: a second catch-up takes nothing in
    live.close()
    again = catch_up(tmp_path / "live.duckdb", nats_server.url)
    assert again.messages == 0 and again.hashes == ref_hashes


def test_readers_see_the_runs_record_and_the_typed_payloads_of_the_last_batch(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    """With no reader lag a snapshot follows every batch, the last one included; the run's
    record (its hashes), committed after that batch, moves no position a snapshot is judged by,
    and is published all the same. The snapshot holds every event's typed payload row."""
    publish([small_export], nats_server.url)
    ref_hashes, _ = parquet_replay(small_export, tmp_path)
    db = tmp_path / "live.duckdb"
    source = NatsSource(nats_server.url)
    summary = run_sync(lambda: run(source, db, options=Options(max_batch=400, reader_lag=0.0)))
    assert summary.hashes == ref_hashes and summary.batches > 1
    live = connect(db, read_only=True)
    try:
        assert live.execute("SELECT generation FROM reader_snapshot").fetchall()[0][0] is not None
        (hashes,) = live.execute("SELECT hashes FROM replay_runs").fetchall()[0]
        assert json.loads(hashes) == ref_hashes
        untyped = " AND ".join(
            f"event_id NOT IN (SELECT event_id FROM {t.name})" for t in PAYLOAD_TABLES.values()
        )
        assert live.execute(f"SELECT count(*) FROM events WHERE {untyped}").fetchall() == [(0,)]
        typed = " + ".join(f"(SELECT count(*) FROM {t.name})" for t in PAYLOAD_TABLES.values())
        same = live.execute(f"SELECT {typed} = (SELECT count(*) FROM events)").fetchall()
        assert same == [(True,)]
    finally:
        live.close()


def test_sigkill_mid_stream_then_restart_gives_the_same_hashes(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    pub = publish([small_export], nats_server.url)
    ref_hashes, _ = parquet_replay(small_export, tmp_path)
    db = tmp_path / "live.duckdb"
    committed = []
    for _ in range(3):  # killed three times, each after it has committed something
        f = Follower(nats_server.url, db, batch=150)
        f.wait_for(lambda n, seq: n >= 300)
        code, _ = f.stop(signal.SIGKILL)
        assert code == -signal.SIGKILL
        committed.append(position(db)["last_seq"])
    assert 0 < committed[0] < committed[1] < committed[2] < pub.last_seq  # really mid-stream
    summary = catch_up(db, nats_server.url)
    assert summary.messages > 0 and summary.hashes == ref_hashes
    pos = position(db)
    # each message of the stream taken in exactly once over the four processes
    assert pos["last_seq"] == pub.last_seq and pos["messages"] == pub.stored
    assert pos["messages"] == pos["applied"] + pos["duplicates"] + pos["quarantined"]


def test_broker_restarted_mid_stream(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    out = subprocess.run(
        [str(WORKBENCH), "publish", str(small_export), "--to", nats_server.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "nothing lost" in out.stdout, out.stderr
    n, last_seq = stream_state(nats_server.url)
    ref_hashes, _ = parquet_replay(small_export, tmp_path)
    db = tmp_path / "live.duckdb"
    f = Follower(nats_server.url, db, batch=150)
    f.wait_for(lambda n, seq: n >= 300)
    nats_server.stop(kill=True)  # the broker dies mid-stream…
    time.sleep(0.5)
    nats_server.start()  # …and comes back on its storage
    f.wait_for(lambda taken, seq: seq == last_seq, timeout=90)
    code, summary = f.stop(signal.SIGTERM)  # stops cleanly between batches
    assert code == 0, summary
    assert "stopped by signal" in summary and "nothing lost" in summary
    assert hashes_of(db) == ref_hashes
    pos = position(db)
    assert pos["messages"] == n
    assert pos["messages"] == pos["applied"] + pos["duplicates"] + pos["quarantined"]


def test_broker_redeliveries_are_recognised(
    nats_server: LocalServer,
    small_export: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The broker redelivers what was not acknowledged within ack_wait (here: while the first
    batches are slow to commit); redeliveries are acknowledged without effect."""
    pub = publish([small_export], nats_server.url)
    ref_hashes, _ = parquet_replay(small_export, tmp_path)
    slow = {"left": 2}
    original = stream_mod.StreamDatabase.apply

    def slow_apply(self: Any, key: Any, messages: Any) -> Any:
        if slow["left"]:
            slow["left"] -= 1
            time.sleep(2.5)
        return original(self, key, messages)

    monkeypatch.setattr(stream_mod.StreamDatabase, "apply", slow_apply)
    source = NatsSource(nats_server.url, ack_wait=1.0)
    db = tmp_path / "live.duckdb"
    summary = run_sync(lambda: run(source, db, options=Options(max_batch=400)))
    assert summary.redelivered > 0
    assert summary.messages == pub.stored and summary.hashes == ref_hashes
    assert position(db)["messages"] == pub.stored


def test_duplicated_messages_count_once(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    """Every event published twice (a publisher retrying after the broker's duplicate window,
    so the broker keeps both): the copies are skipped as redeliveries by event_id."""
    first = publish([small_export], nats_server.url)
    from workbench.replay.publish import messages

    again = [(m.subject, m.body, m.msg_id + "~retry") for m in messages([small_export])]
    publish_raw(nats_server.url, again)
    n, _ = stream_state(nats_server.url)
    assert n == 2 * first.stored  # every message of the export is there twice
    ref_hashes, ref = parquet_replay(small_export, tmp_path)
    summary = catch_up(tmp_path / "live.duckdb", nats_server.url)
    assert summary.messages == n and summary.balanced
    assert summary.hashes == ref_hashes
    events = ref.execute("SELECT count(*) FROM events").fetchall()[0][0]
    assert summary.applied == events and summary.duplicates >= events


def test_malformed_messages_are_quarantined_with_their_bytes_and_acked(
    nats_server: LocalServer, tmp_path: Path
) -> None:
    def env(eid: str, **over: Any) -> dict[str, Any]:
        e = {
            "event_id": eid,
            "position": 10,
            "stream": "client",
            "aggregate_id": "cl-1",
            "seq": 1,
            "kind": "client.registered",
            "schema_version": 1,
            "occurred_at": "2026-11-01T10:00:00Z",
            "recorded_at": "2026-11-01T10:00:01Z",
            "correlation_id": None,
            "causation_id": None,
            "payload": {"name": "Shop", "settlement_currency": "USDT", "fee_bps": 150},
        }
        e.update(over)
        return e

    payload_first = (
        '{ "payload" : {"name":"Shop 2",  "settlement_currency":"USDT","fee_bps":120},'
        + json.dumps(env("e-2", position=11, aggregate_id="cl-2"))[1:].replace(
            ', "payload": {"name": "Shop", "settlement_currency": "USDT", "fee_bps": 150}', ""
        )
    )
    bodies = [
        ("platform.client.cl-1", b"not json at all", "m1"),
        ("platform.client.cl-1", b"\xff\xfe\x00 binary", "m2"),
        ("platform.client.cl-1", b"[1, 2, 3]", "m3"),
        ("platform.client.cl-1", json.dumps(env("e-4", position=None)).encode(), "m4"),
        ("platform.client.cl-1", json.dumps(env("e-5", occurred_at="yesterday")).encode(), "m5"),
        ("platform.client.cl-1", b'{"event_id": "e-6", "event_id": "e-7"}', "m6"),
        ("platform.client.cl-1", json.dumps(env("e-1")).encode(), "m7"),
        ("platform.client.cl-2", payload_first.encode(), "m8"),
    ]
    publish_raw(nats_server.url, bodies)
    db = tmp_path / "live.duckdb"
    summary = catch_up(db, nats_server.url)
    assert summary.messages == 8 and summary.balanced
    assert (summary.applied, summary.quarantined) == (2, 6)
    con = connect(db, read_only=True)
    rows = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT source, reason, field, raw, error FROM quarantine ORDER BY source"
        ).fetchall()
    }
    by_seq = {int(k.rsplit("#", 1)[1]): v for k, v in rows.items()}
    assert by_seq[1][0] == "bad_json" and by_seq[1][2] == "not json at all"
    assert by_seq[2][0] == "bad_json" and json.loads(by_seq[2][2])["base64"] == "//4AIGJpbmFyeQ=="
    assert by_seq[3][0] == "bad_envelope"
    assert by_seq[4][:2] == ("bad_envelope", "position") and "e-4" in by_seq[4][3]
    assert by_seq[5][:2] == ("bad_envelope", "occurred_at") and "e-5" in by_seq[5][3]
    assert by_seq[6][:2] == ("bad_envelope", "event_id")
    assert "message 1 on platform.client.cl-1" in by_seq[1][3]  # errors name the message
    # the payload of a body with its fields in another order is kept as written
    assert con.execute("SELECT payload FROM events WHERE event_id = 'e-2'").fetchall() == [
        ('{"name":"Shop 2",  "settlement_currency":"USDT","fee_bps":120}',)
    ]
    con.close()
    # everything was acknowledged: no poison-message loop
    again = catch_up(db, nats_server.url)
    assert again.messages == 0 and again.redelivered == 0


def test_export_database_catches_up_from_the_stream(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    """Last month's export, then the stream (which also holds last month): no double counting.
    And a database of the later half, then the whole stream: the batch that reaches back in the
    log is applied by a full build, still the same projections."""
    table = ds.dataset(str(small_export), format="parquet", partitioning="hive").to_table()
    table = table.drop_columns([c for c in table.column_names if c == "date"])
    middle = sorted(table.column("position").to_pylist())[table.num_rows // 2]
    import pyarrow.compute as pc

    early, late = tmp_path / "early", tmp_path / "late"
    early.mkdir()
    late.mkdir()
    pq.write_table(table.filter(pc.less_equal(table["position"], middle)), early / "p.parquet")
    pq.write_table(table.filter(pc.greater(table["position"], middle)), late / "p.parquet")
    ref_hashes, ref = parquet_replay(small_export, tmp_path)
    total = ref.execute("SELECT count(*) FROM events").fetchall()[0][0]
    pub = publish([small_export], nats_server.url)

    old = rebuild([early], tmp_path / "month.duckdb", progress=False)
    summary = catch_up(tmp_path / "month.duckdb", nats_server.url)
    assert summary.hashes == ref_hashes
    assert summary.applied == total - old.applied
    assert summary.duplicates >= old.applied  # the overlap, recognised by event_id
    assert summary.full_builds == 0

    rebuild([late], tmp_path / "late.duckdb", progress=False)
    summary = catch_up(tmp_path / "late.duckdb", nats_server.url)
    assert summary.hashes == ref_hashes and summary.full_builds >= 1
    assert summary.messages == pub.stored


def test_a_batch_that_fails_leaves_nothing_and_is_applied_once_on_restart(
    nats_server: LocalServer,
    small_export: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure between the projections and the commit: the batch's events, quarantine and
    position are rolled back together, nothing is acknowledged, and the next run applies it."""
    pub = publish([small_export], nats_server.url)
    ref_hashes, _ = parquet_replay(small_export, tmp_path)
    from workbench.replay import incremental

    calls = {"n": 0}
    original = incremental.apply

    def failing(*args: Any, **kwargs: Any) -> str:
        calls["n"] += 1
        result = original(*args, **kwargs)
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return result

    monkeypatch.setattr(incremental, "apply", failing)
    db = tmp_path / "live.duckdb"
    with pytest.raises(RuntimeError, match="power cut"):
        catch_up(db, nats_server.url, max_batch=500)
    pos = position(db)
    assert calls["n"] == 3  # two batches committed, the third rolled back
    assert pos["messages"] == pos["last_seq"] and 0 < pos["last_seq"] < pub.last_seq
    monkeypatch.setattr(incremental, "apply", original)
    summary = catch_up(db, nats_server.url, max_batch=500)
    assert summary.hashes == ref_hashes
    assert position(db)["messages"] == pub.stored


def test_cli_refuses_what_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.cli import main

    assert main(["replay", "nats://127.0.0.1:1", "--db", str(tmp_path / "x.duckdb")]) == 2
    assert "nats://127.0.0.1:1: cannot connect to NATS" in capsys.readouterr().err
    assert not (tmp_path / "x.duckdb").exists()
    assert main(["replay", "nats://127.0.0.1:1", "data/x", "--db", str(tmp_path / "x.duckdb")]) == 2
    assert "read alone" in capsys.readouterr().err
    assert (
        main(["replay", "data/sample_events", "--db", str(tmp_path / "x.duckdb"), "--follow"]) == 2
    )
    assert "--follow reads the live stream" in capsys.readouterr().err


def test_poison_messages_are_quarantined_and_the_consumer_moves_on(
    nats_server: LocalServer, tmp_path: Path
) -> None:
    """Issue 12: a lone surrogate, an amount past int64 and a fractional seq each stopped or
    corrupted the stream (the broker itself refuses messages over 1 MB, so `too_large` is an
    export matter); now each is quarantined with its exact bytes,
    acknowledged, and the events after it are applied, on the first run and on every restart."""

    def env(eid: str, n: int, **over: Any) -> dict[str, Any]:
        e = {
            "event_id": eid,
            "position": 100 + n,
            "stream": "client",
            "aggregate_id": "cl-9",
            "seq": n,
            "kind": "client.registered" if n == 1 else "client.fee_changed",
            "schema_version": 1,
            "occurred_at": "2026-11-01T10:00:00Z",
            "recorded_at": "2026-11-01T10:00:01Z",
            "correlation_id": None,
            "causation_id": None,
            "payload": {"name": "Shop", "settlement_currency": "USDT", "fee_bps": 150}
            if n == 1
            else {"fee_bps": 100 + n},
        }
        e.update(over)
        return e

    surrogate = json.dumps(env("p-2", 2)).replace(
        '"fee_bps": 102', '"fee_bps": 102, "x": "cl-\\ud800"'
    )
    bodies = [
        ("platform.client.cl-9", json.dumps(env("p-1", 1)).encode(), "m1"),
        ("platform.client.cl-9", surrogate.encode(), "m2"),
        (
            "platform.client.cl-9",
            json.dumps(env("p-3", 3, payload={"fee_bps": 12345678901234567890})).encode(),
            "m3",
        ),
        ("platform.client.cl-9", json.dumps(env("p-4", 4, seq=1.5)).encode(), "m4"),
        (
            "platform.client.cl-9",
            json.dumps(env("p-5", 5, occurred_at="2026-11-01T24:00:00Z")).encode(),
            "m5",
        ),
        ("platform.client.cl-9", json.dumps(env("p-6", 2)).encode(), "m6"),
    ]
    publish_raw(nats_server.url, bodies)
    db = tmp_path / "live.duckdb"
    summary = catch_up(db, nats_server.url)
    assert summary.messages == 6 and summary.balanced
    assert (summary.applied, summary.quarantined) == (2, 4)
    con = connect(db, read_only=True)
    got = {
        r[0]: r[1:]
        for r in con.execute("SELECT event_id, reason, field, raw FROM quarantine").fetchall()
    }
    assert got["p-2"][:2] == ("bad_json", "payload") and got["p-2"][2] == surrogate
    assert got["p-3"][:2] == ("out_of_range", "payload.fee_bps")
    assert got["p-4"][:2] == ("bad_envelope", "seq")
    assert got["p-5"][:2] == ("bad_envelope", "occurred_at")  # DuckDB alone would take hour 24
    fees = con.execute("SELECT fee_bps, version FROM clients WHERE client_id = 'cl-9'").fetchall()
    assert fees == [(102, 2)]  # the event after the poison was applied
    con.close()
    again = catch_up(db, nats_server.url)  # a restart meets nothing again: all acknowledged
    assert again.messages == 0 and again.redelivered == 0
