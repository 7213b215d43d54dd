"""The projection fingerprint: same content in any order gives the same hash; any change shows."""

from __future__ import annotations

import duckdb

from workbench.replay import store
from workbench.replay.schema import ACCOUNT_BALANCES


def _hash(rows: list[tuple[object, ...]]) -> str:
    con = duckdb.connect()
    store.create_schema(con)
    store.append_rows(con, ACCOUNT_BALANCES, rows)
    return store.content_hash(con, ACCOUNT_BALANCES)


ROWS = [
    ("client:a", "USDT", 10, 2, 8),
    ("trader:b", "USDT", 5, 0, 5),
    ("platform:revenue", "USDT", -15, 0, -15),
]


def test_order_does_not_matter() -> None:
    assert _hash(ROWS) == _hash(list(reversed(ROWS))) == _hash([ROWS[1], ROWS[2], ROWS[0]])


def test_any_change_shows() -> None:
    base = _hash(ROWS)
    assert _hash([*ROWS[:2], ("platform:revenue", "USDT", -14, 0, -15)]) != base  # one minor unit
    assert _hash(ROWS[:2]) != base  # a row fewer
    assert _hash([*ROWS, ROWS[0]]) != base  # a row repeated counts twice
    assert _hash([]) != base


def test_two_repeats_do_not_cancel() -> None:
    assert _hash([ROWS[0], ROWS[0]]) != _hash([])
    assert _hash([ROWS[0], ROWS[0]]) != _hash([ROWS[1], ROWS[1]])
