"""Columnar ingest: export rows → ``events`` inside DuckDB, with the decisions of :mod:`.judging`.

Each file is read once (:mod:`.parquet_rows`): its native batches go into a temporary ``input``
table in the catalog's types; the rows of foreign batches are judged by the domain's decoder at
once and only the decodable ones join ``input`` (marked ``judged``). DuckDB then sorts out
redeliveries and conflicting copies and inserts the rows whose envelope and payload it can
certainly vouch for (:mod:`.validate`) straight into ``events``; every other row comes up to the
decoder, which has the last word, so the quarantine says the same whichever engine ran.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..domain.catalog import DecodingError
from ..domain.events import ENVELOPE_FIELDS
from . import judging, parquet_rows, typed
from .judging import WINNER_ORDER
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

_COLS = ", ".join(ENVELOPE_FIELDS)


@dataclass
class Ingested:
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    conflicts: int = 0
    displaced: int = 0  # stored events a new copy beat (moved to quarantine)
    quarantined: int = 0  # rows read that were kept in quarantine (set when stored)
    unchanged: int = 0  # rows of files this database already took in, byte for byte
    quarantine: list[tuple[Any, ...]] = field(default_factory=list)
    displaced_ids: set[str] = field(default_factory=set)
    displaced_rows: list[tuple[Any, ...]] = field(default_factory=list)  # not rows read
    files: list[parquet_rows.ExportFile] = field(default_factory=list)


def _exec(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> list[tuple[Any, ...]]:
    return con.execute(sql, params or []).fetchall()


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    """Rows as dicts through Arrow (timestamps arrive tz-aware, without pytz)."""
    return list(con.sql(sql).to_arrow_table().to_pylist())


def _input_schema() -> pa.Schema:
    return parquet_rows.CANONICAL.append(pa.field("source", pa.string())).append(
        pa.field("judged", pa.bool_())
    )


def ingest(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[Path],
    run_id: int,
    *,
    max_payload_bytes: int | None,
    record: str | None = None,
    known: frozenset[str] = frozenset(),
) -> Ingested:
    """Load ``files`` into ``events`` (inside the caller's transaction); returns the counts and
    the quarantine rows (not yet stored). ``record``: as for :func:`ingest_relation`.
    ``known``: SHA-256s of files already taken in (:func:`.parquet_rows.read`)."""
    out = Ingested()
    _exec(
        con,
        "CREATE OR REPLACE TEMP TABLE input ("
        + ", ".join(f"{c} {t}" for c, t in ENVELOPE_TYPES.items())
        + ", source VARCHAR, judged BOOLEAN)",
    )
    schema = _input_schema()
    for info, batches in parquet_rows.read(list(files), known):
        out.files.append(info)
        if info.unchanged:
            out.read += info.rows
            out.unchanged += info.rows
            continue
        for batch in batches:
            out.read += batch.num_rows
            if batch.native is not None:
                t = batch.native
                n = t.num_rows
                t = t.append_column("source", pa.array([batch.source] * n, pa.string()))
                t = t.append_column("judged", pa.array([False] * n, pa.bool_()))
                _append(con, t)
                continue
            accepted: list[dict[str, Any]] = []
            for row in batch.foreign or ():
                decoded = judging.judge(row, max_payload_bytes=max_payload_bytes)
                if isinstance(decoded, DecodingError):
                    out.quarantine.append(judging.refused(row, batch.source, run_id, decoded))
                else:
                    r = judging.canonical_row(decoded, row["payload"])
                    r["source"], r["judged"] = batch.source, True
                    accepted.append(r)
            if accepted:
                _append(con, pa.Table.from_pylist(accepted, schema=schema))
    ingest_relation(
        con, "input", run_id=run_id, max_payload_bytes=max_payload_bytes, record=record, out=out
    )
    _exec(con, "DROP TABLE IF EXISTS input")
    return out


def _append(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """Copy a batch into ``input``. Not through ``register``: inside a transaction DuckDB keeps
    every registered Arrow table alive until the transaction ends, so a replay held all of its
    input in Python's memory as well as DuckDB's (5.3 GB at 10M events)."""
    con.from_arrow(table).insert_into("input")


def ingest_relation(
    con: duckdb.DuckDBPyConnection,
    src: str,
    *,
    run_id: int,
    max_payload_bytes: int | None,
    record: str | None = None,
    valid: str | None = None,
    raw_of: Callable[[str], str | None] | None = None,
    out: Ingested | None = None,
    stored: str = "events",
) -> Ingested:
    """Load the rows of ``src`` (a table with the envelope columns typed as
    :data:`ENVELOPE_TYPES`, ``source`` and ``judged``: the decoder already accepted the row)
    into ``events``, with the decisions of :mod:`.judging`. The Parquet replay passes its
    ``input``; the live stream a table of the messages of one batch.

    ``record``: the name of a temporary table (``CREATE OR REPLACE``d, with the columns of
    ``events``) that receives the new rows *as well as* ``events`` (the live stream applies
    exactly those rows incrementally). ``valid``: the SQL that vouches for a row (default the
    full check; :data:`FAST_VALID` is cheaper for small batches). ``raw_of``: the raw text of a
    row's source, where it is not the row itself (a stream message's body). ``stored``: the
    stored events the rows are compared with, ``events`` or a part of it that holds every stored
    event with an ``event_id`` of ``src`` (the live stream's ``rowid`` range, :mod:`.row_index`)."""
    out = out or Ingested()
    if out.read == 0:
        out.read = int(_exec(con, f"SELECT count(*) FROM {src}")[0][0])
    if record is not None:
        _exec(con, f"CREATE OR REPLACE TEMP TABLE {record} AS SELECT * FROM events LIMIT 0")
    ctx = _Context(
        con,
        run_id,
        max_payload_bytes,
        record,
        valid or full_check(max_payload_bytes),
        raw_of,
        out,
        stored,
    )
    if typed.missing(con):  # a database written before the typed payload tables existed
        typed.sync(con)
    # Rows identical to a stored event are redeliveries whatever else happens: set aside first,
    # without judging them again (a replay of input already stored costs little).
    if _exec(con, "SELECT 1 FROM events LIMIT 1"):
        same = " AND ".join(f"e.{c} IS NOT DISTINCT FROM i.{c}" for c in ENVELOPE_FIELDS)
        # Against the whole log (a Parquet replay into a database), the stored copies of the ids
        # met again are found first (one column read) and only those compared whole: a join on
        # every column would read every stored envelope. The live stream's ``stored`` is a short
        # tail already.
        against = stored
        if stored == "events":
            against = f"""(SELECT e.* FROM events e SEMI JOIN
                (SELECT i.event_id FROM {src} i SEMI JOIN events e USING (event_id)) d
                ON d.event_id = e.event_id)"""
        _exec(
            con,
            f"""CREATE OR REPLACE TEMP TABLE fresh AS SELECT i.* FROM {src} i
            ANTI JOIN {against} e ON e.event_id = i.event_id AND {same}""",
        )
        before = int(_exec(con, f"SELECT count(*) FROM {src}")[0][0])
        out.duplicates += before - int(_exec(con, "SELECT count(*) FROM fresh")[0][0])
        src = "fresh"
    # Ids delivered more than once, or already in the database: their copies are judged together.
    _exec(
        con,
        f"""CREATE OR REPLACE TEMP TABLE multi AS
        SELECT event_id FROM {src} WHERE event_id IS NOT NULL GROUP BY event_id HAVING count(*) > 1
        UNION SELECT i.event_id FROM {src} i SEMI JOIN {stored} e ON e.event_id = i.event_id""",
    )
    single = "event_id IS NOT NULL AND event_id NOT IN (SELECT event_id FROM multi)"
    _copies(ctx, f"(SELECT * FROM {src} WHERE event_id IS NULL OR NOT ({single}))")
    # Rows met once: the payload check keeps only the ids it could not vouch for. The fast
    # check (a payload written in its model's key order) vouches for nearly every row; the
    # per-path check, an expression twice its size that DuckDB sets up for every vector, then
    # runs over only the rows the fast one left.
    pj = _pj(ctx.max_payload_bytes)
    fast = fast_check(ctx.max_payload_bytes)
    first = fast if ctx.valid != fast else ctx.valid
    _exec(
        con,
        f"CREATE OR REPLACE TEMP TABLE doubtful AS SELECT * FROM "
        f"(SELECT *, {pj} AS pj FROM {src} WHERE {single}) WHERE NOT (judged OR coalesce({first}, FALSE))",
    )
    if first != ctx.valid:
        _exec(
            con,
            f"DELETE FROM doubtful WHERE coalesce({ctx.valid}, FALSE)",
        )
    out.applied += ctx.insert(
        f"SELECT {_COLS}, source FROM {src} "
        f"WHERE {single} AND event_id NOT IN (SELECT event_id FROM doubtful)"
    )
    odd = _rows(
        con,
        f"SELECT {_COLS}, source FROM {src} WHERE event_id IN (SELECT event_id FROM doubtful) "
        "ORDER BY event_id, source",
    )
    accepted = []
    for r in odd:
        source = r.pop("source")
        decoded = judging.judge(r, max_payload_bytes=max_payload_bytes)
        if isinstance(decoded, DecodingError):
            out.quarantine.append(ctx.refused(r, source, decoded))
        else:
            accepted.append({**r, "source": source})
    if accepted:
        out.applied += ctx.insert_rows(accepted)
    # the payloads of the events stored by this call, typed once, in the same transaction
    if record is not None:
        typed.add(con, record)
    else:
        typed.add_missing(con)
    for t in ("multi", "doubtful", "fresh"):
        _exec(con, f"DROP TABLE IF EXISTS {t}")
    return out


def _pj(max_payload_bytes: int | None) -> str:
    """The payload as JSON, or NULL where it is too large or not JSON (never an error)."""
    if max_payload_bytes is None:
        return "TRY_CAST(payload AS JSON)"
    return (
        f"CASE WHEN strlen(payload) <= {int(max_payload_bytes)} THEN TRY_CAST(payload AS JSON) END"
    )


@dataclass
class _Context:
    con: duckdb.DuckDBPyConnection
    run_id: int
    max_payload_bytes: int | None
    record: str | None
    valid: str
    raw_of: Callable[[str], str | None] | None
    out: Ingested
    stored: str = "events"

    def insert(self, select: str) -> int:
        """Insert the rows of ``select`` (event columns and ``source``) into ``events``."""
        n = int(_exec(self.con, f"INSERT INTO events {select}")[0][0])
        if self.record is not None and n:
            _exec(self.con, f"INSERT INTO {self.record} {select}")
        return n

    def insert_rows(self, rows: list[dict[str, Any]]) -> int:
        from .schema import EVENTS
        from .store import rows_to_arrow

        table = rows_to_arrow(EVENTS, [tuple(r[c] for c in EVENTS.column_names) for r in rows])
        self.con.register("_accepted", table)
        try:
            return self.insert("SELECT * FROM _accepted")
        finally:
            self.con.unregister("_accepted")

    def raw(self, source: str) -> str | None:
        return self.raw_of(source) if self.raw_of is not None else None

    def refused(self, row: dict[str, Any], source: str, err: DecodingError) -> tuple[Any, ...]:
        return judging.quarantine_row(
            row, source, self.run_id, err.reason, err.field, str(err), self.raw(source)
        )


def _winner_order(alias: str) -> str:
    return ", ".join(f"{alias}.{c} NULLS FIRST" for c in WINNER_ORDER)


def _differs(a: str, b: str) -> str:
    """SQL list of the envelope columns in which row ``a`` differs from row ``b``."""
    parts = [f"CASE WHEN {a}.{c} IS DISTINCT FROM {b}.{c} THEN '{c}' END" for c in ENVELOPE_FIELDS]
    return f"concat_ws(', ', {', '.join(parts)})"


def _copies(ctx: _Context, rows: str) -> None:
    """Judge the rows of ids met more than once (or already stored) and the rows without an id.

    Every copy is judged first (undecodable copies are quarantined with their reason); the
    decodable copies and the stored event then compete (:data:`WINNER_ORDER`, a stored copy
    before an identical new one): copies identical to the winner are redeliveries, the others
    conflicting duplicates, a stored event that lost is displaced."""
    con, out = ctx.con, ctx.out
    _exec(
        con,
        f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT row_number() OVER () AS rid, * FROM {rows}",
    )
    if not _exec(con, "SELECT 1 FROM incoming LIMIT 1"):  # the usual case: nothing to judge
        _exec(con, "DROP TABLE IF EXISTS incoming")
        return
    _exec(
        con,
        f"""CREATE OR REPLACE TEMP TABLE copies AS
        SELECT * EXCLUDE (pj), judged OR coalesce({ctx.valid}, FALSE) AS ok
        FROM (SELECT *, {_pj(ctx.max_payload_bytes)} AS pj FROM incoming)""",
    )
    # The decoder's word on every copy the SQL could not vouch for.
    doubtful = _rows(
        con,
        f"SELECT rid, {_COLS}, source FROM copies WHERE NOT ok AND event_id IS NOT NULL ORDER BY rid",
    )
    good: list[int] = []
    for r in doubtful:
        rid, source = r.pop("rid"), r.pop("source")
        decoded = judging.judge(r, max_payload_bytes=ctx.max_payload_bytes)
        if isinstance(decoded, DecodingError):
            out.quarantine.append(ctx.refused(r, source, decoded))
        else:
            good.append(rid)
    _exec(con, "UPDATE copies SET ok = TRUE WHERE rid IN (SELECT unnest(?::BIGINT[]))", [good])
    _exec(con, "DELETE FROM copies WHERE NOT ok OR event_id IS NULL")
    # The decodable copies and the stored events compete.
    _exec(
        con,
        f"""CREATE OR REPLACE TEMP TABLE ranked AS
        SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY {_winner_order("c")},
                                     known DESC, source) AS pick
        FROM (SELECT {_COLS}, source, rid, FALSE AS known FROM copies
              UNION ALL
              SELECT {", ".join(f"e.{x}" for x in ENVELOPE_FIELDS)}, e.source, NULL, TRUE
              FROM {ctx.stored} e SEMI JOIN copies i ON i.event_id = e.event_id) c""",
    )
    _exec(
        con,
        f"""CREATE OR REPLACE TEMP TABLE judged AS
        SELECT c.*, {_differs("c", "w")} AS diff
        FROM ranked c JOIN (SELECT * FROM ranked WHERE pick = 1) w USING (event_id)
        WHERE c.pick > 1""",
    )
    out.duplicates += int(_exec(con, "SELECT count(*) FROM judged WHERE diff = ''")[0][0])
    losers = _rows(
        con,
        f"SELECT {_COLS}, source, diff, known FROM judged WHERE diff <> '' "
        "ORDER BY event_id, source, rid",
    )
    for r in losers:
        source, diff, known = r.pop("source"), r.pop("diff"), r.pop("known")
        diffs = diff.split(", ")
        (out.displaced_rows if known else out.quarantine).append(
            judging.quarantine_row(
                r,
                source,
                ctx.run_id,
                judging.CONFLICT,
                diffs[0],
                judging.conflict_error(r["event_id"], diffs),
                None if known else ctx.raw(source),
            )
        )
        if known:
            out.displaced += 1
            out.displaced_ids.add(r["event_id"])
        else:
            out.conflicts += 1
    if out.displaced_ids:
        _exec(
            con,
            "DELETE FROM events WHERE event_id IN (SELECT event_id FROM judged WHERE known AND diff <> '')",
        )
        typed.remove(con, out.displaced_ids)
    out.applied += ctx.insert(
        f"SELECT {_COLS}, source FROM ranked WHERE pick = 1 AND NOT known ORDER BY event_id"
    )
    # Rows without an id: the decoder says why.
    for r in _rows(con, f"SELECT {_COLS}, source FROM incoming WHERE event_id IS NULL"):
        source = r.pop("source")
        decoded = judging.judge(r, max_payload_bytes=ctx.max_payload_bytes)
        assert isinstance(decoded, DecodingError)
        out.quarantine.append(ctx.refused(r, source, decoded))
    for t in ("incoming", "copies", "ranked", "judged"):
        _exec(con, f"DROP TABLE IF EXISTS {t}")


@functools.cache
def full_check(max_payload_bytes: int | None) -> str:
    """SQL true only for a row (with its payload as JSON in ``pj``) certainly valid: envelope
    (with the payload's size) and payload."""
    return _valid_sql(True, max_payload_bytes)


@functools.cache
def fast_check(max_payload_bytes: int | None) -> str:
    """The fast check only (see :func:`~workbench.replay.validate.payload_predicate`), for the
    live stream's small batches."""
    return _valid_sql(False, max_payload_bytes)


def _valid_sql(per_path: bool, max_payload_bytes: int | None) -> str:
    return (
        f"({envelope_predicate(max_payload_bytes)} AND "
        f"coalesce({payload_predicate('pj', per_path=per_path)}, FALSE))"
    )
