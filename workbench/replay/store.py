"""The DuckDB side of replay: the schema, writing projections, content hashes, reading back.

An adapter at the edge: it knows tables and SQL, not business rules (those are the domain's).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import DatabaseBusy, busy_from
from .payload_types import PAYLOAD_ENVELOPE
from .schema import BY_NAME, JUDGED_BY_FULL_BUILD, PAYLOAD_TABLES, PROJECTIONS, TABLES, Table

# DuckDB column types → Arrow types, for handing rows over as Arrow tables (fast, exact).
_ARROW: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "SMALLINT": pa.int16(),
    "BOOLEAN": pa.bool_(),
    "DOUBLE": pa.float64(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "DECIMAL(18,6)": pa.decimal128(18, 6),
    "VARCHAR[]": pa.list_(pa.string()),
}


class FollowerWrites(DatabaseBusy):
    """A writer refused because a live follower writes the database (exit 3, database busy)."""

    def __init__(self, path: Path, pid: int, url: str, stream: str) -> None:
        super().__init__(path, f"PID {pid}: a follower of {url} stream {stream}", pid)
        RuntimeError.__init__(
            self,
            f"{path} is written by a live follower (PID {pid}, {url} stream {stream}); readers "
            "can open it meanwhile, but a replay cannot write it: stop the follower first, or "
            "replay into another database",
        )


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW[c.type]) for c in table.columns])


def connect(
    db: str | Path,
    read_only: bool = False,
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
    create_tables: bool | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a replay database: the one way every part of the workbench opens one (replay, the
    stream, the audit, notebooks, calibration), so each sees it alike: time zone UTC (a
    timestamp without a zone is UTC by contract, and a day is a UTC day whatever the machine's
    zone), DuckDB's memory cap and threads where given, the tables created for a writer unless
    ``create_tables`` is false (an audit must not turn a stray file into an empty database).

    A reader (``read_only``) gets an in-memory connection with the newest read snapshot a
    follower published attached (or the file itself where none did), so it never waits for a
    follower nor stops one (:mod:`.readers`). A writer raises
    :class:`~workbench.errors.DatabaseBusy` (naming the holder's PID where DuckDB says, or the
    follower that writes the file) if another process holds it."""
    path = Path(db)
    if read_only:
        # a reader: the newest snapshot a follower published, or the file itself (readers.py)
        from . import readers

        con = readers.connect(path)
        configure(con, memory_limit=memory_limit, threads=threads)
        return con
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _open_writer(path)
    configure(con, memory_limit=memory_limit, threads=threads)
    if create_tables if create_tables is not None else not read_only:
        create_schema(con)
    return con


def _open_writer(path: Path) -> duckdb.DuckDBPyConnection:
    """Open ``path`` to write. A reader copying it into a snapshot holds it for a moment (see
    :func:`.snapshots.seed`): wait for that; any writer, or a reader that holds the file itself,
    is named at once or after the wait."""
    from . import readers, snapshots

    deadline = time.monotonic() + readers.WAIT
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:  # another process holds the file: say which
            refused = _refused(exc, path)
            if refused is exc:
                raise
            if snapshots.write_holder(path) is not None or time.monotonic() >= deadline:
                raise refused from exc
            time.sleep(0.05)


def _refused(exc: duckdb.IOException, path: Path) -> BaseException:
    """Why a writer cannot open ``path``: a follower that writes it (named from its status
    file), another process (named by DuckDB), or DuckDB's own error."""
    busy = busy_from(exc, path)
    if busy is None:
        return exc
    from . import snapshots

    follower = snapshots.read_status(path)
    if follower is not None and follower.stopped_at is None and follower.pid == busy.pid:
        return FollowerWrites(path, follower.pid, follower.url, follower.stream)
    return busy


def configure(
    con: duckdb.DuckDBPyConnection, *, memory_limit: str | None = None, threads: int | None = None
) -> None:
    """The session settings every workbench connection has (see :func:`connect`)."""
    con.execute("SET TimeZone = 'UTC'").fetchall()
    if memory_limit is not None:
        con.execute(f"SET memory_limit = '{memory_size(memory_limit)}'").fetchall()
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}").fetchall()


def memory_size(text: str) -> str:
    """A DuckDB memory size, checked (it is put into a SET statement)."""
    if not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", text.strip()):
        raise ValueError(f"memory limit {text!r} is not a size such as 1200MB or 2GiB")
    return text.strip()


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Every table, and the columns a later workbench added to a table an older one made
    (appended, so every insert names its columns): an envelope column of a typed payload table
    is filled from its event at once; a projection's is NULL until the replay rebuilds it
    (``incremental._state_missing``)."""
    have: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main' "
        "AND database_name = current_database()"
    ).fetchall():
        have.setdefault(str(table), set()).add(str(column))
    payloads = {t.name for t in PAYLOAD_TABLES.values()}
    for t in TABLES:
        con.execute(t.ddl()).fetchall()
        for c in t.columns if t.name in have else ():
            if c.name not in have[t.name]:
                con.execute(f'ALTER TABLE {t.name} ADD COLUMN "{c.name}" {c.type}').fetchall()
                if t.name in payloads and c.name in PAYLOAD_ENVELOPE:  # from its event, once
                    con.execute(
                        f'UPDATE {t.name} p SET "{c.name}" = e."{c.name}" FROM events e '
                        "WHERE e.event_id = p.event_id"
                    ).fetchall()


#: Tables a later workbench added, each with the stored rows it derives from: a database written
#: before the table existed has those rows and an empty table, which a full build fills.
ADDED_LATER: dict[str, str] = {
    "trader_holds": "SELECT event_id FROM events WHERE stream = 'trader' AND kind IN "
    "('trader.hold_placed', 'trader.hold_released', 'trader.hold_captured')",
    "order_reviews": "SELECT event_id FROM payload_payment_order "
    "WHERE kind = 'payment_order.review_started'",
}

#: Columns a later workbench added to a projection, each as a condition that holds on a row an
#: older one wrote (the columns added then, NULL where the rule never leaves them so).
COLUMNS_ADDED_LATER: dict[str, str] = {
    "order_attempts": "assigned_pos IS NULL",
}


def not_rebuilt(con: duckdb.DuckDBPyConnection, batch: str | None = None) -> list[str]:
    """The tables a later workbench added (:data:`ADDED_LATER`, :data:`COLUMNS_ADDED_LATER`)
    that hold what an older one wrote: empty though what they derive from is stored (before the
    replay's ``batch``, a relation of events, where one is being applied), or with a row that
    lacks the added columns. Until a full build fills them, the replay makes one and the audit
    refuses the database."""
    out = [
        table
        for table, old_row in COLUMNS_ADDED_LATER.items()
        if con.execute(f"SELECT 1 FROM {table} WHERE {old_row} LIMIT 1").fetchall()
    ]
    for table, sources in ADDED_LATER.items():
        if con.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall():
            continue
        before = (
            f"({sources})" if batch is None else f"({sources}) s ANTI JOIN {batch} USING (event_id)"
        )
        if con.execute(f"SELECT 1 FROM {before} LIMIT 1").fetchall():
            out.append(table)
    return out


def out_of_date(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The typed payload tables, projections and stored judgments this workbench writes that
    ``con``'s database lacks, has without a column it writes, or has with rows an older workbench wrote
    (:func:`not_rebuilt`): a replay into it brings them up to date (:func:`create_schema`)."""
    columns = {
        (str(t), str(c))
        for t, c in con.execute("SELECT table_name, column_name FROM duckdb_columns()").fetchall()
    }
    tables = {t for t, _ in columns}
    missing = [
        t.name
        for t in (*PAYLOAD_TABLES.values(), *PROJECTIONS, *JUDGED_BY_FULL_BUILD)
        if t.name not in tables or any((t.name, c.name) not in columns for c in t.columns)
    ]
    return missing or not_rebuilt(con)


def rows_to_arrow(table: Table, rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    columns: list[Sequence[Any]] = (
        list(zip(*rows, strict=True)) if rows else [[] for _ in table.columns]
    )
    schema = arrow_schema(table)
    return pa.Table.from_arrays(
        [pa.array(list(col), type=f.type) for col, f in zip(columns, schema, strict=True)],
        schema=schema,
    )


def replace_rows(
    con: duckdb.DuckDBPyConnection, table: Table, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Replace a table's content (inside the caller's transaction)."""
    con.execute(f"DELETE FROM {table.name}").fetchall()
    append_rows(con, table, rows)


def append_rows(
    con: duckdb.DuckDBPyConnection, table: Table, rows: Sequence[tuple[Any, ...]] | pa.Table
) -> None:
    data = rows if isinstance(rows, pa.Table) else rows_to_arrow(table, rows)
    if data.num_rows == 0:
        return
    con.register("_incoming", data)
    try:
        cols = table.column_list
        con.execute(f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM _incoming").fetchall()
    finally:
        con.unregister("_incoming")


def content_hash(con: duckdb.DuckDBPyConnection, table: Table) -> str:
    """A fingerprint of a table's rows that does not depend on their order.

    Each row is hashed by DuckDB's own 64-bit hash of its values (the DuckDB version is pinned by
    the lock file, and the code version is stored beside the hashes); the hashes are summed as
    128-bit integers with the row count, and the SHA-256 of those two numbers is the
    fingerprint. A sum needs no sort, is the same in any row order, and still counts a repeated
    row twice. (Rendering each row as text and hashing it with MD5 gave the same guarantees 40
    times slower.)
    """
    row = one(
        con,
        f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM {table.name} t",
    )
    return hashlib.sha256(f"{row[0]}:{row[1]}".encode()).hexdigest()


def projection_hashes(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {t.name: content_hash(con, t) for t in PROJECTIONS}


def one(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> tuple[Any, ...]:
    """The single row of a query (DuckDB wants every result read to the end before the next)."""
    rows = con.execute(sql, params or []).fetchall()
    if len(rows) != 1:
        raise LookupError(f"expected one row, got {len(rows)}: {sql}")
    return tuple(rows[0])


def table(name: str) -> Table:
    return BY_NAME[name]
