"""Columnar ingest: Parquet → ``events`` inside DuckDB, with the same decisions as the fold path.

DuckDB reads every file, sorts out redeliveries and conflicting copies (the winner among copies
of one ``event_id`` is chosen in :data:`~workbench.replay.engine.WINNER_ORDER`, exactly as the
per-event path chooses it), and inserts rows whose envelope and payload are certainly valid
(:mod:`.validate`) straight into ``events``. Only the odd rows (undecodable, conflicting, without
an id) come up to Python, where the domain's decoder writes their quarantine entry, so the
quarantine says the same thing whichever path ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from ..domain.catalog import DecodingError, try_decode
from ..domain.events import ENVELOPE_FIELDS, Event
from ..sources import REQUIRED, SourceError
from .validate import envelope_predicate, payload_predicate

ENVELOPE_TYPES = {
    "event_id": "VARCHAR",
    "position": "BIGINT",
    "stream": "VARCHAR",
    "aggregate_id": "VARCHAR",
    "seq": "INTEGER",
    "kind": "VARCHAR",
    "schema_version": "SMALLINT",
    "occurred_at": "TIMESTAMPTZ",
    "recorded_at": "TIMESTAMPTZ",
    "correlation_id": "VARCHAR",
    "causation_id": "VARCHAR",
    "payload": "VARCHAR",
}


@dataclass
class Ingested:
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    conflicts: int = 0
    odd_rows: list[tuple[dict[str, Any], str, str | None]] = field(
        default_factory=list
    )  # row, source, conflict error
    python_files: list[Path] = field(default_factory=list)


def _exec(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> list[tuple[Any, ...]]:
    return con.execute(sql, params or []).fetchall()


def split_files(files: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """Files DuckDB can read as complete exports, and files missing envelope columns (which the
    per-event path quarantines row by row). A file that is not Parquet is a SourceError."""
    complete, partial = [], []
    for path in files:
        try:
            names = set(pq.read_schema(path).names)
        except Exception as exc:
            raise SourceError(f"{path}: not a readable Parquet file ({exc})") from None
        (complete if all(c in names for c in REQUIRED) else partial).append(path)
    return complete, partial


def _winner_order(alias: str) -> str:
    from .engine import WINNER_ORDER

    return ", ".join(f"{alias}.{c} NULLS FIRST" for c in WINNER_ORDER)


def _differs(a: str, b: str) -> str:
    """SQL list of the envelope columns in which row ``a`` differs from row ``b``."""
    parts = [f"CASE WHEN {a}.{c} IS DISTINCT FROM {b}.{c} THEN '{c}' END" for c in ENVELOPE_FIELDS]
    return f"concat_ws(', ', {', '.join(parts)})"


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    """Rows as dicts through Arrow (timestamps arrive tz-aware, without pytz)."""
    return list(con.sql(sql).to_arrow_table().to_pylist())


def ingest(con: duckdb.DuckDBPyConnection, files: Sequence[Path]) -> Ingested:
    """Load ``files`` into ``events`` (inside the caller's transaction); returns the counts and the
    rows Python must judge.

    The input is streamed, never copied whole: almost every ``event_id`` occurs once and is new,
    so only the ids seen twice (or already stored) and the rows without an id are set aside
    (small), the payload check runs once and keeps only the ids it could not vouch for, and the
    rest goes from the Parquet straight into ``events``."""
    complete, partial = split_files(files)
    if not complete:
        out = Ingested()
        out.python_files = partial
        return out
    cols = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in ENVELOPE_TYPES.items())
    names = [str(p) for p in complete]
    src = (
        f"(SELECT {cols}, filename AS source FROM read_parquet({_q_list(names)}, union_by_name = true, "
        f"filename = true, hive_partitioning = false))"
    )
    out = ingest_relation(con, src)
    out.python_files = partial
    return out


def ingest_relation(
    con: duckdb.DuckDBPyConnection,
    src: str,
    *,
    record: str | None = None,
    valid: str | None = None,
) -> Ingested:
    """Load the rows of ``src`` (SQL of a relation with the envelope columns, typed as
    :data:`ENVELOPE_TYPES`, and ``source``) into ``events``, with the decisions described in the
    module docstring. The Parquet replay passes its files; the live stream a table of the
    messages of one batch.

    ``record``: the name of a temporary table (``CREATE OR REPLACE``d, with the columns of
    ``events``) that receives the accepted rows *instead of* ``events``: the caller adds the rows
    Python accepts (:attr:`Ingested.odd_rows`) and inserts the whole into ``events`` itself (the
    live stream does, in log order, and applies exactly those rows incrementally).

    ``valid``: the SQL that vouches for a row (default: :func:`_valid`, the full check;
    :data:`FAST_VALID` is the cheaper one for small batches, leaving more rows to the decoder)."""
    out = Ingested()
    if record is not None:
        _exec(con, f"CREATE OR REPLACE TEMP TABLE {record} AS SELECT * FROM events LIMIT 0")
    out.read = int(_exec(con, f"SELECT count(*) FROM {src}")[0][0])
    # Ids delivered more than once, or already in the database: their copies are judged together.
    _exec(
        con,
        f"""CREATE OR REPLACE TEMP TABLE multi AS
        SELECT event_id FROM {src} WHERE event_id IS NOT NULL GROUP BY event_id HAVING count(*) > 1
        UNION SELECT i.event_id FROM {src} i SEMI JOIN events e ON e.event_id = i.event_id""",
    )
    single = "event_id IS NOT NULL AND event_id NOT IN (SELECT event_id FROM multi)"
    valid = valid or _valid()
    _copies(
        con, out, f"(SELECT * FROM {src} WHERE event_id IS NULL OR NOT ({single}))", record, valid
    )
    # Rows met once: the payload check keeps only the ids it could not vouch for.
    _exec(
        con,
        f"CREATE OR REPLACE TEMP TABLE doubtful AS SELECT event_id "
        f"FROM (SELECT *, TRY_CAST(payload AS JSON) AS pj FROM {src} WHERE {single}) WHERE NOT {valid}",
    )
    out.applied += _insert(
        con,
        f"SELECT {', '.join(ENVELOPE_FIELDS)}, source FROM {src} "
        f"WHERE {single} AND event_id NOT IN (SELECT event_id FROM doubtful)",
        record,
    )
    odd = _rows(
        con,
        f"""SELECT {", ".join(ENVELOPE_FIELDS)}, source FROM {src}
        WHERE event_id IN (SELECT event_id FROM doubtful) ORDER BY event_id, source""",
    )
    for r in odd:
        source = r.pop("source")
        out.odd_rows.append((r, source, None))
    for t in ("multi", "doubtful"):
        _exec(con, f"DROP TABLE IF EXISTS {t}")
    return out


def _insert(con: duckdb.DuckDBPyConnection, select: str, record: str | None) -> int:
    """Insert the rows of ``select`` into ``events`` (or into ``record``); returns the count."""
    return int(_exec(con, f"INSERT INTO {record or 'events'} {select}")[0][0])


def _valid() -> str:
    """SQL true only for a row (with its payload as JSON in ``pj``) certainly valid: envelope and
    payload. Compiled once; both the single rows and each id's winning copy are judged by it."""
    return _VALID


def _q_list(names: Sequence[str]) -> str:
    return "[" + ", ".join("'" + n.replace("'", "''") + "'" for n in names) + "]"


def _copies(
    con: duckdb.DuckDBPyConnection,
    out: Ingested,
    rows: str,
    record: str | None = None,
    valid: str | None = None,
) -> None:
    """Judge the rows of ids met more than once (or already stored) and the rows without an id:
    redeliveries are counted, conflicting copies set aside, each id's winner checked and
    inserted (or handed to Python), rows without an id handed to Python."""
    _exec(con, f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT * FROM {rows}")
    if not _exec(con, "SELECT 1 FROM incoming LIMIT 1"):  # the usual case: nothing to judge
        _exec(con, "DROP TABLE IF EXISTS incoming")
        return
    # Every copy, ranked within its event_id; `known` copies meet an event already stored.
    _exec(
        con,
        f"""CREATE OR REPLACE TEMP TABLE copies AS
        SELECT i.*, e.event_id IS NOT NULL AS known,
               row_number() OVER (PARTITION BY i.event_id ORDER BY {_winner_order("i")}, i.source) AS pick
        FROM incoming i LEFT JOIN (SELECT event_id FROM events) e ON e.event_id = i.event_id
        WHERE i.event_id IS NOT NULL""",
    )
    # What each copy is compared with: the stored event, or else the winning copy.
    _exec(
        con,
        f"""CREATE OR REPLACE TEMP TABLE judged AS
        SELECT c.*, CASE WHEN c.known THEN {_differs("c", "e")} ELSE {_differs("c", "w")} END AS diff
        FROM copies c
        LEFT JOIN events e ON c.known AND e.event_id = c.event_id
        LEFT JOIN (SELECT * FROM copies WHERE NOT known AND pick = 1) w ON NOT c.known AND w.event_id = c.event_id
        WHERE c.known OR c.pick > 1""",
    )
    out.duplicates += int(_exec(con, "SELECT count(*) FROM judged WHERE diff = ''")[0][0])
    conflicts = _rows(
        con,
        f"SELECT {', '.join(ENVELOPE_FIELDS)}, source, diff FROM judged WHERE diff <> '' ORDER BY event_id, source",
    )
    out.conflicts += len(conflicts)
    for r in conflicts:
        source, diff = r.pop("source"), r.pop("diff")
        out.odd_rows.append(
            (r, source, f"event {r['event_id']} delivered again with different {diff}")
        )
    valid = valid or _valid()
    winners = (
        f"(SELECT * EXCLUDE (pj), {valid} AS ok FROM "
        f"(SELECT *, TRY_CAST(payload AS JSON) AS pj FROM copies WHERE NOT known AND pick = 1))"
    )
    _exec(con, f"CREATE OR REPLACE TEMP TABLE winners AS SELECT * FROM {winners}")
    out.applied += _insert(
        con, f"SELECT {', '.join(ENVELOPE_FIELDS)}, source FROM winners WHERE ok", record
    )
    odd = _rows(
        con,
        f"""SELECT {", ".join(ENVELOPE_FIELDS)}, source FROM winners WHERE NOT ok
        UNION ALL SELECT {", ".join(ENVELOPE_FIELDS)}, source FROM incoming WHERE event_id IS NULL
        ORDER BY event_id NULLS FIRST, source""",
    )
    for r in odd:
        source = r.pop("source")
        out.odd_rows.append((r, source, None))
    for t in ("incoming", "copies", "judged", "winners"):
        _exec(con, f"DROP TABLE IF EXISTS {t}")


_VALID = f"({envelope_predicate()} AND coalesce({payload_predicate('pj')}, FALSE))"

#: The fast check only (see :func:`~workbench.replay.validate.payload_predicate`).
FAST_VALID = (
    f"({envelope_predicate()} AND coalesce({payload_predicate('pj', per_path=False)}, FALSE))"
)


def judge(row: dict[str, Any]) -> Event | DecodingError:
    """The domain's decoder has the final word on a row the SQL could not vouch for."""
    return try_decode(row)
