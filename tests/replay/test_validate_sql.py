"""The SQL payload check compiled from the models is never looser than the models themselves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.domain.catalog import PAYLOADS, DecodingError, decode_payload
from workbench.replay.validate import payload_predicate

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "platform-export-3d"
PREDICATE = payload_predicate("pj")


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def _sql_says(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, int, str]]) -> list[bool]:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE t (i INTEGER, kind VARCHAR, schema_version INTEGER, payload VARCHAR)"
    ).fetchall()
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(i, *r) for i, r in enumerate(rows)])
    got = con.execute(
        f"SELECT i, coalesce({PREDICATE}, FALSE) FROM (SELECT *, TRY_CAST(payload AS JSON) pj FROM t) ORDER BY i"
    ).fetchall()
    return [bool(v) for _, v in got]


def _python_says(kind: str, version: int, payload: str) -> bool:
    try:
        decode_payload(kind, version, payload)
        return True
    except DecodingError:
        return False


def _corpus(folder: Path) -> list[tuple[str, int, str]]:
    con = duckdb.connect()
    return [
        tuple(r)
        for r in con.execute(
            f"SELECT kind, schema_version, payload FROM read_parquet('{folder}/**/*.parquet')"
        ).fetchall()
    ]  # type: ignore[misc]


@pytest.mark.parametrize(
    "folder", [FIXTURE, ROOT / "data" / "sample_events"], ids=["fixture", "sample"]
)
def test_sql_agrees_with_the_decoder_on_real_and_planted_rows(
    con: duckdb.DuckDBPyConnection, folder: Path
) -> None:
    rows = _corpus(folder)
    sql = _sql_says(con, rows)
    py = [_python_says(*r) for r in rows]
    # Never looser: SQL accepts only what the decoder accepts.
    assert not [r for r, s, p in zip(rows, sql, py, strict=True) if s and not p]
    # And on these corpora not stricter either (so the fast path really is the common path).
    assert sql == py


def _mutations(payload: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, value in payload.items():
        for bad in ("1", 1.5, True, None, [], {}, -1, "2026-11-01T00:00:00+03:00", "x"):
            if bad != value:
                out.append({**payload, key: bad})
        out.append({k: v for k, v in payload.items() if k != key})
    out.append({**payload, "unexpected": 1})
    return out


@pytest.fixture(scope="module")
def examples() -> list[tuple[str, int, dict[str, Any]]]:
    """One real payload per (kind, version) from the sample, as mutation seeds."""
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    for kind, version, payload in _corpus(ROOT / "data" / "sample_events"):
        if (
            (kind, version) in PAYLOADS
            and (kind, version) not in seen
            and _python_says(kind, version, payload)
        ):
            seen[(kind, version)] = json.loads(payload)
    return [(k, v, p) for (k, v), p in sorted(seen.items())]


def test_sql_is_never_looser_on_mutated_payloads(
    con: duckdb.DuckDBPyConnection, examples: list[tuple[str, int, dict[str, Any]]]
) -> None:
    rows = [(k, v, json.dumps(m)) for k, v, p in examples for m in _mutations(p)]
    assert len(rows) > 500
    sql = _sql_says(con, rows)
    looser = [r for r, s in zip(rows, sql, strict=True) if s and not _python_says(*r)]
    assert looser == []


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.sampled_from(sorted(PAYLOADS)),
    body=st.dictionaries(st.text(max_size=12), json_values, max_size=8),
)
def test_sql_is_never_looser_on_arbitrary_json(
    con: duckdb.DuckDBPyConnection, key: tuple[str, int], body: dict[str, Any]
) -> None:
    payload = json.dumps(body)
    [sql] = _sql_says(con, [(key[0], key[1], payload)])
    if sql:
        assert _python_says(key[0], key[1], payload)


TRICKY_TIMES = [
    "2026-11-01T24:00:00Z",  # DuckDB reads it as the next midnight; the catalog has no hour 24
    "2026-11-01T23:59:60Z",
    "0000-01-01T00:00:00Z",  # DuckDB: 1 BC
    "2026-02-29T00:00:00Z",
    "2026-11-01T10:00:00.1234567Z",
    "2026-11-01T10:00:00-00:00",
    "2026-11-01T10:00:00+24:00",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59.999999Z",
    "2026-11-01 10:00:00Z",
    "2026-11-01T10:00Z",
]


@pytest.mark.parametrize("ts", TRICKY_TIMES)
def test_sql_never_vouches_for_a_timestamp_the_decoder_refuses(
    con: duckdb.DuckDBPyConnection, ts: str
) -> None:
    payload = json.dumps(
        {
            "order_id": "po-1",
            "trader_id": "t-1",
            "amount": 100,
            "currency": "RUB",
            "paid_at": ts,
            "bank": "b",
            "file_sha256": "00",
        }
    )
    row = ("receipt.uploaded", 1, payload)
    sql, py = _sql_says(con, [row])[0], _python_says(*row)
    assert not sql or py, f"SQL vouched for {ts!r}, the decoder refuses it"
