"""The statement tables as every audit connection can read them, imported or not.

Statements are the analysts' input (:mod:`.schema`): a reader sees them as temp tables copied
from the analyst database, and only where some were imported. The statement models read them
like any projection, so a connection without them gets them empty here; the checks then find
nothing, at the cost of a count (``statement_payouts`` is empty when there is no line).
"""

from __future__ import annotations

import re

import duckdb

from . import schema

_NAME = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")


def ensure_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create, as empty temp tables of ``con`` (schema.DDL's columns), the statement tables it
    cannot see; returns their names. A table it sees (copied from the analyst database, or made
    by a test in any schema on the search path) is left as it is: a temp table of the same name
    would hide it."""
    created = []
    for ddl in schema.DDL:
        m = _NAME.search(ddl)
        assert m is not None, ddl
        name = m.group(1)
        try:
            con.execute(f"SELECT 1 FROM {name} LIMIT 0").fetchall()
            continue
        except duckdb.CatalogException:
            pass
        temp = ddl.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE IF NOT EXISTS", 1)
        con.execute(temp).fetchall()
        created.append(name)
    return created
