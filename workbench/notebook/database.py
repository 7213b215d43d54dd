"""The database a notebook works on: opened as it is, or replayed from an export when missing
or written by an older workbench."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl

from ..replay import store


def open_database(db: str | Path, export: str | Path | None = None) -> Path:
    """The replayed database ``db``; when it does not exist yet, or an older workbench wrote it
    (without tables or columns this one's checks read), ``export`` (files or a directory of the
    platform's Parquet export) is replayed into it first.

    Quiet either way, so a notebook shows the same output whether it found the database or
    made it; :func:`database_summary` says what is in it. Raises :class:`FileNotFoundError`
    when ``db`` is missing and there is no ``export`` to make it from, and :class:`RuntimeError`
    when the replay's nothing-lost check fails."""
    path = Path(db)
    if path.exists():
        if export is not None and Path(export).exists() and out_of_date(path):
            from ..replay.engine import rebuild

            # the same export again: nothing new, but the tables and columns added (reread: the
            # files are judged again even where this code took them in before)
            rebuild([Path(export)], path, progress=False, reread=True)
        return path
    if export is None:
        raise FileNotFoundError(f"{path}: no such database, and no export given to replay into it")
    source = Path(export)
    if not source.exists():
        raise FileNotFoundError(f"{path}: no such database, and no export at {source} to replay")
    from ..replay.engine import rebuild

    path.parent.mkdir(parents=True, exist_ok=True)
    # Built beside it and renamed into place: nobody opens a half-built database, and two
    # notebooks making it at once do not trip over DuckDB's lock (the last rename wins).
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        summary = rebuild([source], partial, progress=False)
        if not summary.balanced:  # pragma: no cover - the replay's own check; kept loud
            raise RuntimeError(f"replay of {source} into {path} lost events:\n{summary}")
        os.replace(partial, path)
    finally:
        for leftover in (partial, partial.with_name(partial.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return path


def out_of_date(path: Path) -> bool:
    """An older workbench wrote ``path``: it lacks tables or columns this one's checks read."""
    con = store.connect(path, read_only=True)  # as every reader: never in a writer's way
    try:
        return bool(store.out_of_date(con))
    finally:
        con.close()


def connect(db: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to ``db`` whose session time zone is UTC, so that days
    (``TIMESTAMPTZ::DATE``) and the time zone of the frames it returns do not depend on the
    machine's local time zone."""
    path = Path(db)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such database")
    return store.connect(path, read_only=True)


SUMMARY_SQL = """
SELECT
    (SELECT count(*) FROM events) AS events,
    (SELECT count(*) FROM quarantine) AS quarantined,
    (SELECT min(occurred_at) FROM events) AS first_event,
    (SELECT max(occurred_at) FROM events) AS last_event,
    (SELECT count(*) FROM payment_orders) AS orders,
    (SELECT count(*) FROM payouts) AS payouts,
    (SELECT count(*) FROM clients) AS clients,
    (SELECT count(*) FROM traders) AS traders,
    (SELECT count(*) FROM trader_ratings) AS ratings
"""


def database_summary(db: str | Path) -> pl.DataFrame:
    """One row: events applied and quarantined, the first and last event (UTC), and the number
    of orders, payouts, clients, traders and published ratings."""
    con = connect(db)
    try:
        return read(con, SUMMARY_SQL)
    finally:
        con.close()


def read(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list[object] | dict[str, object] | None = None,
) -> pl.DataFrame:
    """A query's result as a Polars frame (exact types: BIGINT money stays Int64)."""
    frame = pl.from_arrow(con.sql(sql, params=params).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame
