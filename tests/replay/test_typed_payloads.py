"""The typed payload tables: a column for every payload field, each value the decoder's, kept
equal to ``events`` through replays again, conflicting copies and full rebuilds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from workbench.domain.catalog import PAYLOADS, DecodingError, decode_payload
from workbench.domain.events import dumps, loads
from workbench.replay import engine, store, typed
from workbench.replay.payload_types import PAYLOAD_ENVELOPE
from workbench.replay.schema import EVENTS, PAYLOAD_TABLES

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "platform-export-3d"
SAMPLE = ROOT / "data" / "sample_events"


def test_every_payload_field_has_a_typed_column() -> None:
    for (kind, version), model in PAYLOADS.items():
        table = PAYLOAD_TABLES[kind.split(".")[0]]
        columns = set(table.column_names)
        for name, f in model.model_fields.items():
            key = f.alias or name
            assert key in columns, f"{kind} v{version}: no typed column for {key!r}"
    # and no column that no field asks for
    for stream, table in PAYLOAD_TABLES.items():
        fields = {
            f.alias or n
            for (k, _), m in PAYLOADS.items()
            if k.split(".")[0] == stream
            for n, f in m.model_fields.items()
        }
        assert set(table.column_names) == set(PAYLOAD_ENVELOPE) | fields


def _corpus(folder: Path) -> list[tuple[str, int, str]]:
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT kind, schema_version, payload FROM read_parquet('{folder}/**/*.parquet')"
    ).fetchall()
    return [(str(k), int(v), str(p)) for k, v, p in rows if k is not None and p is not None]


def _hostile(kind: str, version: int, payload: str) -> list[str]:
    """Valid rewritings of a valid payload the fast paths do not expect: keys in reverse
    order, spaces, an escaped character, numbers written with exponents, a `+00:00` offset,
    int64's extremes where the field allows them."""
    obj = loads(payload)
    out = [
        dumps(dict(reversed(list(obj.items())))),
        dumps(obj).replace(',"', ' ,\n  "'),
        payload.replace('"', '"', 1),
    ]
    text = dumps(obj)
    out.append(re.sub(r'"([A-Za-z])', lambda m: f'"\\u{ord(m.group(1)):04x}', text, count=3))
    out.append(re.sub(r'Z"', '+00:00"', text))
    out.append(re.sub(r'"(score|confidence)":([0-9.]+)', r'"\1":\g<2>0E0', text))
    for name in ("amount", "settlement_amount", "extracted_amount", "paid_amount"):
        if isinstance(obj.get(name), int):
            out.append(dumps({**obj, name: 2**63 - 1}))
            out.append(dumps({**obj, name: -(2**63)}))
    return out


def _valid(kind: str, version: int, payload: str) -> bool:
    try:
        decode_payload(kind, version, payload)
    except DecodingError:
        return False
    return True


def _expected(kind: str, version: int, payload: str) -> dict[str, Any]:
    """The decoder's payload as written (not upcast), field by field."""
    decoded = PAYLOADS[(kind, version)].model_validate(loads(payload), strict=True)
    return decoded.model_dump(by_alias=True)


def test_typed_rows_are_the_decoders_payloads_on_real_and_hostile_rows() -> None:
    rows: list[tuple[str, int, str]] = []
    for kind, version, payload in _corpus(FIXTURE)[:1500] + _corpus(SAMPLE)[:1500]:
        if (kind, version) not in PAYLOADS or not _valid(kind, version, payload):
            continue
        rows.append((kind, version, payload))
        rows += [(kind, version, p) for p in _hostile(kind, version, payload)]
    rows = [r for r in rows if _valid(*r)]
    assert len(rows) > 5_000
    con = duckdb.connect()
    store.configure(con)
    store.create_schema(con)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    events = [
        (f"e{i}", i, kind.split(".")[0], "a", 1, kind, version, at, at, None, None, payload, "t")
        for i, (kind, version, payload) in enumerate(rows)
    ]
    con.from_arrow(store.rows_to_arrow(EVENTS, events)).insert_into("events")
    typed.sync(con)
    checked = 0
    for table in PAYLOAD_TABLES.values():
        got = con.sql(f"SELECT * FROM {table.name}").to_arrow_table().to_pylist()
        for row in got:
            i = int(row["event_id"][1:])
            kind, version, payload = rows[i]
            want = _expected(kind, version, payload)
            for col in table.column_names:
                if col in PAYLOAD_ENVELOPE:
                    continue
                assert row[col] == want.get(col), (kind, version, payload, col, row[col])
            checked += 1
    assert checked == len(rows)


def _counts(db: Path) -> tuple[int, int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        n_typed = sum(
            int(con.execute(f"SELECT count(*) FROM {t.name}").fetchall()[0][0])
            for t in PAYLOAD_TABLES.values()
        )
        same = sum(
            int(
                con.execute(
                    f"SELECT count(*) FROM {t.name} p JOIN events e USING (event_id) "
                    f"WHERE e.stream = '{s}' AND e.position = p.position AND e.kind = p.kind"
                ).fetchall()[0][0]
            )
            for s, t in PAYLOAD_TABLES.items()
        )
        events = int(con.execute("SELECT count(*) FROM events").fetchall()[0][0])
        quarantine = int(con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0])
    finally:
        con.close()
    assert n_typed == same == events
    return events, quarantine, n_typed


@pytest.fixture(scope="module")
def small_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days with every anomaly planted: quarantined rows, duplicates (the fold engine is
    slow on the whole sample, and a small history has every case)."""
    from workbench.generator import generate

    out = tmp_path_factory.mktemp("typed") / "export"
    generate(out, seed=5, days=2, orders_per_day=150, traders=10, clients=3, progress=False)
    return out


@pytest.mark.parametrize("engine_name", ["sql", "fold"])
def test_replays_again_keep_the_typed_tables_and_the_quarantine_once(
    tmp_path: Path, engine_name: str, small_export: Path
) -> None:
    db = tmp_path / "r.duckdb"
    engine.rebuild([small_export], db, engine=engine_name, progress=False)
    first = _counts(db)
    assert first[1] > 0  # the export has quarantined rows
    engine.rebuild([small_export], db, engine=engine_name, progress=False, reread=True)
    assert _counts(db) == first  # no second copy of a quarantined row, no typed row twice
    engine.rebuild([small_export], db, engine=engine_name, progress=False, full=True)
    assert _counts(db) == first
