"""What several audit checks share: the ``audit`` layer of the models (``workbench/models/audit/``),
kept as temp tables of the audited connection.

The audit (:func:`.run.run_checks`) builds each just before its first reader and drops it after
its last; :func:`prepare` builds the ones a caller outside the audit needs (the ratings'
recomputation, a notebook), with the shared tables they read, unless the connection has them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb

from .. import models
from ..statements.readable import ensure_tables


def tables() -> dict[str, models.Model]:
    """Every shared table's model, by name, in build order."""
    return {
        m.name: m for m in models.order(m for m in models.load().values() if m.layer == "audit")
    }


def needs(reads: Iterable[str]) -> list[str]:
    """The shared tables a query reading ``reads`` needs, with those they read in turn, in build
    order."""
    shared = tables()
    want: set[str] = set()
    todo = [t for t in reads if t in shared]
    while todo:
        name = todo.pop()
        if name not in want:
            want.add(name)
            todo.extend(t for t in shared[name].reads if t in shared)
    return [name for name in shared if name in want]


def temporary(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The temp tables ``con`` has."""
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    return {r[0] for r in rows}


def build(con: duckdb.DuckDBPyConnection, name: str, **context: Any) -> None:
    """Compute the shared table ``name`` as a temp table of ``con`` (the tables it reads must be
    there), its SQL rendered with ``context`` (the statement window)."""
    sql = tables()[name].sql(**context)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}").fetchall()


def prepare(con: duckdb.DuckDBPyConnection, names: Iterable[str], **context: Any) -> None:
    """Compute the shared tables ``names`` (and those they read) once, as temp tables of
    ``con``; tables ``con`` already has are kept. The statement tables are made readable
    (empty where none were imported) first."""
    ensure_tables(con)
    have = temporary(con)
    for name in needs(names):
        if name not in have:
            build(con, name, **context)
