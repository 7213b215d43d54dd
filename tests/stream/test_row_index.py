"""The live stream's row index (``replay/row_index.py``): its bounds are lower bounds of every
stored row of an aggregate and of an event id, batch after batch, also after a batch deleted a
stored event (a displacing copy), which makes it load again. The projections it lets a batch
read are checked against the full build by ``test_incremental.py``."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.generator import generate
from workbench.replay import row_index
from workbench.replay.publish import messages
from workbench.replay.row_index import MinRows
from workbench.replay.schema import PAYLOAD_TABLES
from workbench.replay.stream import Message, StreamDatabase, StreamKey

KEY = StreamKey("test:S", "epoch-1")

keys = st.integers(0, 40)
rows = st.integers(0, 10_000)


@settings(max_examples=60, deadline=None)
@given(
    loaded=st.lists(st.tuples(keys, rows), max_size=30),
    added=st.lists(st.tuples(st.lists(keys, max_size=8), rows), max_size=12),
    asked=st.lists(st.lists(keys, max_size=6), min_size=1, max_size=5),
)
def test_min_rows_is_the_smallest_row_recorded_per_key(
    loaded: list[tuple[int, int]],
    added: list[tuple[list[int], int]],
    asked: list[list[int]],
) -> None:
    ref: dict[int, int] = {}
    for k, r in loaded:
        ref[k] = min(r, ref.get(k, r))
    index = MinRows(
        np.array([k for k, _ in loaded], np.uint64), np.array([r for _, r in loaded], np.int64)
    )
    old = row_index._MERGE_AT
    row_index._MERGE_AT = 5  # merge often: both halves of the structure answer
    try:
        for ks, r in added:
            index.add(ks, r)
            for k in ks:
                ref[k] = min(r, ref.get(k, r))
    finally:
        row_index._MERGE_AT = old
    assert len(index) >= len(ref)
    for q in asked:
        want = [ref[k] for k in q if k in ref]
        assert index.lowest(np.array(q, np.uint64)) == (min(want) if want else None)


def _check_bounds(store: StreamDatabase) -> None:
    """Every stored row is at or past its keys' bound, and every bound is a row of the table
    or the end of it: what a scan from the bound finds is all there is."""
    index, con = store.index, store.con
    assert index is not None
    got = con.execute(
        "SELECT hash(event_id), hash(stream, aggregate_id), rowid FROM events"
    ).fetchall()
    for e, a, r in got:
        assert index.event_ids.lowest(np.array([e], np.uint64)) <= r
        assert index.aggregates.lowest(np.array([a], np.uint64)) <= r
    for stream, table in PAYLOAD_TABLES.items():
        for a, r in con.execute(
            f"SELECT hash('{stream}', aggregate_id), rowid FROM {table.name}"
        ).fetchall():
            assert index.payloads[stream].lowest(np.array([a], np.uint64)) <= r


def _earlier(body: bytes) -> bytes:
    """The same event recorded earlier: a conflicting copy that wins over the stored one."""
    text = body.decode()
    stamp = json.loads(text)["recorded_at"]
    return (
        re.sub(
            r'"recorded_at":"[^"]*"', '"recorded_at":"2000-01-01T00:00:00Z"', text, count=1
        ).encode()
        if stamp
        else body
    )


@pytest.fixture(scope="module")
def bodies(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    x = tmp_path_factory.mktemp("ri") / "x"
    generate(x, seed=46, days=1, orders_per_day=40, traders=4, clients=2, progress=False)
    return [m.body for m in messages([x]) if m.kind == "event"]


def test_the_bounds_hold_batch_after_batch_and_after_a_displacement(
    tmp_path: Path, bodies: list[bytes]
) -> None:
    store = StreamDatabase(tmp_path / "s.duckdb", "test://")
    rng = random.Random(3)
    seq, i = 0, 10
    batches: list[list[bytes]] = [bodies[:10]]
    while i < len(bodies):
        n = rng.choice([1, 60, 250])
        batches.append(bodies[i : i + n])
        i += n
    displacing = _earlier(bodies[5])
    batches.insert(1 + len(batches) // 2, [displacing])  # after its event is stored
    loads_before = None
    for batch in batches:
        msgs = [Message(seq + j + 1, b) for j, b in enumerate(batch)]
        seq += len(msgs)
        if batch == [displacing]:
            assert store.index is not None
            loads_before = store.index.loads
        result = store.apply(KEY, msgs)
        assert result.balanced
        if batch == [displacing]:
            assert result.how == "full" and result.conflicting == 0
            assert store.index is not None and store.index.loads == (loads_before or 0) + 1
        _check_bounds(store)
    assert loads_before is not None
    # the bounds narrow the reads: the last rows' ids are found near the end, not from row 0
    end = store.index.shapes["events"][0] if store.index is not None else 0
    assert store.index is not None
    b = store.index.bounds(store.con, f"(SELECT * FROM events WHERE rowid >= {end - 20})")
    assert 0 < b.dedup <= end - 20 and b.fresh == end
    store.close()
