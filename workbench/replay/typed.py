"""The typed payload tables (``payload_<stream>``, :mod:`.schema`) kept equal to ``events``.

Whatever writes ``events`` writes these in the same transaction: :func:`add` decodes the
payloads of rows just stored (each parsed once, :func:`.payload_types.decode_sql`), :func:`remove`
takes out the rows of events removed (displaced by a conflicting copy), and :func:`sync` makes
the tables equal to ``events`` from scratch (a database written before they existed, a test that
edits ``events`` by hand). Only events the decoder accepted are in ``events``, so every decode is
of a valid payload.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from .payload_types import decode_sql
from .schema import PAYLOAD_TABLES


def _exec(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> None:
    con.execute(sql, params or []).fetchall()


def add(con: duckdb.DuckDBPyConnection, rows: str) -> None:
    """Decode and store the payloads of ``rows`` (a relation with the columns of ``events``,
    rows that are stored in ``events`` and not yet in the typed tables). Only the streams
    ``rows`` holds are decoded (a live batch seldom has all of them: a statement saved each)."""
    present = {r[0] for r in con.execute(f"SELECT DISTINCT stream FROM {rows}").fetchall()}
    for stream, table in PAYLOAD_TABLES.items():
        if stream in present:
            _exec(con, f"INSERT INTO {table.name} ({table.column_list}) {decode_sql(stream, rows)}")


def remove(con: duckdb.DuckDBPyConnection, event_ids: Iterable[str]) -> None:
    """Take out the typed rows of events removed from ``events``."""
    ids = sorted(set(event_ids))
    if not ids:
        return
    for table in PAYLOAD_TABLES.values():
        _exec(con, f"DELETE FROM {table.name} WHERE event_id IN (SELECT unnest(?))", [ids])


def clear(con: duckdb.DuckDBPyConnection) -> None:
    for table in PAYLOAD_TABLES.values():
        _exec(con, f"DELETE FROM {table.name}")


def add_missing(con: duckdb.DuckDBPyConnection) -> None:
    """Decode and store the payloads of the stored events that have no typed row yet."""
    for stream, table in PAYLOAD_TABLES.items():
        rows = (
            f"(SELECT * FROM events e WHERE e.stream = '{stream}' "
            f"AND e.event_id NOT IN (SELECT event_id FROM {table.name}))"
        )
        _exec(con, f"INSERT INTO {table.name} ({table.column_list}) {decode_sql(stream, rows)}")


def sync(con: duckdb.DuckDBPyConnection) -> None:
    """Make the typed tables the decoding of exactly the stored events, from scratch."""
    clear(con)
    add(con, "events")


def missing(con: duckdb.DuckDBPyConnection) -> bool:
    """Events are stored but no typed row is (a database written before the typed tables)."""
    if not con.execute("SELECT 1 FROM events LIMIT 1").fetchall():
        return False
    return not any(
        con.execute(f"SELECT 1 FROM {t.name} LIMIT 1").fetchall() for t in PAYLOAD_TABLES.values()
    )
