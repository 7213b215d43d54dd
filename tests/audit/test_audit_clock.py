"""The audit's "now" is never an event's business-time claim (issue 12).

One event stamped 9999-12-31 used to move the audit's reference time (then the latest
``occurred_at``) and turn every deadline still open on unrelated orders into a
``DEADLINE_MISSED``. Now "now" is ``--as-of``, else the latest ``recorded_at`` inside the
platform's era; the event itself is a ``CLOCK_SKEW`` finding and nothing else changes.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from workbench.audit import audit
from workbench.audit.run import run_checks
from workbench.export import ENVELOPE_SCHEMA
from workbench.generator import generate
from workbench.replay import bulk, rebuild, typed

FAR = datetime(9999, 12, 31, tzinfo=UTC)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A clean day of history (orders still open at its end) and its replayed database."""
    root = tmp_path_factory.mktemp("clock")
    generate(
        root / "export",
        seed=12,
        days=1,
        orders_per_day=300,
        traders=8,
        clients=3,
        clean=True,
        progress=False,
    )
    rebuild([root / "export"], root / "base.duckdb", progress=False)
    return root / "export", root / "base.duckdb"


def _stray(export: Path, occurred: datetime, recorded: datetime | None) -> dict[str, Any]:
    """One more event on an unrelated aggregate, after every other: a trader goes online."""
    rows = ds.dataset(str(export), format="parquet").to_table().to_pylist()
    last = max(rows, key=lambda r: r["position"])
    trader = max((r for r in rows if r["stream"] == "trader"), key=lambda r: r["seq"])
    return {
        "event_id": "stray-clock",
        "position": last["position"] + 1,
        "stream": "trader",
        "aggregate_id": trader["aggregate_id"],
        "seq": trader["seq"] + 1,
        "kind": "trader.went_online",
        "schema_version": 1,
        "occurred_at": occurred,
        "recorded_at": recorded or last["recorded_at"] + timedelta(milliseconds=1),
        "correlation_id": None,
        "causation_id": None,
        "payload": json.dumps({}),
    }


def _ids(findings: pl.DataFrame) -> set[str]:
    return set(findings.filter(pl.col("check") != "CLOCK_SKEW")["finding_id"])


def _deadlines(findings: pl.DataFrame) -> int:
    return findings.filter(pl.col("check") == "DEADLINE_MISSED").height


def test_a_year_9999_event_moves_no_deadline(base: tuple[Path, Path], tmp_path: Path) -> None:
    """occurred_at and recorded_at both in 9999 (the decoder takes it): only a CLOCK_SKEW."""
    export, db = base
    before = audit(db, record=False).findings
    # the history has deadlines still open: judged in 9999, they would all be missed
    judged_far = audit(db, as_of=FAR, record=False).findings
    assert _deadlines(judged_far) > _deadlines(before)

    extra = tmp_path / "extra"
    extra.mkdir()
    pq.write_table(
        pa.Table.from_pylist([_stray(export, FAR, FAR)], schema=ENVELOPE_SCHEMA),
        extra / "part-0.parquet",
    )
    shutil.copy(db, tmp_path / "x.duckdb")
    summary = rebuild([extra], tmp_path / "x.duckdb", progress=False)
    assert summary.applied == 1
    after = audit(tmp_path / "x.duckdb", record=False).findings
    assert _ids(after) == _ids(before)
    assert _deadlines(after) == _deadlines(before)
    clock = after.filter(pl.col("check") == "CLOCK_SKEW")
    assert clock["event_id"].to_list() == ["stray-clock"]
    assert clock["severity"].to_list() == ["medium"]
    assert "occurred_at 9999-12-31T00:00:00.000000Z" in clock["detail"][0]


@pytest.mark.parametrize(
    "occurred", [FAR, datetime(1, 1, 1, tzinfo=UTC)], ids=["year-9999", "year-1"]
)
def test_a_business_time_claim_moves_no_deadline(
    base: tuple[Path, Path], tmp_path: Path, occurred: datetime
) -> None:
    """occurred_at far off, recorded_at normal (applied and flagged, whatever the decoder does
    with it: the event is stored as it is and the projections rebuilt)."""
    export, db = base
    shutil.copy(db, tmp_path / "x.duckdb")
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    try:
        before, _ = run_checks(con)
        row = _stray(export, occurred, None)
        con.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'test')",
            [row[c] for c in ENVELOPE_SCHEMA.names],
        ).fetchall()
        typed.add_missing(con)  # its typed payload, as a replay stores it with the event
        bulk.build(con)
        after, _ = run_checks(con)
    finally:
        con.close()
    assert _ids(after) == _ids(before)
    clock = after.filter(pl.col("check") == "CLOCK_SKEW")
    assert clock["event_id"].to_list() == ["stray-clock"]
    assert ("occurred_at more than 5 s after recorded_at" in clock["detail"][0]) is (
        occurred == FAR
    )
