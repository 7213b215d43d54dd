"""open_database replays only when the database is missing or an older workbench wrote it;
connect is UTC whatever the machine."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest

from workbench.notebook import connect, database_summary, open_database
from workbench.replay import store


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


def test_a_database_an_older_workbench_wrote_is_brought_up_to_date(
    sample_db: Path, sample_export: Path, tmp_path: Path
) -> None:
    """An analyst's database from before a table or column was added: opened with its export,
    it is replayed into once more (nothing new), so the notebook's audit can read it."""
    old = tmp_path / "old.duckdb"
    shutil.copy(sample_db, old)
    with duckdb.connect(str(old)) as con:
        want = con.sql("SELECT * FROM order_attempts ORDER BY ALL").fetchall()
        added = ("assigned_pos", "accepted_event_id", "end_event_id", "end_pos", "review_event_id")
        for column in (*added, "review_pos"):  # what a later workbench added, all at once
            con.execute(f"ALTER TABLE order_attempts DROP COLUMN {column}")
        con.execute("ALTER TABLE payload_trader DROP COLUMN correlation_id")
    assert open_database(old) == old  # no export: left as it is
    with duckdb.connect(str(old), read_only=True) as con:
        assert store.out_of_date(con) == ["payload_trader", "order_attempts"]
    half = tmp_path / "half.duckdb"  # the columns added, the rows not rebuilt yet
    shutil.copy(old, half)
    with duckdb.connect(str(half)) as con:
        store.create_schema(con)
        assert store.out_of_date(con) == ["order_attempts"]
    assert open_database(old, sample_export) == old
    with duckdb.connect(str(old), read_only=True) as con:
        assert store.out_of_date(con) == []
        assert con.sql("SELECT * FROM order_attempts ORDER BY ALL").fetchall() == want


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
