"""Helpers of the statement import tests: a real DuckDB database to import beside, and the
statement tables read back with plain DuckDB (not through the importer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from workbench.replay.snapshots import analyst_db

Rows = list[dict[str, Any]]


_EMPTY: list[bytes] = []


def make_db(folder: Path) -> Path:
    """A real (empty) DuckDB file standing for a replayed database: statements live in the
    analyst database beside it and do not read its projections. Made once, then copied (a
    DuckDB file's creation is most of a small test's time)."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "book.duckdb"
    if not _EMPTY:
        duckdb.connect(str(db)).close()
        _EMPTY.append(db.read_bytes())
    else:
        db.write_bytes(_EMPTY[0])
    return db


ORDERS = {
    "statement_files": "ORDER BY file_sha256",
    "statement_lines": "ORDER BY line_id",
    "statement_quarantine": "ORDER BY file_sha256, line_no, reason",
    "statement_conflicts": "ORDER BY file_sha256, line_no",
}


def table(db: Path, name: str) -> Rows:
    """Every row of a statement table, as dicts (``booked_at`` as UTC ISO text)."""
    return everything(db)[name]


def everything(db: Path) -> dict[str, Rows]:
    """All four tables (each empty where nothing was imported), each in a fixed order, read
    through one read-only connection."""
    out: dict[str, Rows] = {name: [] for name in ORDERS}
    path = analyst_db(db)
    if not path.exists():
        return out
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        for name, order in ORDERS.items():
            if name not in tables:
                continue
            cols = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
            select = ", ".join(
                f"strftime({c} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%f') AS {c}"
                if c in ("booked_at", "imported_at")
                else c
                for c in cols
            )
            rows = con.execute(f"SELECT {select} FROM {name} {order}").fetchall()
            out[name] = [dict(zip(cols, r, strict=True)) for r in rows]
    finally:
        con.close()
    return out
