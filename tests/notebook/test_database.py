"""open_database replays only when the database is missing; connect is UTC whatever the machine."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest

from workbench.notebook import connect, database_summary, open_database


def test_replays_a_missing_database_then_leaves_it_alone(
    sample_db: Path, sample_export: Path
) -> None:
    assert sample_db.exists()
    # nothing left over from making it (readers may have published snapshots of it beside it)
    left = {p.name for p in sample_db.parent.iterdir()} - {"sample.duckdb.snapshots"}
    assert left == {"sample.duckdb"}
    before = sample_db.stat().st_mtime_ns
    assert open_database(sample_db, sample_export) == sample_db
    assert open_database(sample_db) == sample_db  # no export needed once it exists
    assert sample_db.stat().st_mtime_ns == before


def test_a_missing_database_without_an_export_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no export given"):
        open_database(tmp_path / "none.duckdb")
    with pytest.raises(FileNotFoundError, match="no export at"):
        open_database(tmp_path / "none.duckdb", tmp_path / "no-export")
    assert not (tmp_path / "none.duckdb").exists()


def test_summary_counts_what_the_replay_wrote(sample_db: Path) -> None:
    s = database_summary(sample_db)
    assert s.height == 1
    row = s.row(0, named=True)
    with duckdb.connect(str(sample_db), read_only=True) as con:
        ((stored,),) = con.sql("SELECT count(*) FROM events").fetchall()
    assert row["events"] == stored > 43_000
    assert row["orders"] == 4_228
    assert row["traders"] == 24 and row["clients"] == 6
    assert row["ratings"] > 0 and row["quarantined"] > 0
    assert s.schema["first_event"] == pl.Datetime("us", "UTC")


@pytest.fixture
def new_york() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_connect_is_read_only_and_utc_on_any_machine(sample_db: Path, new_york: None) -> None:
    con = connect(sample_db)
    try:
        assert con.sql("SELECT current_setting('TimeZone')").fetchall()[0][0] == "UTC"
        day = con.sql("SELECT (TIMESTAMPTZ '2026-11-02 02:00:00+00')::DATE::VARCHAR").fetchall()[0][
            0
        ]
        assert day == "2026-11-02"  # New York would say 11-01
        with pytest.raises(Exception, match="read-only"):
            con.execute("CREATE TABLE x (i INTEGER)")
    finally:
        con.close()
    with pytest.raises(FileNotFoundError):
        connect(sample_db.parent / "missing.duckdb")
