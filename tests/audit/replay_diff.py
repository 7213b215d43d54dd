"""What the audit's differential tests share: a clean small day to edit, and "replay these rows,
then the SQL side must equal the domain's oracle". Each test file brings its own two sides."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from workbench.export import ENVELOPE_SCHEMA
from workbench.generator import generate
from workbench.replay.engine import rebuild

SMALL = {"days": 1, "orders_per_day": 200, "traders": 10, "clients": 4}
Row = dict[str, Any]
T = TypeVar("T", bound=set[Any])


@functools.cache
def clean_rows() -> tuple[Row, ...]:
    """A clean day, generated once per process, in position order."""
    with tempfile.TemporaryDirectory(prefix="audit-diff-") as d:
        generate(Path(d) / "export", seed=11, clean=True, progress=False, **SMALL)
        rows = ds.dataset(str(Path(d) / "export")).to_table(columns=ENVELOPE_SCHEMA.names)
        return tuple(sorted(rows.to_pylist(), key=lambda r: r["position"]))


def compare(
    export: Path, db: Path, sql_side: Callable[[Path], T], oracle_side: Callable[[Path], T]
) -> T:
    """Replay ``export`` into ``db``; both sides must agree. Returns the oracle's side."""
    rebuild([export], db, progress=False)
    sql, oracle = sql_side(db), oracle_side(db)
    assert sql == oracle, f"SQL only: {sorted(sql - oracle)}\noracle only: {sorted(oracle - sql)}"
    return oracle


def compare_rows(
    rows: list[Row], folder: Path, sql_side: Callable[[Path], T], oracle_side: Callable[[Path], T]
) -> T:
    """:func:`compare` over ``rows`` written as one Parquet export in ``folder``."""
    (folder / "export").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=ENVELOPE_SCHEMA), folder / "export/p.parquet")
    return compare(folder / "export", folder / "db.duckdb", sql_side, oracle_side)
