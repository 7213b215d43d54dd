"""The replay database as the live stream writes it: one transaction per batch (see
:mod:`.stream` for the exactly-once argument)."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from ..domain.catalog import DEFAULT_MAX_PAYLOAD_BYTES, DecodingError, try_decode
from ..domain.events import Event
from . import bulk, incremental, ingest_sql, judging, store
from .bodies import BodyError, envelope_row, parse_body, typed_sql
from .bus import Message, StreamKey
from .engine import DEFAULT_MEMORY_LIMIT, ReplayError, code_version
from .judging import quarantine_row
from .row_index import RowIndex
from .schema import EVENTS, REPLAY_RUNS, STREAM_POSITIONS, Table
from .stream_results import BatchResult, add_counts

T = TypeVar("T")


class StreamDatabase:
    """The replay database as the live stream writes it: one transaction per batch."""

    def __init__(
        self,
        db: str | Path,
        url: str,
        *,
        memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        self.path = Path(db)
        self.url = url
        self.max_payload_bytes = max_payload_bytes
        self.con = store.connect(self.path, memory_limit=memory_limit)
        self.con.execute("SET enable_progress_bar = false").fetchall()
        self.con.execute("SET preserve_insertion_order = false").fetchall()
        self.run_id = int(
            store.one(self.con, "SELECT coalesce(max(run_id), 0) + 1 FROM replay_runs")[0]
        )
        self._events_base = int(store.one(self.con, "SELECT count(*) FROM events")[0])
        self.started = time.perf_counter()
        self.started_at = datetime.now(UTC)
        self.totals = BatchResult()
        #: When :meth:`finish` committed the run's record (``None``: it wrote nothing).
        self.finished_at: float | None = None
        self.key: StreamKey | None = None
        self.first_seq: int | None = None
        self.consumer = ""
        #: Where the stored rows of a batch's aggregates and ids can be (loaded here, kept by
        #: every commit): no batch reads all of ``events``.
        self.index: RowIndex = RowIndex(self.con)

    # -- positions
    def committed(self, key: StreamKey) -> int | None:
        """The last sequence of ``key``'s stream that this database has taken in."""
        rows = self.con.execute(
            "SELECT last_seq FROM stream_positions WHERE source = ? AND epoch = ? AND partition_id = ?",
            [key.source, key.epoch, key.partition],
        ).fetchall()
        return int(rows[0][0]) if rows else None

    def consumer_name(self, key: StreamKey, wanted: str | None) -> str:
        """The durable consumer of this database: ``wanted``, or the one it used before on this
        stream, or a new name (one per database, so two databases never share a consumer)."""
        if wanted:
            return wanted
        rows = self.con.execute(
            "SELECT consumer FROM stream_positions WHERE source = ? "
            "ORDER BY updated_at DESC LIMIT 1",
            [key.source],
        ).fetchall()
        return str(rows[0][0]) if rows else f"workbench-{secrets.token_hex(4)}"

    # -- one batch
    def apply(self, key: StreamKey, messages: Sequence[Message]) -> BatchResult:
        """Take ``messages`` (in sequence order) in, in one transaction; see the module doc."""
        start = time.perf_counter()
        result = BatchResult()
        con = self.con
        committed = self.committed(key)  # one writer: the database file is ours alone
        # A sequence the database has, or met earlier in this batch (the broker redelivered it
        # while the batch was on its way), is a redelivery: acknowledged, not taken in.
        fresh: list[Message] = []
        seen: set[int] = set()
        for m in messages:
            if (committed is None or m.seq > committed) and m.seq not in seen:
                seen.add(m.seq)
                fresh.append(m)
        # Typing the bodies changes nothing stored, so it runs before the transaction: a body
        # that trips DuckDB cannot abort it (those bodies then all go to Python).
        staged = self._stage(con, key, fresh) if fresh else None
        if fresh:
            self.index.refresh(con)
        change: tuple[dict[str, Any], bool] | None = None
        con.execute("BEGIN TRANSACTION").fetchall()
        try:
            result.redelivered = len(messages) - len(fresh)
            if fresh and staged is not None:
                change = self._take(con, key, fresh, result, *staged)
                result.last_seq = max(m.seq for m in fresh)
                if not result.balanced:
                    raise ReplayError(
                        f"nothing-lost check failed for messages {fresh[0].seq}..{fresh[-1].seq}: "
                        f"{result.messages} != applied {result.applied} + duplicates "
                        f"{result.duplicates} + quarantined {result.quarantined}"
                    )
                self._record(con, key, result)
            con.execute("COMMIT").fetchall()
        except BaseException:
            con.execute("ROLLBACK").fetchall()
            raise
        result.committed_at = time.time()
        if change is not None:
            self.index.committed(con, *change)
        result.seconds = time.perf_counter() - start
        t = self.totals
        add_counts(t, result)
        if result.last_seq is not None:
            t.last_seq = result.last_seq
            if self.first_seq is None:
                self.first_seq = fresh[0].seq
        return result

    def _stage(
        self, con: duckdb.DuckDBPyConnection, key: StreamKey, msgs: Sequence[Message]
    ) -> tuple[list[tuple[Any, ...]], dict[int, str], list[int]]:
        """Type the bodies DuckDB can vouch for into temp table ``staged``; returns the
        quarantine rows of bodies that are not even UTF-8, the bodies by sequence, and the
        sequences Python must judge."""
        run_id = self.run_id
        quarantine: list[tuple[Any, ...]] = []
        bodies: dict[int, str] = {}
        texts: list[str | None] = []
        for m in msgs:
            try:
                body = m.data.decode("utf-8")
            except UnicodeDecodeError as exc:
                body = None
                raw = json.dumps({"base64": _b64(m.data), "subject": m.subject})
                quarantine.append(
                    _q_row(
                        {},
                        _source(key, m),
                        run_id,
                        "bad_json",
                        None,
                        f"message {m.seq} on {m.subject}: the body is not UTF-8 ({exc})",
                        raw,
                    )
                )
            texts.append(body)
            if body is not None:
                bodies[m.seq] = body
        table = pa.table(
            {
                "seq": pa.array([m.seq for m in msgs], pa.int64()),
                "body": pa.array(texts, pa.string()),
            }
        )
        prefix = _source(key, Message(0, b""))[:-1]
        cols = ", ".join("seq_ AS seq" if c == "seq" else c for c in EVENTS.column_names)
        con.register("_msgs", table)
        try:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE typed AS "
                + typed_sql("(SELECT * FROM _msgs WHERE body IS NOT NULL)", prefix)
            ).fetchall()
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE staged AS SELECT {cols}, FALSE AS judged "
                "FROM typed WHERE ok"
            ).fetchall()
            doubtful = [
                int(r[0]) for r in con.execute("SELECT seq FROM typed WHERE NOT ok").fetchall()
            ]
        except duckdb.Error:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE staged AS SELECT *, FALSE AS judged FROM events LIMIT 0"
            )
            doubtful = sorted(bodies)
        finally:
            con.unregister("_msgs")
            con.execute("DROP TABLE IF EXISTS typed").fetchall()
        return quarantine, bodies, doubtful

    def _take(
        self,
        con: duckdb.DuckDBPyConnection,
        key: StreamKey,
        msgs: Sequence[Message],
        result: BatchResult,
        quarantine: list[tuple[Any, ...]],
        bodies: dict[int, str],
        doubtful: list[int],
    ) -> tuple[dict[str, Any], bool]:
        """Store the batch and bring the projections up to date; returns what the row index
        needs after the commit (the rows stored, whether stored rows were deleted)."""
        run_id = self.run_id
        result.messages = len(msgs)
        by_seq = {m.seq: m for m in msgs}
        fallback: list[tuple[Any, ...]] = []
        # Python has the last word on every body the SQL could not vouch for.
        for s in doubtful:
            m = by_seq[s]
            src = _source(key, m)
            body = bodies[s]
            try:
                obj, raw_payload = parse_body(body)
            except BodyError as exc:
                quarantine.append(
                    _q_row(
                        {},
                        src,
                        run_id,
                        exc.reason,
                        exc.field,
                        f"message {m.seq} on {m.subject}: {exc}",
                        body,
                    )
                )
                continue
            row = envelope_row(obj, raw_payload)
            decoded = try_decode(row, text_times=True, max_payload_bytes=self.max_payload_bytes)
            if isinstance(decoded, DecodingError):
                quarantine.append(
                    _q_row(row, src, run_id, decoded.reason, decoded.field, str(decoded), body)
                )
                continue
            r = _event_row(decoded, row["payload"], src)
            fallback.append((*(r[c] for c in EVENTS.column_names), True))
        if fallback:
            store.append_rows(con, _STAGED, fallback)
        before = incremental.log_end(con)
        bounds = self.index.bounds(con, "staged")
        ing = ingest_sql.ingest_relation(
            con,
            "staged",
            run_id=run_id,
            max_payload_bytes=self.max_payload_bytes,
            record="batch_new",
            valid=ingest_sql.fast_check(self.max_payload_bytes),
            raw_of=lambda source: bodies.get(_seq_of(source)),
            stored=f"(SELECT * FROM events WHERE rowid >= {bounds.dedup})",
        )
        ing.quarantine[:0] = quarantine
        skipped = len(ing.quarantine) - len(judging.store_quarantine(con, ing.quarantine))
        judging.store_quarantine(con, ing.displaced_rows)
        judging.refresh_conflicts(con, ing.displaced_ids)
        result.applied = ing.applied
        result.duplicates = ing.duplicates + skipped
        result.conflicting = ing.conflicts
        result.quarantined = len(ing.quarantine) - skipped
        if ing.displaced:
            bulk.build(con)  # a stored event was displaced: everything built on it is rebuilt
            result.how = "full"
        else:
            result.how = incremental.apply(
                con, "batch_new", before, conflicts=ing.conflicts > 0, bounds=bounds
            )
        new = self.index.staged(con, "batch_new")
        con.execute("DROP TABLE IF EXISTS staged").fetchall()
        con.execute("DROP TABLE IF EXISTS batch_new").fetchall()
        return new, ing.displaced > 0

    def _record(self, con: duckdb.DuckDBPyConnection, key: StreamKey, result: BatchResult) -> None:
        """The stream position and the run's record, in the batch's transaction."""
        prev = con.execute(
            "SELECT messages, applied, duplicates, quarantined FROM stream_positions "
            "WHERE source = ? AND epoch = ? AND partition_id = ?",
            [key.source, key.epoch, key.partition],
        ).fetchall()
        base = prev[0] if prev else (0, 0, 0, 0)
        con.execute(
            "DELETE FROM stream_positions WHERE source = ? AND epoch = ? AND partition_id = ?",
            [key.source, key.epoch, key.partition],
        ).fetchall()
        store.append_rows(
            con,
            STREAM_POSITIONS,
            [
                (
                    key.source,
                    key.epoch,
                    key.partition,
                    self.consumer,
                    result.last_seq,
                    int(base[0]) + result.messages,
                    int(base[1]) + result.applied,
                    int(base[2]) + result.duplicates,
                    int(base[3]) + result.quarantined,
                    datetime.now(UTC),
                    self.run_id,
                )
            ],
        )
        self._write_run(con, key, extra=result, hashes=None)

    def _write_run(
        self,
        con: duckdb.DuckDBPyConnection,
        key: StreamKey,
        *,
        extra: BatchResult | None,
        hashes: dict[str, str] | None,
    ) -> None:
        t = self.totals
        add = extra or BatchResult()
        last = add.last_seq if add.last_seq is not None else t.last_seq
        first = self.first_seq
        if first is None and extra is not None and extra.last_seq is not None:
            first = extra.last_seq - extra.messages + 1
        sources = [
            {
                "url": self.url,
                "stream": key.source,
                "epoch": key.epoch,
                "partition": key.partition,
                "consumer": self.consumer,
                "first_seq": first,
                "last_seq": last,
            }
        ]
        total = int(store.one(con, "SELECT count(*) FROM events")[0])
        con.execute("DELETE FROM replay_runs WHERE run_id = ?", [self.run_id]).fetchall()
        store.append_rows(
            con,
            REPLAY_RUNS,
            [
                (
                    self.run_id,
                    self.started_at,
                    time.perf_counter() - self.started,
                    code_version(),
                    "stream",
                    json.dumps(sources),
                    t.messages + add.messages,
                    t.applied + add.applied,
                    t.duplicates + add.duplicates,
                    t.conflicting + add.conflicting,
                    t.quarantined + add.quarantined,
                    total,
                    json.dumps(hashes or {}, sort_keys=True),
                )
            ],
        )

    def finish(self) -> dict[str, str]:
        """The run's record completed with the projections' hashes (a transaction of its own)."""
        con = self.con
        con.execute("BEGIN TRANSACTION").fetchall()
        try:
            hashes = store.projection_hashes(con)
            key = self.key if self.totals.messages else None
            if key is not None:
                self._write_run(con, key, extra=None, hashes=hashes)
            con.execute("COMMIT").fetchall()
            if key is not None:
                self.finished_at = time.time()
        except BaseException:
            con.execute("ROLLBACK").fetchall()
            raise
        return hashes

    def events_now(self) -> int:
        """Events held after the last commit (the running count, no query)."""
        return self._events_base + self.totals.applied

    def total_events(self) -> int:
        return int(store.one(self.con, "SELECT count(*) FROM events")[0])

    def close(self) -> None:
        self.con.close()


def _as_table(table: Table, name: str) -> Table:
    """``table``'s columns under another (temporary) table's name, for ``store.append_rows``."""
    return dataclasses.replace(table, name=name)


#: The batch's staging table: the columns of ``events`` and ``judged`` (the decoder accepted it).
_STAGED = dataclasses.replace(
    EVENTS,
    name="staged",
    columns=(
        *EVENTS.columns,
        dataclasses.replace(EVENTS.columns[0], name="judged", type="BOOLEAN"),
    ),
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _source(key: StreamKey, m: Message) -> str:
    part = f"/{key.partition}" if key.partition else ""
    return f"{key.source}{part}#{m.seq}"


def _seq_of(source: str) -> int:
    return int(source.rsplit("#", 1)[1])


def _q_row(
    row: dict[str, Any],
    source: str,
    run_id: int,
    reason: str,
    fld: str | None,
    error: str,
    raw: str,
) -> tuple[Any, ...]:
    """A quarantine row whose ``raw`` is the message body itself, as it came."""
    return quarantine_row(row, source, run_id, reason, fld, error, raw)


def _event_row(e: Event, payload_text: Any, source: str) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "position": e.position,
        "stream": e.stream,
        "aggregate_id": e.aggregate_id,
        "seq": e.seq,
        "kind": e.kind,
        "schema_version": e.schema_version,
        "occurred_at": e.occurred_at,
        "recorded_at": e.recorded_at,
        "correlation_id": e.correlation_id,
        "causation_id": e.causation_id,
        "payload": payload_text if isinstance(payload_text, str) else json.dumps(payload_text),
        "source": source,
    }
