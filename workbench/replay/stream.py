"""The live stream: a bus's messages applied to the replay database in batches, exactly once.

The same semantics as the Parquet replay (:mod:`.engine`), message by message: each message body
is one envelope (catalog section 1: a JSON object, ``payload`` nested, timestamps as RFC 3339
strings); identical redeliveries of an ``event_id`` are skipped, conflicting copies and
undecodable messages quarantined with their raw bytes, everything else applied, and every
projection brought up to date (:mod:`.incremental`).

**Exactly once.** A batch is one DuckDB transaction: its events, its quarantine rows, the
projections, and the stream position (``stream_positions``: the last message sequence of the
stream that the database has taken in) commit together or not at all. Messages are acknowledged
to the bus only after that commit. So after a crash anywhere, the database is as the last
committed batch left it, and the position it holds says exactly which messages it has: on
restart the consumer is positioned right after it, and a message delivered again (an ack lost,
a batch redelivered by the broker) is recognised by its sequence and acknowledged without
effect. Events are also identified by ``event_id``, so the same event published twice, or
already loaded from an export, is a counted redelivery, never applied twice. The adapter
guarantees that messages come in sequence order without holes (after any disruption it
re-positions the consumer from the database rather than trust what the broker had in flight),
which is what makes one sequence number a sufficient position.

**Adapters.** A bus is a :class:`Source` (the protocol below); :mod:`.nats_source` is the NATS
JetStream one. Another bus (Kafka, say) is a small adapter: ``connect`` names the stream
instance (topic and partition, plus an epoch that changes if the topic is recreated),
``start`` seeks to the position after the one the database committed, ``fetch`` returns
messages in offset order, ``ack`` commits the consumer group's offset *after* the database
commit (informational only: the database's position is the one that counts).

Nothing lost: for every batch, *messages = applied + duplicates + quarantined* is checked
before the commit; a message the database already had (by sequence) is counted apart as
``redelivered``.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import dataclasses
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json import decoder as _json_decoder
from pathlib import Path
from typing import Any, Protocol, TypeVar

import duckdb
import pyarrow as pa

from ..domain.catalog import DEFAULT_MAX_PAYLOAD_BYTES, DecodingError, try_decode
from ..domain.events import ENVELOPE_FIELDS, RFC3339_PATTERN, Event
from ..sources import SourceError
from . import bulk, incremental, ingest_sql, judging, store
from .engine import DEFAULT_MEMORY_LIMIT, ReplayError, code_version
from .judging import quarantine_row
from .live import LiveReaders
from .row_index import RowIndex
from .schema import EVENTS, REPLAY_RUNS, STREAM_POSITIONS, Table
from .validate import TIMESTAMP_RE

T = TypeVar("T")


# --------------------------------------------------------------------------- the bus, abstractly
@dataclass(frozen=True, slots=True)
class Message:
    """One message as an adapter hands it over."""

    seq: int  # the message's position in its stream (JetStream stream sequence, Kafka offset)
    data: bytes  # the body, as published
    subject: str = ""  # where it was published (NATS subject, Kafka topic/key), for the record
    published_ns: int | None = None  # publish time, ns since the epoch (for the lag in seconds)
    handle: Any = None  # the adapter's own (what it needs to acknowledge the message)


@dataclass(frozen=True, slots=True)
class StreamKey:
    """Which stream instance positions refer to."""

    source: str  # bus and stream, e.g. ``nats:PLATFORM_EVENTS``
    epoch: str  # changes when the stream is recreated (its sequences start again)
    partition: str = ""  # a Kafka partition; a JetStream stream has one ("")


class StreamNotFound(SourceError):
    """The bus has no such stream (yet)."""


class Resync(RuntimeError):
    """The adapter cannot vouch for what it has in flight (a reconnection, a delivery lost):
    the consumer must be positioned again from the database's committed position."""


class Source(Protocol):
    """A bus adapter. Calls come in this order: ``connect``, ``start``, then ``fetch`` / ``ack``
    in turns, ``start`` again after a :class:`Resync`, ``close`` at the end."""

    url: str

    async def connect(self) -> StreamKey:
        """Connect; name the stream instance (raise :class:`~workbench.sources.SourceError`
        naming the stream if it does not exist)."""
        ...

    async def start(self, after: int | None, consumer: str) -> int | None:
        """Position ``consumer`` so that the next message is the first one after sequence
        ``after`` (``None``: from the stream's first message). Returns the sequence of the first
        message the stream still holds if messages after ``after`` are gone (retention), else
        ``None``."""
        ...

    async def fetch(self, max_messages: int, max_wait: float) -> list[Message]:
        """The next messages in sequence order, at most ``max_messages``; waits up to
        ``max_wait`` seconds for the first one (an empty list then). Never skips a message;
        raises :class:`Resync` if it could have."""
        ...

    async def ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge ``messages`` (all committed to the database)."""
        ...

    def pending(self) -> int | None:
        """Messages in the stream after the last one fetched (``None``: unknown)."""
        ...

    async def end(self) -> int | None:
        """The sequence of the stream's last message now (``None``: unknown or empty): a
        catch-up stops once it has taken that in, even if more keeps coming."""
        ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- decoding messages
#: RFC 3339 as the catalog writes it (date, T, time, up to microseconds, Z or an offset).
RFC3339 = f"^{RFC3339_PATTERN}$"
#: What the SQL vouches for: UTC only (an offset near year 1 or 9999 leaves the calendar in
#: Python, not in DuckDB, so the decoder judges every other offset).
UTC_STAMP = TIMESTAMP_RE

_WS = re.compile(r"[ \t\n\r]*")
_scan = json.JSONDecoder().scan_once
_scanstring = _json_decoder.scanstring  # type: ignore[attr-defined]


class BodyError(ValueError):
    """A message body that is not an envelope object."""

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


def parse_body(text: str) -> tuple[dict[str, Any], str | None]:
    """A body's top-level object and the exact text of its ``payload`` value (``None`` if it has
    none): the payload is kept as published, byte for byte, like an export's payload column.
    Raises :class:`BodyError` for a body that is not one JSON object with distinct keys."""
    try:
        i = _WS.match(text, 0).end()  # type: ignore[union-attr]
        if text[i : i + 1] != "{":
            json.loads(text)  # the precise JSON error if it is not JSON at all
            raise BodyError("bad_envelope", "the message body must be a JSON object")
        i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
        out: dict[str, Any] = {}
        raw: str | None = None
        if text[i : i + 1] == "}":
            i += 1
        else:
            while True:
                if text[i : i + 1] != '"':
                    raise ValueError(f"expecting a key at char {i}")
                key, i = _scanstring(text, i + 1)
                i = _WS.match(text, i).end()  # type: ignore[union-attr]
                if text[i : i + 1] != ":":
                    raise ValueError(f"expecting ':' at char {i}")
                i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
                value, end = _scan(text, i)
                if key in out:
                    raise BodyError("bad_envelope", f"field {key!r} appears twice", key)
                out[key] = value
                if key == "payload":
                    raw = text[i:end]
                i = _WS.match(text, end).end()  # type: ignore[union-attr]
                c = text[i : i + 1]
                if c == ",":
                    i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
                    continue
                if c == "}":
                    i += 1
                    break
                raise ValueError(f"expecting ',' or '}}' at char {i}")
        if _WS.match(text, i).end() != len(text):  # type: ignore[union-attr]
            raise ValueError(f"extra data at char {i}")
        return out, raw
    except BodyError:
        raise
    except (ValueError, StopIteration, RecursionError) as exc:
        msg = str(exc) if not isinstance(exc, StopIteration) else f"unexpected value at char {exc}"
        raise BodyError("bad_json", f"the message body is not valid JSON ({msg})") from None


def envelope_row(obj: dict[str, Any], raw_payload: str | None) -> dict[str, Any]:
    """The envelope row of a parsed body, in the export's shape: the payload as its JSON text
    (a string payload *is* the text, as in an export), timestamps still as given."""
    row = {name: obj.get(name) for name in ENVELOPE_FIELDS}
    value = obj.get("payload")
    row["payload"] = value if (isinstance(value, str) or value is None) else raw_payload
    return row


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _typed_sql(msgs: str, source_prefix: str) -> str:
    """SQL typing every body DuckDB can certainly read into the envelope's columns, in one pass
    over the batch: each body is parsed once into its fields (as JSON values), each field checked
    and cast. ``ok`` is false for a body it cannot vouch for; Python judges those."""
    fields = ", ".join(f'"{n}": "JSON"' for n in ENVELOPE_FIELDS)
    # Each field is read as its JSON text (``v``: minified by DuckDB, NULL for null or absent);
    # its JSON type is told by its first character, and a string without escapes is the text
    # between its quotes: string functions, much cheaper than parsing each value again.

    def v(name: str) -> str:
        return f"(f.{name}::VARCHAR)"

    def is_text(name: str) -> str:
        return f"starts_with({v(name)}, '\"')"

    def text(name: str) -> str:
        return (
            f"CASE WHEN contains({v(name)}, '\\') THEN json_extract_string(f.{name}, '$') "
            f"ELSE {v(name)}[2:-2] END"
        )

    def integer(name: str, sql_type: str) -> str:
        return (
            f"(regexp_full_match({v(name)}, '-?[0-9]+') "
            f"AND TRY_CAST({v(name)} AS {sql_type}) IS NOT NULL)"
        )

    def stamp(name: str) -> str:
        return (
            f"({is_text(name)} AND regexp_full_match({text(name)}, {_q(UTC_STAMP)}) "
            f"AND TRY_CAST({text(name)} AS TIMESTAMPTZ) IS NOT NULL)"
        )

    def nullable(name: str) -> str:
        return f"(f.{name} IS NULL OR {is_text(name)})"

    ok = " AND ".join(
        [
            "starts_with(body, '{')",
            "len(keys) = len(list_distinct(keys))",
            *(is_text(n) for n in ("event_id", "stream", "aggregate_id", "kind")),
            integer("position", "BIGINT"),
            integer("seq", "INTEGER"),
            integer("schema_version", "SMALLINT"),
            stamp("occurred_at"),
            stamp("recorded_at"),
            nullable("correlation_id"),
            nullable("causation_id"),
            # a string payload is its text; an object must be the body's last field, so that its
            # exact text is the rest of the body (checked against the parsed value: equal to its
            # minified form at once for a compact payload, else parsed again)
            f"({is_text('payload')} OR (starts_with({v('payload')}, '{{') AND CASE "
            f"WHEN tail = {v('payload')} THEN true "
            "WHEN starts_with(tail, '{') AND ends_with(tail, '}') AND json_valid(tail) "
            "THEN json(tail) = f.payload ELSE false END))",
        ]
    )
    # The text after the only '"payload"' key and its ':', up to the body's closing brace. A
    # body with anything else around its payload goes to Python, which finds the value's span.
    tail = (
        "CASE WHEN strlen(body) - strlen(replace(body, '\"payload\"', '')) = 9 THEN "
        "nullif(regexp_extract(body, '\"payload\"\\s*:\\s*(\\{.*\\})\\}$', 1, 's'), '') END"
    )
    # Each step materialized: DuckDB would otherwise paste an expression into every use of it.
    return f"""
WITH a AS MATERIALIZED (
    SELECT seq, body,
        CASE WHEN json_valid(body) THEN json_transform(body, '{{{fields}}}') END AS f,
        CASE WHEN json_valid(body) THEN json_keys(body) END AS keys
    FROM {msgs}
),
t AS MATERIALIZED (
    -- a compact body ends with its payload's minified text: no need to search for it
    SELECT *, CASE WHEN ends_with(body, '"payload":' || {v("payload")} || '}}') THEN {v("payload")}
        ELSE {tail} END AS tail
    FROM a
),
b AS MATERIALIZED (
    -- CASE, not AND: DuckDB does not stop at the first false term, and JSON functions raise
    -- on a body that is not JSON
    SELECT *, CASE WHEN f IS NOT NULL THEN coalesce({ok}, false) ELSE false END AS ok FROM t
)
SELECT seq, ok,
    {text("event_id")} AS event_id,
    TRY_CAST({v("position")} AS BIGINT) AS position,
    {text("stream")} AS stream,
    {text("aggregate_id")} AS aggregate_id,
    TRY_CAST({v("seq")} AS INTEGER) AS seq_,
    {text("kind")} AS kind,
    TRY_CAST({v("schema_version")} AS SMALLINT) AS schema_version,
    TRY_CAST({text("occurred_at")} AS TIMESTAMPTZ) AS occurred_at,
    TRY_CAST({text("recorded_at")} AS TIMESTAMPTZ) AS recorded_at,
    {text("correlation_id")} AS correlation_id,
    {text("causation_id")} AS causation_id,
    CASE WHEN {is_text("payload")} THEN {text("payload")} ELSE tail END AS payload,
    {_q(source_prefix)} || seq AS source
FROM b
"""


# --------------------------------------------------------------------------- the database side
@dataclass
class BatchResult:
    """What one committed batch did."""

    messages: int = 0  # messages taken in (each counted once, by sequence)
    redelivered: int = 0  # messages the database already had by sequence (acknowledged only)
    applied: int = 0
    duplicates: int = 0
    conflicting: int = 0
    quarantined: int = 0
    last_seq: int | None = None
    how: str = "none"  # none, incremental or full (see incremental.apply)
    seconds: float = 0.0
    committed_at: float = 0.0  # time.time() of the commit

    @property
    def balanced(self) -> bool:
        return self.messages == self.applied + self.duplicates + self.quarantined


@dataclass
class StreamSummary:
    """What a stream run did (``catch_up`` returns it; ``--follow`` prints it at the end)."""

    db: Path
    url: str
    run_id: int
    consumer: str = ""
    batches: int = 0
    messages: int = 0
    redelivered: int = 0
    applied: int = 0
    duplicates: int = 0
    conflicting: int = 0
    quarantined: int = 0
    full_builds: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    skipped_gone: int = (
        0  # messages removed from the stream (retention) before this database read them
    )
    total_events: int = 0
    seconds: float = 0.0
    lag_events: int | None = None
    lag_seconds: float | None = None
    latencies: list[float] = field(
        default_factory=list, repr=False
    )  # commit - publish, per message
    hashes: dict[str, str] = field(default_factory=dict)
    stopped_by: str = ""

    @property
    def balanced(self) -> bool:
        return self.messages == self.applied + self.duplicates + self.quarantined

    @property
    def events_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def latency(self, q: float) -> float | None:
        """The ``q`` quantile of the per-message latency, publish to commit, in seconds."""
        if not self.latencies:
            return None
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))]

    def __str__(self) -> str:
        lines = [
            f"stream run {self.run_id} from {self.url} into {self.db} (consumer {self.consumer}): "
            f"{self.messages:,} messages in {self.batches:,} batches, {self.seconds:.1f} s "
            f"({self.events_per_second:,.0f}/s)"
            + (f", stopped by {self.stopped_by}" if self.stopped_by else ""),
            f"  applied {self.applied:,} new, skipped {self.duplicates:,} identical redeliveries, "
            f"quarantined {self.quarantined:,} ({self.conflicting:,} conflicting duplicates) — "
            + ("nothing lost" if self.balanced else "NOT BALANCED"),
            f"  stream sequence now {self.last_seq if self.last_seq is not None else '-'}"
            + (
                f" ({self.redelivered:,} messages delivered again, acknowledged only)"
                if self.redelivered
                else ""
            )
            + (
                f"; {self.skipped_gone:,} messages were gone from the stream before this database read them"
                if self.skipped_gone
                else ""
            ),
            f"  database now holds {self.total_events:,} events"
            + (
                f"; {self.full_builds} batch(es) reached back in the log and were applied by a full build"
                if self.full_builds
                else ""
            ),
        ]
        if self.lag_events is not None or self.lag_seconds is not None:
            lines.append("  lag at the end: " + _lag_text(self.lag_events, self.lag_seconds))
        p50, p99 = self.latency(0.5), self.latency(0.99)
        if p50 is not None and p99 is not None:
            lines.append(f"  latency publish → commit: p50 {p50:.3f} s, p99 {p99:.3f} s")
        return "\n".join(lines)


def _lag_text(events: int | None, seconds: float | None) -> str:
    ev = "?" if events is None else f"{events:,} events"
    sec = "?" if seconds is None else f"{seconds:.2f} s"
    return f"{ev}, {sec} behind"


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
        for name in (
            "messages",
            "redelivered",
            "applied",
            "duplicates",
            "conflicting",
            "quarantined",
        ):
            setattr(t, name, getattr(t, name) + getattr(result, name))
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
                + _typed_sql("(SELECT * FROM _msgs WHERE body IS NOT NULL)", prefix)
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


# --------------------------------------------------------------------------- the consumer loop
@dataclass
class Options:
    """How a stream run batches and when it stops."""

    max_batch: int = 20_000  # messages per transaction at most
    max_wait: float = 1.0  # seconds to wait for the first message of a batch
    linger: float = 0.005  # seconds to wait for more once a batch has begun
    follow: bool = False  # False: stop once caught up
    idle_stop: float = 1.0  # catch-up: stop after this long with nothing new
    max_messages: int | None = None  # stop after this many messages (tests, benchmarks)
    status_every: float = 5.0  # follow: a status line this often (seconds); 0: never
    keep_latencies: bool = False
    reconnect_timeout: float = 60.0  # catch-up: give up after the broker is gone this long
    reader_lag: float = 5.0  # readers see a snapshot at most about this far behind (seconds)
    publish: bool = True  # publish read snapshots for readers (see replay/snapshots.py)


async def run(
    source: Source,
    db: str | Path,
    *,
    consumer: str | None = None,
    options: Options | None = None,
    stop: asyncio.Event | None = None,
    status: Callable[[str], None] | None = None,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
) -> StreamSummary:
    """Consume ``source`` into ``db`` until caught up (or, with ``options.follow``, until
    ``stop`` is set); returns what was done. See the module docstring for the guarantees."""
    opts = options or Options()
    told = False
    while True:
        try:
            key = await source.connect()  # before the database is touched: no file for a bad URL
            break
        except StreamNotFound as exc:
            await source.close()
            if not opts.follow or (stop is not None and stop.is_set()):
                raise
            if status is not None and not told:
                status(f"{exc}; waiting for it")
                told = True
            await asyncio.sleep(1.0)
        except BaseException:
            await source.close()
            raise
    store_db = StreamDatabase(
        db, source.url, memory_limit=memory_limit, max_payload_bytes=max_payload_bytes
    )
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb")
    loop = asyncio.get_running_loop()

    async def in_db(fn: Callable[[], T]) -> T:
        # DuckDB releases the GIL: the event loop keeps receiving while a batch commits.
        return await loop.run_in_executor(pool, fn)

    summary = StreamSummary(db=Path(db), url=source.url, run_id=store_db.run_id)
    started = time.perf_counter()
    last_status = started
    readers = LiveReaders(db, source.url, reader_lag=opts.reader_lag) if opts.publish else None
    failed = True
    try:
        store_db.key = key
        name = store_db.consumer_name(key, consumer)
        store_db.consumer = summary.consumer = name
        if readers is not None:
            await in_db(lambda: readers.start(store_db.con, key.source, name))
        committed = store_db.committed(key)
        gone_from = await _restart(source, committed, name, opts)
        if gone_from is not None:
            summary.skipped_gone += gone_from - (committed or 0) - 1
        target = None if opts.follow else await source.end()
        idle_since = time.perf_counter()
        while True:
            if stop is not None and stop.is_set():
                summary.stopped_by = summary.stopped_by or "signal"
                break
            if opts.max_messages is not None and summary.messages >= opts.max_messages:
                break
            done = store_db.totals.last_seq if store_db.totals.last_seq is not None else committed
            if target is not None and done is not None and done >= target:
                summary.stopped_by = summary.stopped_by or "caught up"
                break
            want = opts.max_batch
            if opts.max_messages is not None:
                want = max(1, min(want, opts.max_messages - summary.messages))
            try:
                quiet = not opts.follow and source.pending() == 0
                msgs = await _fetch(source, want, opts, stop, wait=0.2 if quiet else None)
            except Resync:
                committed = store_db.committed(key)
                gone_from = await _restart(source, committed, name, opts)
                if gone_from is not None:
                    summary.skipped_gone += gone_from - (committed or 0) - 1
                continue
            if not msgs:
                if readers is not None:
                    await in_db(lambda: readers.idle(store_db.con))
                pending = source.pending()
                summary.lag_events = pending
                if pending == 0:
                    summary.lag_seconds = 0.0
                now = time.perf_counter()
                if (
                    status is not None
                    and opts.status_every
                    and now - last_status >= opts.status_every
                ):
                    last_status = now
                    status(_status_line(summary, now - started))
                if not opts.follow and (
                    pending == 0 or time.perf_counter() - idle_since >= opts.idle_stop
                ):
                    summary.stopped_by = summary.stopped_by or "caught up"
                    break
                continue
            idle_since = time.perf_counter()
            result = await in_db(lambda m=msgs: store_db.apply(key, m))
            await source.ack(msgs)
            if readers is not None:
                await in_db(
                    lambda at=result.committed_at, seq=store_db.totals.last_seq: readers.committed(
                        store_db.con, at, seq, store_db.events_now()
                    )
                )
            summary.batches += 1
            summary.full_builds += result.how == "full"
            for name_ in (
                "messages",
                "redelivered",
                "applied",
                "duplicates",
                "conflicting",
                "quarantined",
            ):
                setattr(summary, name_, getattr(summary, name_) + getattr(result, name_))
            if result.last_seq is not None:
                summary.last_seq = result.last_seq
                if summary.first_seq is None:
                    summary.first_seq = msgs[0].seq
            last = msgs[-1]
            summary.lag_events = source.pending()
            if last.published_ns is not None:
                # behind: how old the last event applied is, unless nothing is waiting
                summary.lag_seconds = (
                    0.0
                    if summary.lag_events == 0
                    else max(0.0, result.committed_at - last.published_ns / 1e9)
                )
                if opts.keep_latencies:
                    summary.latencies.extend(
                        max(0.0, result.committed_at - m.published_ns / 1e9)
                        for m in msgs
                        if m.published_ns is not None
                    )
            now = time.perf_counter()
            if status is not None and opts.status_every and now - last_status >= opts.status_every:
                last_status = now
                status(_status_line(summary, now - started))
                if readers is not None and readers.over_budget:
                    status(_over_budget(readers))
        failed = False
    finally:
        summary.seconds = time.perf_counter() - started
        try:
            await source.close()
        finally:
            try:
                if readers is not None:  # no checkpoint (finish, close) while a copy runs
                    await in_db(readers.publisher.wait)
                summary.hashes = await in_db(store_db.finish)
                summary.total_events = await in_db(store_db.total_events)
            finally:
                try:
                    if readers is not None:
                        await in_db(
                            lambda: readers.stop(
                                store_db.con, publish=not failed, finished_at=store_db.finished_at
                            )
                        )
                finally:
                    await in_db(store_db.close)
                    if readers is not None:
                        await in_db(readers.closed)
                    pool.shutdown(wait=True)
    return summary


def _over_budget(readers: LiveReaders) -> str:
    cost = readers.publisher.last_cost or 0.0
    return (
        f"stream: publishing a read snapshot takes {cost:.1f} s, more than half the reader lag "
        f"of {readers.publisher.reader_lag:g} s: readers may fall further behind"
    )


async def _restart(
    source: Source, committed: int | None, consumer: str, opts: Options
) -> int | None:
    """``source.start``, tried again while the broker cannot be reached (a restart of the broker,
    a network blip), for ``opts.reconnect_timeout`` seconds (``--follow``: for ever)."""
    deadline = time.monotonic() + opts.reconnect_timeout
    wait = 0.1
    while True:
        try:
            return await source.start(committed, consumer)
        except (SourceError, ReplayError):
            raise
        except Exception as exc:
            if not opts.follow and time.monotonic() >= deadline:
                raise SourceError(
                    f"{source.url}: cannot position the consumer ({exc or type(exc).__name__})"
                ) from exc
            await asyncio.sleep(wait)
            wait = min(wait * 2, 2.0)


async def _fetch(
    source: Source,
    want: int,
    opts: Options,
    stop: asyncio.Event | None,
    wait: float | None = None,
) -> list[Message]:
    """The next batch; returns early (empty) when ``stop`` is set."""
    wait = opts.max_wait if wait is None else wait
    if stop is None:
        return await source.fetch(want, wait)
    fetch = asyncio.ensure_future(source.fetch(want, wait))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({fetch, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if fetch.done():
        return fetch.result()
    fetch.cancel()
    with contextlib.suppress(asyncio.CancelledError, Resync):
        await fetch
    # Whatever the adapter had already taken is unacknowledged and uncommitted: the next run's
    # consumer is positioned from the database, so it comes again then.
    return []


def _status_line(s: StreamSummary, elapsed: float) -> str:
    rate = s.messages / elapsed if elapsed else 0.0
    return (
        f"stream: {s.messages:,} messages ({rate:,.0f}/s), applied {s.applied:,}, "
        f"quarantined {s.quarantined:,}, sequence {s.last_seq if s.last_seq is not None else '-'}; "
        f"lag {_lag_text(s.lag_events, s.lag_seconds)}"
    )


def run_sync(coro_factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end from synchronous code, also inside a notebook (whose event
    loop is already running in this thread: the coroutine then runs in a thread of its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as ex:
        return ex.submit(lambda: asyncio.run(coro_factory())).result()  # type: ignore[arg-type]


# --------------------------------------------------------------------------- entry points
def open_source(url: str, **kwargs: Any) -> Source:
    """The adapter for a bus URL: ``nats://HOST:PORT`` (NATS JetStream). Only adapters tested
    against a real broker are shipped; another bus adds its scheme here."""
    if url.startswith(("nats://", "tls://")):
        from .nats_source import NatsSource

        return NatsSource(url, **kwargs)
    raise ValueError(f"{url!r}: not a stream URL (the live stream is read from nats://HOST:PORT)")


def is_stream_url(text: str) -> bool:
    return "://" in str(text) and str(text).split("://", 1)[0] in ("nats", "tls")


def catch_up(
    db: str | Path,
    url: str,
    *,
    stream: str = "PLATFORM_EVENTS",
    consumer: str | None = None,
    max_batch: int = 20_000,
    max_messages: int | None = None,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
) -> StreamSummary:
    """Apply everything published on the stream since this database last read it, up to the
    stream's last message when called (what comes later waits for the next call), then return
    (a notebook's refresh): ``workbench.replay.catch_up("out/sample.duckdb", "nats://127.0.0.1:4222")``.
    Works inside a running event loop (Jupyter) too. It writes the database and, where a
    follower published read snapshots of it, publishes a new one when it ends; a reader
    connection that attached the file itself (no snapshot) must be closed first (DuckDB will not
    mix a reader and a writer of one file in a process)."""
    opts = Options(max_batch=max_batch, max_messages=max_messages, status_every=0)
    return run_sync(
        lambda: run(
            open_source(url, stream=stream),
            db,
            consumer=consumer,
            options=opts,
            memory_limit=memory_limit,
            max_payload_bytes=max_payload_bytes,
        )
    )


def follow(
    db: str | Path,
    url: str,
    *,
    stream: str = "PLATFORM_EVENTS",
    consumer: str | None = None,
    max_batch: int = 20_000,
    stop: asyncio.Event | None = None,
    status: Callable[[str], None] | None = None,
    status_every: float = 5.0,
    signals: bool = True,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    reader_lag: float = 5.0,
) -> StreamSummary:
    """Follow the stream until SIGINT or SIGTERM (with ``signals``) or until ``stop`` is set;
    stops between batches, so the database always ends on a committed batch. Meanwhile readers
    (``workbench.connect(db, read_only=True)``, ``audit``, notebooks) see a read snapshot at most
    about ``reader_lag`` seconds behind the last commit (see :mod:`.snapshots`)."""

    async def main() -> StreamSummary:
        halt = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = []
        if signals:
            import signal

            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, halt.set)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
        try:
            return await run(
                open_source(url, stream=stream, reconnect_forever=True),
                db,
                consumer=consumer,
                options=Options(
                    max_batch=max_batch,
                    follow=True,
                    status_every=status_every,
                    reader_lag=reader_lag,
                ),
                stop=halt,
                status=status,
                memory_limit=memory_limit,
                max_payload_bytes=max_payload_bytes,
            )
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    return asyncio.run(main())
