"""Replay into DuckDB: nothing lost, incremental equals full, order-independent, crash-safe."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from workbench.cli import main
from workbench.export import ENVELOPE_SCHEMA
from workbench.generator import generate, read_truth
from workbench.replay import connect, rebuild, store
from workbench.replay.schema import PAYLOAD_TABLES
from workbench.sources import SourceError

ROOT = Path(__file__).resolve().parents[2]
ENGINES = pytest.mark.parametrize("engine", ["fold", "sql"])
FIXTURE = ROOT.parent / "shared" / "fixtures" / "platform-export-3d"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small planted history: 4 days, every anomaly, several partitions."""
    base = tmp_path_factory.mktemp("replay")
    generate(
        base / "export",
        seed=21,
        truth=base / "truth.csv",
        progress=False,
        days=4,
        orders_per_day=150,
        traders=10,
        clients=3,
    )
    return base / "export", base / "truth.csv"


def _rows(folder: Path) -> pa.Table:
    return ds.dataset(str(folder), format="parquet").to_table().select(ENVELOPE_SCHEMA.names)


def _hashes(db: Path) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT hashes FROM replay_runs ORDER BY run_id DESC LIMIT 1").fetchall()[
            0
        ]
        assert row is not None
        return dict(json.loads(row[0]))
    finally:
        con.close()


def _write_split(table: pa.Table, folder: Path, parts: int, seed: int) -> None:
    """The same rows, shuffled and split into ``parts`` files."""
    folder.mkdir(parents=True)
    order = list(range(table.num_rows))
    random.Random(seed).shuffle(order)
    shuffled = table.take(pa.array(order))
    size = -(-shuffled.num_rows // parts)
    for i in range(parts):
        pq.write_table(shuffled.slice(i * size, size), folder / f"chunk-{i}.parquet")


@ENGINES
def test_fixture_replays_completely_with_no_violation(engine: str, tmp_path: Path) -> None:
    s = rebuild([FIXTURE], tmp_path / "f.duckdb", progress=False, engine=engine)
    assert s.balanced
    assert s.read == 3457 and s.duplicates == 8 and s.quarantined == 0
    assert s.applied == 3449
    assert s.violations == {}
    con = connect(tmp_path / "f.duckdb", read_only=True)
    assert con.execute("SELECT count(*) FROM events").fetchall()[0] == (3449,)
    assert con.execute("SELECT count(*) FROM payment_orders").fetchall()[0] == (307,)
    # Ledger money is conserved: every committed posting moves money between two accounts.
    assert con.execute("SELECT sum(own) FROM account_balances").fetchall()[0] == (0,)


@ENGINES
def test_nothing_lost_on_a_planted_history(
    engine: str, export: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, truth_path = export
    s = rebuild([folder], tmp_path / "p.duckdb", progress=False, engine=engine)
    rows = _rows(folder).num_rows
    assert s.read == rows
    assert s.read == s.applied + s.duplicates + s.quarantined
    truth = read_truth(truth_path)
    malformed = {t.event_id for t in truth if t.check == "MALFORMED_EVENT"}
    con = connect(tmp_path / "p.duckdb", read_only=True)
    quarantined = {
        r[0]
        for r in con.execute(
            "SELECT event_id FROM quarantine WHERE reason <> 'conflicting_duplicate'"
        ).fetchall()
    }
    assert quarantined == malformed
    # The conflicting copy of a delivered-twice event is kept in quarantine, raw, not dropped.
    same_id = {t.event_id for t in truth if t.variant == "duplicate_id"}
    conflicted = {
        r[0]
        for r in con.execute(
            "SELECT event_id FROM quarantine WHERE reason = 'conflicting_duplicate'"
        ).fetchall()
    }
    assert conflicted == same_id
    for (raw,) in con.execute("SELECT raw FROM quarantine").fetchall():
        assert json.loads(raw)["event_id"]


@ENGINES
def test_redelivered_export_changes_nothing(
    engine: str, export: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, _ = export
    db = tmp_path / "r.duckdb"
    first = rebuild([folder], db, progress=False, engine=engine)
    again = rebuild(
        [folder, folder], db, progress=False, engine=engine
    )  # overlapping sources: all redelivery
    assert again.applied == 0
    assert again.balanced
    assert again.hashes == first.hashes
    assert again.total_events == first.total_events


@ENGINES
def test_files_already_taken_in_are_not_read_again(
    engine: str, export: tuple[Path, Path], tmp_path: Path
) -> None:
    """Bytes this database took in (same SHA-256, same code) are recognised, not judged again;
    a file whose bytes changed is read; ``reread`` and a full replay read everything."""
    folder, _ = export
    db = tmp_path / "r.duckdb"
    first = rebuild([folder], db, progress=False, engine=engine)
    again = rebuild([folder], db, progress=False, engine=engine)
    assert (again.applied, again.duplicates, again.quarantined) == (0, 0, 0)
    assert again.unchanged == again.read == first.read and again.balanced
    assert again.hashes == first.hashes
    # one file rewritten with its rows in another order: other bytes, the same events
    day = sorted(folder.rglob("*.parquet"))[0]
    table = pq.read_table(day)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    target = copy / day.relative_to(folder)
    pq.write_table(table.take(list(reversed(range(table.num_rows)))), target)
    moved = rebuild([copy], db, progress=False, engine=engine)
    assert moved.duplicates == table.num_rows and moved.applied == 0
    assert moved.unchanged == moved.read - table.num_rows
    judged = rebuild([folder], db, progress=False, engine=engine, reread=True)
    assert judged.unchanged == 0 and judged.duplicates + judged.quarantined == judged.read
    assert judged.hashes == first.hashes
    full = rebuild([folder], db, progress=False, engine=engine, full=True)
    assert full.unchanged == 0 and full.hashes == first.hashes


@ENGINES
def test_incremental_equals_full(engine: str, export: tuple[Path, Path], tmp_path: Path) -> None:
    folder, _ = export
    days = sorted(p for p in folder.iterdir() if p.name.startswith("date="))
    full = rebuild([folder], tmp_path / "full.duckdb", progress=False, engine=engine)
    db = tmp_path / "inc.duckdb"
    for day in days:  # one export a day, as an analyst would receive them
        s = rebuild([day], db, progress=False, engine=engine)
        assert s.balanced
    assert _hashes(db) == full.hashes
    con = connect(db, read_only=True)
    assert con.execute("SELECT count(*), max(run_id) FROM replay_runs").fetchall()[0] == (
        len(days),
        len(days),
    )


@ENGINES
def test_row_order_and_file_split_do_not_change_hashes(
    engine: str, export: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, _ = export
    base = rebuild([folder], tmp_path / "a.duckdb", progress=False, engine=engine)
    table = _rows(folder)
    _write_split(table, tmp_path / "split3", parts=3, seed=1)
    _write_split(table, tmp_path / "split7", parts=7, seed=2)
    assert (
        rebuild([tmp_path / "split3"], tmp_path / "b.duckdb", progress=False, engine=engine).hashes
        == base.hashes
    )
    assert (
        rebuild([tmp_path / "split7"], tmp_path / "c.duckdb", progress=False, engine=engine).hashes
        == base.hashes
    )


def test_run_record_names_its_sources(export: tuple[Path, Path], tmp_path: Path) -> None:
    folder, _ = export
    s = rebuild([folder], tmp_path / "rr.duckdb", progress=False)
    con = connect(tmp_path / "rr.duckdb", read_only=True)
    row = con.execute(
        "SELECT sources, events_read, applied, duplicates, quarantined, code_version, hashes FROM replay_runs"
    ).fetchall()[0]
    assert row is not None
    sources = json.loads(row[0])
    assert len(sources) == len(list(folder.rglob("*.parquet")))
    assert all(len(x["sha256"]) == 64 for x in sources)
    assert row[1:5] == (s.read, s.applied, s.duplicates, s.quarantined)
    assert row[5].startswith("0.1.0+")
    assert set(json.loads(row[6])) == {
        "clients",
        "traders",
        "payment_orders",
        "order_attempts",
        "order_reviews",
        "receipts",
        "payouts",
        "ledger_plans",
        "ledger_postings",
        "account_balances",
        "trader_ratings",
        "violations",
    }


def _malformed_file(path: Path, base: pa.Table, changes: list[dict[str, object]]) -> list[str]:
    rows = base.slice(0, len(changes)).to_pylist()
    ids = []
    for i, (row, change) in enumerate(zip(rows, changes, strict=True)):
        row.update(change)
        row["event_id"] = f"bad-{i:02d}"
        row["position"] = 10**12 + i
        ids.append(row["event_id"])
    pq.write_table(pa.Table.from_pylist(rows, schema=ENVELOPE_SCHEMA), path)
    return ids


@ENGINES
def test_malformed_input_of_every_sort_is_quarantined_or_a_clear_error(
    engine: str, tmp_path: Path
) -> None:
    base = _rows(FIXTURE).filter(pa.compute.equal(_rows(FIXTURE)["kind"], "payment_order.created"))
    bad = tmp_path / "bad"
    bad.mkdir()
    ids = _malformed_file(
        bad / "bad.parquet",
        base,
        [
            {"payload": '{"client_id": '},  # bad JSON
            {"kind": "payment_order.teleported"},  # unknown kind
            {"schema_version": 9},  # unknown version
            {
                "schema_version": 1,
                "payload": '{"client_id":"c","direction":"payin","client_ref":"r","expires_at":"2026-11-01T00:00:00Z","currency":"RUB"}',
            },  # missing amount
            {
                "schema_version": 1,
                "payload": '{"client_id":"c","direction":"payin","amount":"100","currency":"RUB","client_ref":"r","expires_at":"2026-11-01T00:00:00Z"}',
            },  # wrong type
        ],
    )
    # A file without the payload column: its rows are kept whole in quarantine.
    no_payload = base.slice(0, 2).drop_columns(["payload"]).to_pylist()
    for i, r in enumerate(no_payload):
        r["event_id"] = f"nopayload-{i}"
    pq.write_table(pa.Table.from_pylist(no_payload), bad / "no_payload.parquet")
    s = rebuild([FIXTURE, bad], tmp_path / "m.duckdb", progress=False, engine=engine)
    assert s.balanced
    con = connect(tmp_path / "m.duckdb", read_only=True)
    got = dict(con.execute("SELECT event_id, reason FROM quarantine").fetchall())
    assert got == {
        ids[0]: "bad_json",
        ids[1]: "unknown_kind",
        ids[2]: "unknown_version",
        ids[3]: "missing_field",
        ids[4]: "wrong_type",
        "nopayload-0": "bad_envelope",
        "nopayload-1": "bad_envelope",
    }
    errors = [r[0] for r in con.execute("SELECT error FROM quarantine").fetchall()]
    assert all(("bad-" in e or "payload" in e) for e in errors)
    # A file that is not Parquet is a clear error, and nothing is written.
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "export.parquet").write_text("this is not parquet")
    with pytest.raises(SourceError, match="not a readable Parquet file"):
        rebuild([junk], tmp_path / "j.duckdb", progress=False, engine=engine)
    with pytest.raises(SourceError, match="no such file"):
        rebuild([tmp_path / "nothing-here"], tmp_path / "j.duckdb", progress=False, engine=engine)


def test_cli_replay(
    export: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = export
    assert main(["replay", str(folder), "--db", str(tmp_path / "cli.duckdb"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "nothing lost" in out and "payment_orders" in out
    assert main(["replay", str(tmp_path / "missing"), "--db", str(tmp_path / "cli.duckdb")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_connect_refuses_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="workbench replay"):
        connect(tmp_path / "none.duckdb", read_only=True)


KILL_SCRIPT = """
import sys
from workbench.replay import rebuild
rebuild([sys.argv[1]], sys.argv[2], progress=False, engine=sys.argv[3])
"""


@pytest.mark.slow
@ENGINES
def test_killed_run_resumes_to_the_same_state(engine: str, tmp_path: Path) -> None:
    # Five days of the sample (linked, so the runs read a folder): enough for a run to be killed
    # inside, and quicker for the per-event engine than the whole week.
    days = sorted(
        p for p in (ROOT / "data" / "sample_events").iterdir() if p.name.startswith("date=")
    )
    sample = tmp_path / "five-days"
    sample.mkdir()
    for d in days[:5]:
        (sample / d.name).symlink_to(d)
    reference = rebuild([sample], tmp_path / "ref.duckdb", progress=False)
    db = tmp_path / "killed.duckdb"
    # A first run finishes part of the history, then later runs are killed at several points.
    rebuild(days[:3], db, progress=False)
    # How long a whole run takes here, so the kills land inside one.
    scratch = tmp_path / "timing.duckdb"
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(sample), str(scratch), engine], check=True
    )
    duration = time.perf_counter() - t0
    rng = random.Random(0)
    killed = 0
    for _ in range(8):  # until two runs died mid-way (a machine under load varies the timing)
        if killed >= 2:
            break
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_SCRIPT, str(sample), str(db), engine], env={**os.environ}
        )
        time.sleep(rng.uniform(0.15, 0.7) * duration)
        proc.send_signal(signal.SIGKILL)
        # Count only runs that really died mid-way (one that had finished proves nothing).
        killed += proc.wait() == -signal.SIGKILL
    assert killed >= 2
    resumed = rebuild([sample], db, progress=False, engine=engine)
    assert resumed.balanced
    assert resumed.hashes == reference.hashes
    assert resumed.total_events == reference.total_events


def test_both_engines_give_the_same_database(export: tuple[Path, Path], tmp_path: Path) -> None:
    """The columnar ingest decides every row exactly as the per-event path does."""
    folder, _ = export
    fold = rebuild([folder], tmp_path / "fold.duckdb", progress=False, engine="fold")
    sql = rebuild([folder], tmp_path / "sql.duckdb", progress=False, engine="sql")
    assert sql.hashes == fold.hashes
    assert (sql.read, sql.applied, sql.duplicates, sql.conflicting, sql.quarantined) == (
        fold.read,
        fold.applied,
        fold.duplicates,
        fold.conflicting,
        fold.quarantined,
    )
    a, b = (
        connect(tmp_path / "fold.duckdb", read_only=True),
        connect(tmp_path / "sql.duckdb", read_only=True),
    )
    q = "SELECT event_id, reason, field, error FROM quarantine ORDER BY ALL"
    assert a.execute(q).fetchall() == b.execute(q).fetchall()
    e = "SELECT event_id, position, seq, kind, payload FROM events ORDER BY event_id"
    assert a.execute(e).fetchall() == b.execute(e).fetchall()


def test_a_database_without_the_reviews_gets_them_from_the_next_replay(
    export: tuple[Path, Path], tmp_path: Path
) -> None:
    """A database an older workbench wrote has no `order_reviews`: the audit refuses it (exit 2,
    naming the replay to run) instead of judging reviews it cannot see, and the next replay,
    though it brings nothing new, builds them: the same rows as a full replay's."""
    folder, _ = export
    db = tmp_path / "old.duckdb"
    rebuild([folder], db, progress=False)
    con = connect(db)
    want = con.execute("SELECT * FROM order_reviews ORDER BY ALL").fetchall()
    con.execute("DROP TABLE order_reviews")
    con.close()
    assert want
    assert main(["audit", "--db", str(db), "--no-record"]) == 2
    half = tmp_path / "half.duckdb"  # the table made, not yet built (a replay stopped there)
    shutil.copy(db, half)
    con = connect(half)
    assert store.out_of_date(con) == ["order_reviews"]
    con.close()
    assert main(["audit", "--db", str(half), "--no-record"]) == 2
    rebuild([folder], db, progress=False, reread=True)  # the same code: re-read on purpose
    con = connect(db, read_only=True)
    assert con.execute("SELECT * FROM order_reviews ORDER BY ALL").fetchall() == want
    con.close()


def test_a_database_whose_typed_payloads_lack_the_process_gets_it_from_the_next_replay(
    export: tuple[Path, Path], tmp_path: Path
) -> None:
    """An older workbench's typed payload tables have no `correlation_id` (PROCESS_BROKEN reads
    the steps' processes there): the audit refuses the database (exit 2), and the next replay,
    though it brings nothing new, adds the column, filled from each row's event: the same rows
    as a full replay's."""
    folder, _ = export
    db = tmp_path / "old.duckdb"
    rebuild([folder], db, progress=False)
    con = connect(db)
    tables = [t.name for t in PAYLOAD_TABLES.values()]
    want = {t: con.execute(f"SELECT * FROM {t} ORDER BY event_id").fetchall() for t in tables}
    for t in tables:
        con.execute(f"ALTER TABLE {t} DROP COLUMN correlation_id")
    con.close()
    assert any(r[7] is not None for r in want["payload_trader"])  # the column holds processes
    assert main(["audit", "--db", str(db), "--no-record"]) == 2
    rebuild([folder], db, progress=False, reread=True)  # the same code: re-read on purpose
    con = connect(db, read_only=True)
    for table in PAYLOAD_TABLES.values():  # in the schema's column order, as first written
        got = con.execute(
            f"SELECT {table.column_list} FROM {table.name} ORDER BY event_id"
        ).fetchall()
        assert got == want[table.name], table.name
    con.close()


def test_a_database_without_the_attempts_positions_gets_them_from_the_next_replay(
    export: tuple[Path, Path], tmp_path: Path
) -> None:
    """An older workbench's `order_attempts` has no positions, end or review events (the audit
    reads its attempts there): the audit refuses the database (exit 2), and the next replay adds
    the columns and fills them, though it brings nothing new: the same rows as a full
    replay's."""
    folder, _ = export
    db = tmp_path / "old.duckdb"
    rebuild([folder], db, progress=False)
    con = connect(db)
    want = con.execute("SELECT * FROM order_attempts ORDER BY ALL").fetchall()
    added = ("assigned_pos", "accepted_event_id", "end_event_id", "end_pos", "review_event_id")
    for column in (*added, "review_pos"):
        con.execute(f"ALTER TABLE order_attempts DROP COLUMN {column}")
    con.close()
    assert want
    assert main(["audit", "--db", str(db), "--no-record"]) == 2
    rebuild([folder], db, progress=False, reread=True)  # the same code: re-read on purpose
    con = connect(db, read_only=True)
    assert con.execute("SELECT * FROM order_attempts ORDER BY ALL").fetchall() == want
    con.close()
