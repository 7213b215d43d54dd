"""What was imported and what was refused, as frames: ``workbench statements list`` and
``workbench statements quarantine`` print them, a notebook can use them as they are.

Read from the analyst database opened read only for a moment (never from a reader snapshot: an
import just done is seen at once). A database where nothing was imported yet gives empty frames.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from . import schema

_FILE_COLUMNS = (
    "imported_at",
    "path",
    "format",
    "period_from",
    "period_to",
    "lines_in",
    "stored",
    "duplicates",
    "quarantined",
    "conflicts",
    "file_sha256",
)
_REFUSED_COLUMNS = ("path", "line_no", "reason", "field", "detail", "raw", "file_sha256")


def files(db: str | Path) -> pl.DataFrame:
    """Every imported file (one row per distinct content), oldest first, with its period and
    where its lines went (``lines_in = stored + duplicates + quarantined + conflicts``)."""
    return _query(
        db,
        f"SELECT {', '.join(_FILE_COLUMNS)} FROM statement_files ORDER BY imported_at, path",
        _FILE_COLUMNS,
    )


def refused(db: str | Path) -> pl.DataFrame:
    """Every line not stored but kept: quarantined lines with their reason, then conflicts
    (reason ``conflict``: a line id already stored with other content; ``field`` is the line
    id, the stored line's file is in ``detail``), by file and line."""
    return _query(
        db,
        """SELECT path, line_no, reason, field, detail, raw, file_sha256 FROM (
            SELECT q.path, q.line_no, q.reason, q.field, q.detail, q.raw, q.file_sha256, 0 AS k
            FROM statement_quarantine q
            UNION ALL
            SELECT f.path, c.line_no, 'conflict', c.line_id,
                   'line id ' || c.line_id || ' is stored from ' || coalesce(k.path, '?')
                   || ' (' || left(c.kept_file_sha256, 12) || ') with other content; that one stays',
                   c.raw, c.file_sha256, 1
            FROM statement_conflicts c
            LEFT JOIN statement_files f ON f.file_sha256 = c.file_sha256
            LEFT JOIN statement_files k ON k.file_sha256 = c.kept_file_sha256
        ) ORDER BY path, file_sha256, k, line_no""",
        _REFUSED_COLUMNS,
    )


def _query(db: str | Path, sql: str, columns: tuple[str, ...]) -> pl.DataFrame:
    from ..replay import readers, snapshots

    path = Path(db)
    analyst = snapshots.analyst_db(path)
    if not path.exists() and not analyst.exists():
        raise FileNotFoundError(f"{path}: no such database")
    empty = pl.DataFrame(schema={c: pl.String for c in columns})
    if not analyst.exists():
        return empty
    con = readers.analyst_reader(path)
    try:
        have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if not set(schema.TABLES) <= have:  # the importer makes all of them at once
            return empty
        frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    finally:
        con.close()
    assert isinstance(frame, pl.DataFrame)
    return frame
