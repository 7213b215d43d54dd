"""Every command's failures: one line on stderr naming the real cause, and an exit code that
means one thing (0 done, 1 findings or a failed nothing-lost check, 2 bad input or usage,
3 database busy, 4 out of space). Real files, real DuckDB, real locks, a real full disk."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from workbench import connect
from workbench.cli import main
from workbench.errors import BAD_INPUT, BUSY, DEBUG_HINT, FINDINGS, NO_SPACE, DatabaseBusy, classify
from workbench.replay import engine, rebuild, store

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample_events"
DAY_ONE = SAMPLE / "date=2026-11-01"


def cli(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``workbench ARGS`` as a user runs it: a new process; its exit code, stdout and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "workbench.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={**os.environ, **(env or {})},
    )
    return done.returncode, done.stdout, done.stderr


def only_line(err: str) -> str:
    """The one line a failure prints on stderr (no traceback, nothing else)."""
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def events_in(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM events").fetchall()[0][0])
    finally:
        con.close()


# --- 1. a corrupt compressed page: bad input, naming the file ---------------------------------


def corrupt_export(folder: Path, where: str) -> Path:
    """A valid snappy-compressed export file (day one of the sample, one page per column), then
    ``where`` = "page": 64 bytes in the middle of the payload column's compressed data page
    overwritten; "header": that page's header overwritten."""
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "good.parquet"
    table = pq.read_table(DAY_ONE / "part-0.parquet")
    pq.write_table(
        table,
        good,
        compression="snappy",
        use_dictionary=False,
        row_group_size=1 << 20,
        data_page_size=1 << 26,
    )
    meta = pq.read_metadata(good)
    assert meta.num_row_groups == 1
    chunk = next(
        meta.row_group(0).column(i)
        for i in range(meta.num_columns)
        if meta.row_group(0).column(i).path_in_schema == "payload"
    )
    assert chunk.compression == "SNAPPY"
    data = bytearray(good.read_bytes())
    if where == "page":
        at = chunk.data_page_offset + chunk.total_compressed_size // 2
        data[at : at + 64] = b"\xff" * 64
    else:
        at = chunk.data_page_offset + 5
        data[at : at + 35] = b"\x00" * 35
    bad = folder / f"corrupt-{where}.parquet"
    bad.write_bytes(bytes(data))
    good.unlink()
    return bad


@pytest.mark.parametrize("where", ["page", "header"])
@pytest.mark.parametrize("engine_name", ["sql", "fold"])
def test_corrupt_parquet_page_is_bad_input_naming_the_file(
    tmp_path: Path, engine_name: str, where: str
) -> None:
    bad = corrupt_export(tmp_path / "export", where)
    # the corruption is real: neither reader gets through the file
    with pytest.raises(Exception):  # noqa: B017 (pyarrow says OSError or ArrowInvalid)
        pq.read_table(bad)
    with pytest.raises(duckdb.Error):
        duckdb.connect().execute("SELECT sum(hash(t)) FROM read_parquet(?) t", [str(bad)])

    db = tmp_path / "out.duckdb"
    code, out, err = cli("replay", bad, "--db", db, "--engine", engine_name, "--no-progress")
    line = only_line(err)
    assert code == BAD_INPUT, err
    assert line.startswith("workbench replay: ")
    assert str(bad) in line, line
    assert any(w in line.lower() for w in ("corrupt", "unreadable", "not a readable")), line
    assert out == ""
    assert not db.exists() or events_in(db) == 0  # nothing of the run was written


def test_corrupt_parquet_in_summary_is_bad_input(tmp_path: Path) -> None:
    bad = corrupt_export(tmp_path / "export", "page")
    code, _, err = cli("summary", tmp_path / "export")
    line = only_line(err)
    assert code == BAD_INPUT and str(bad) in line, err


def test_a_file_that_is_not_a_database_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "notes.duckdb"
    db.write_text("not a database\n" * 500)
    assert main(["audit", "--db", str(db)]) == BAD_INPUT
    line = only_line(capsys.readouterr().err)
    assert str(db) in line and "not a usable DuckDB database" in line, line


# --- 2. a database another process holds: busy, naming the holder -----------------------------

HOLD = (
    "import duckdb, sys, time\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('ok', flush=True)\n"
    "time.sleep(120)\n"
)


@contextmanager
def held(db: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process with ``db`` open read-write (DuckDB's lock on the file), until exit."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        if ready.strip() != "ok":
            pytest.fail(f"the lock holder did not start: {ready!r}")
        yield proc
    finally:
        proc.kill()
        proc.communicate(timeout=60)


def test_a_locked_database_is_busy_naming_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "held.duckdb"
    with held(db) as holder:
        pid = f"PID {holder.pid}"
        for args in (
            ["replay", "data/sample_events", "--db", db, "--no-progress"],
            ["audit", "--db", db],
            ["audit", "--db", db, "--no-record"],  # read-only
            ["reconcile", "--db", db],  # read-only
        ):
            code, _, err = cli(*args)
            line = only_line(err)
            assert code == BUSY, (args, err)
            assert line.startswith(f"workbench {args[0]}: database busy: {db}"), line
            assert pid in line, line

        with pytest.raises(DatabaseBusy) as busy:
            connect(str(db), read_only=True)
        assert busy.value.pid == holder.pid
        assert busy.value.path == db
        assert pid in str(busy.value)
        assert isinstance(busy.value, RuntimeError)
        assert classify(busy.value).code == BUSY
    # once the holder is gone the database opens again
    connect(str(db), read_only=True).close()


# --- 3. a full disk: out of space, naming where -------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``mount(size)``: a new tmpfs of ``size`` bytes (root only); unmounted afterwards."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("no mount/umount command here")
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(where)
        return where

    try:
        yield mount
    finally:
        for where in reversed(mounted):
            if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(where)], capture_output=True)


def assert_disk_full(code: int, err: str, disk: Path) -> str:
    line = only_line(err)  # the last line, and the only one, is the real cause
    assert code == NO_SPACE, err
    assert "disk full" in line and "No space left on device" in line, line
    assert str(disk) in line, line
    assert "cannot rollback" not in err and "no transaction is active" not in err, err
    return line


@pytest.mark.parametrize("engine_name", ["sql", "fold"])
def test_a_full_disk_leaves_the_last_run_readable(
    tmp_path: Path, small_disk: Callable[[int], Path], engine_name: str
) -> None:
    """Day one replayed on a roomy disk and copied onto a disk with 1 MiB to spare; replaying
    the whole sample there fills it: exit 4 naming the disk, and the database still holds
    exactly day one (same events, same run, same projection hashes)."""
    first = tmp_path / "first.duckdb"
    day_one = rebuild([DAY_ONE], first, progress=False)
    con = store.connect(first, read_only=True)
    try:
        hashes = store.projection_hashes(con)
    finally:
        con.close()

    disk = small_disk(first.stat().st_size + (1 << 20))
    db = disk / "replay.duckdb"
    shutil.copyfile(first, db)
    code, out, err = cli(
        "replay", "data/sample_events", "--db", db, "--engine", engine_name, "--no-progress"
    )
    assert_disk_full(code, err, disk)
    assert out == ""

    con = store.connect(db, read_only=True)
    try:
        assert store.one(con, "SELECT count(*) FROM events")[0] == day_one.total_events
        assert store.one(con, "SELECT max(run_id) FROM replay_runs")[0] == 1
        assert store.projection_hashes(con) == hashes
    finally:
        con.close()


def test_a_full_disk_on_a_new_database(tmp_path: Path, small_disk: Callable[[int], Path]) -> None:
    disk = small_disk(2 << 20)
    db = disk / "new.duckdb"
    code, _, err = cli("replay", "data/sample_events", "--db", db, "--no-progress")
    assert_disk_full(code, err, disk)
    if db.exists():  # readable, and empty: never half-written
        assert events_in(db) == 0


def test_the_error_of_a_failed_rollback_is_not_the_cause(
    small_disk: Callable[[int], Path],
) -> None:
    """DuckDB's own chain: a COMMIT that hit the full disk, then "cannot rollback - no
    transaction is active" raised while handling it. The first one is reported."""
    disk = small_disk(2 << 20)
    con = duckdb.connect(str(disk / "fill.duckdb"))
    try:
        with pytest.raises(duckdb.Error) as raised:
            try:
                con.execute("BEGIN TRANSACTION")
                con.execute(
                    "CREATE TABLE t AS SELECT range AS i, md5(range::VARCHAR) AS s "
                    "FROM range(300000)"
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
    finally:
        con.close()
    assert "cannot rollback" in str(raised.value)  # the outermost error is the secondary one
    failure = classify(raised.value)
    assert failure.code == NO_SPACE
    assert str(disk) in failure.message and "No space left on device" in failure.message


def test_no_room_for_temporary_files_is_out_of_space(
    tmp_path: Path, small_disk: Callable[[int], Path]
) -> None:
    """DuckDB caps its spill files at the free space of their disk and reports an "Out of
    Memory Error" naming max_temp_directory_size when they fill it: out of space too."""
    disk = small_disk(2 << 20)
    con = duckdb.connect(
        str(tmp_path / "sort.duckdb"),
        config={"temp_directory": str(disk / "tmp"), "memory_limit": "40MB", "threads": 1},
    )
    try:
        with pytest.raises(duckdb.OutOfMemoryException) as raised:
            con.execute(
                "CREATE TABLE s AS SELECT md5(range::VARCHAR) || md5((range * 7)::VARCHAR) AS s "
                "FROM range(3000000) ORDER BY s"
            )
    finally:
        con.close()
    failure = classify(raised.value)
    assert failure.code == NO_SPACE
    assert "temporary files" in failure.message and "\n" not in failure.message


def test_an_os_error_for_a_full_disk() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "/data/out.duckdb.tmp/spill-0")
    try:
        try:
            raise full
        except OSError:
            raise RuntimeError("cleanup failed") from None
    except RuntimeError as exc:
        failure = classify(exc)
    assert failure.code == NO_SPACE
    assert "/data/out.duckdb.tmp/spill-0" in failure.message


# --- 4. findings / nothing-lost stay 1; usage is 2; the unexpected is one line -----------------


def test_a_failed_nothing_lost_check_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The engine's own check fails (forced: its counts never disagree on real data): exit 1,
    one line, and the run is rolled back."""
    monkeypatch.setattr(engine.ReplaySummary, "balanced", property(lambda self: False))
    db = tmp_path / "out.duckdb"
    code = main(["replay", str(DAY_ONE), "--db", str(db), "--no-progress"])
    line = only_line(capsys.readouterr().err)
    assert code == FINDINGS
    assert line.startswith("workbench replay: nothing-lost check failed"), line
    assert DEBUG_HINT not in line
    assert events_in(db) == 0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["replay", "data/sample_events", "--db", "x.duckdb", "--bogus"], "--bogus"),
        (["replay", "data/sample_events", "--db", "x.duckdb", "--engine", "nope"], "nope"),
        (["replay", "data/sample_events"], "--db"),
        (["audit"], "--db"),
        (["generate", "out", "--days", "0"], "must be at least 1"),
        (["nonsense"], "nonsense"),
    ],
)
def test_a_usage_error_exits_2_in_one_line(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == BAD_INPUT
    line = only_line(capsys.readouterr().err)
    assert says in line and "--help" in line, line


def test_a_usage_error_from_the_shell(tmp_path: Path) -> None:
    code, out, err = cli("audit", "--db", tmp_path / "x.duckdb", "--format", "yaml")
    assert code == BAD_INPUT and out == ""
    assert "invalid choice: 'yaml'" in only_line(err)


def test_bad_input_still_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "missing"), "--db", str(tmp_path / "x.duckdb")]) == 2
    assert "no such file" in only_line(capsys.readouterr().err)
    assert main(["audit", "--db", str(tmp_path / "x.duckdb"), "--format", "parquet"]) == 2
    assert "--format parquet needs --out" in only_line(capsys.readouterr().err)


def test_an_unexpected_error_is_one_line_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import workbench.summary

    def broken(sources: object) -> object:
        raise RuntimeError("the summary broke\n  on a second line")

    monkeypatch.setattr(workbench.summary, "summarize", broken)
    monkeypatch.delenv("WORKBENCH_DEBUG", raising=False)
    assert main(["summary", "data/sample_events"]) == 1
    line = only_line(capsys.readouterr().err)
    assert line == (
        f"workbench summary: RuntimeError: the summary broke on a second line ({DEBUG_HINT})"
    )

    monkeypatch.setenv("WORKBENCH_DEBUG", "1")
    assert main(["summary", "data/sample_events"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1] == line


def test_ctrl_c_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import workbench.summary

    def interrupted(sources: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(workbench.summary, "summarize", interrupted)
    assert main(["summary", "data/sample_events"]) == 130
    assert only_line(capsys.readouterr().err) == "workbench summary: interrupted"


def test_an_audit_of_a_database_no_replay_finished_into_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed replay leaves the tables and no run: "0 findings, exit 0" would be a lie."""
    db = tmp_path / "empty.duckdb"
    store.connect(db).close()  # what a replay that failed before its first commit leaves
    assert main(["audit", "--db", str(db), "--no-record"]) == BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no replay has completed" in err[0]
    bare = tmp_path / "bare.duckdb"
    duckdb.connect(str(bare)).close()  # a DuckDB file that is not a workbench database
    assert main(["audit", "--db", str(bare)]) == BAD_INPUT
    assert (
        not connect(str(bare), read_only=True).execute("SELECT * FROM duckdb_tables()").fetchall()
    )  # and the audit did not turn it into one
