"""The live stream's database side, without a broker: any split of a history into batches, in log
order or not, gives exactly the projections of the Parquet replay (incremental apply, and the
full build for a batch that reaches back)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from workbench.generator import generate
from workbench.replay import rebuild
from workbench.replay.publish import messages
from workbench.replay.stream import Message, StreamDatabase, StreamKey

KEY = StreamKey("test:S", "epoch-1")


def _feed(db: Path, batches: list[list[bytes]]) -> tuple[dict[str, str], StreamDatabase]:
    store = StreamDatabase(db, "test://")
    seq = 0
    for batch in batches:
        msgs = [Message(seq + i + 1, body) for i, body in enumerate(batch)]
        seq += len(msgs)
        result = store.apply(KEY, msgs)
        assert result.balanced
    return store.finish(), store


@pytest.mark.parametrize("seed", [41, 42])
def test_random_batches_equal_the_parquet_replay(tmp_path: Path, seed: int) -> None:
    generate(
        tmp_path / "x", seed=seed, days=2, orders_per_day=120, traders=8, clients=3, progress=False
    )
    ref = rebuild([tmp_path / "x"], tmp_path / "p.duckdb", progress=False)
    bodies = [m.body for m in messages([tmp_path / "x"]) if m.kind != "redelivery"]
    rng = random.Random(seed)
    batches, i = [], 0
    while i < len(bodies):
        n = rng.choice([1, 3, 50, 400, 1500])
        batches.append(bodies[i : i + n])
        i += n
    hashes, store = _feed(tmp_path / "s.duckdb", batches)
    totals = store.totals
    store.close()
    assert hashes == ref.hashes
    assert (totals.applied, totals.conflicting, totals.quarantined) == (
        ref.applied,
        ref.conflicting,
        ref.quarantined,
    )


def test_batches_out_of_log_order_equal_the_parquet_replay(tmp_path: Path) -> None:
    generate(
        tmp_path / "x", seed=43, days=2, orders_per_day=120, traders=8, clients=3, progress=False
    )
    ref = rebuild([tmp_path / "x"], tmp_path / "p.duckdb", progress=False)
    bodies = [m.body for m in messages([tmp_path / "x"]) if m.kind != "redelivery"]
    chunks = [bodies[i : i + 500] for i in range(0, len(bodies), 500)]
    random.Random(7).shuffle(chunks)
    hashes, store = _feed(tmp_path / "s.duckdb", chunks)
    store.close()
    assert hashes == ref.hashes


def test_redelivered_sequences_are_acknowledged_without_effect(tmp_path: Path) -> None:
    store = StreamDatabase(tmp_path / "s.duckdb", "test://")
    body = (
        b'{"event_id":"e1","position":1,"stream":"client","aggregate_id":"c1","seq":1,'
        b'"kind":"client.registered","schema_version":1,"occurred_at":"2026-11-01T00:00:00Z",'
        b'"recorded_at":"2026-11-01T00:00:00Z","correlation_id":null,"causation_id":null,'
        b'"payload":{"name":"A","settlement_currency":"USDT","fee_bps":100}}'
    )
    first = store.apply(KEY, [Message(1, body), Message(2, b"junk")])
    assert (first.messages, first.applied, first.quarantined) == (2, 1, 1)
    again = store.apply(KEY, [Message(1, body), Message(2, b"junk"), Message(2, b"junk")])
    assert (again.messages, again.redelivered, again.applied) == (0, 3, 0)
    # the same event under a new sequence: a redelivery by event_id
    third = store.apply(KEY, [Message(3, body), Message(3, body)])
    assert (third.messages, third.redelivered, third.duplicates) == (1, 1, 1)
    con = store.con
    assert con.execute("SELECT count(*) FROM quarantine").fetchall() == [(1,)]
    assert con.execute(
        "SELECT last_seq, messages, applied, duplicates, quarantined FROM stream_positions"
    ).fetchall() == [(3, 3, 1, 1, 1)]
    store.close()


def test_a_full_rebuild_forgets_the_stream_position(tmp_path: Path) -> None:
    """``rebuild(full=True)`` starts the events over, so the stream must be read again from its
    start: its position goes with the events it stood for."""
    generate(
        tmp_path / "x", seed=44, days=1, orders_per_day=40, traders=4, clients=2, progress=False
    )
    bodies = [m.body for m in messages([tmp_path / "x"]) if m.kind != "redelivery"]
    _, store = _feed(tmp_path / "s.duckdb", [bodies[:100]])
    assert store.committed(KEY) == 100
    store.close()
    rebuild([tmp_path / "x"], tmp_path / "s.duckdb", progress=False)  # incremental: kept
    store = StreamDatabase(tmp_path / "s.duckdb", "test://")
    assert store.committed(KEY) == 100
    store.close()
    rebuild([tmp_path / "x"], tmp_path / "s.duckdb", progress=False, full=True)
    store = StreamDatabase(tmp_path / "s.duckdb", "test://")
    assert store.committed(KEY) is None
    store.close()
