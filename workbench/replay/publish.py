"""An export as live-stream messages, in the catalog's format (for demos, tests and backfills).

Each row becomes one message: the envelope as one JSON object, ``payload`` nested (its text from
the export, byte for byte, when it is a JSON object; the text as a JSON string otherwise, so a
malformed payload travels and is judged exactly as in the export), timestamps as RFC 3339
strings in UTC; subject ``platform.<stream>.<aggregate_id>``; message id (``Nats-Msg-Id``) the
``event_id``, so the broker drops an identical redelivery.

Rows go in log order (``position``, then ``event_id``), the copies of one ``event_id``
together, the one a replay keeps first (:data:`~workbench.replay.engine.WINNER_ORDER`). A copy
of an ``event_id`` with *other* content is not a redelivery but evidence of a platform fault:
it gets the message id ``<event_id>~<16 hex of the SHA-256 of its body>``, so that the broker
keeps it and the consumer quarantines it as a conflicting duplicate, as a replay of the export
does. A row without a usable ``event_id`` gets ``raw~<hash>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ..domain.events import ENVELOPE_FIELDS
from ..sources import parquet_files
from . import parquet_rows
from .ingest_sql import ENVELOPE_TYPES
from .judging import WINNER_ORDER

#: Characters a NATS subject token may not hold.
_BAD_TOKEN = re.compile(r"[\s.*>]")


@dataclass(frozen=True, slots=True)
class OutMessage:
    subject: str
    body: bytes
    msg_id: str
    kind: str  # event, redelivery (an identical copy), conflicting, malformed


def subject(stream: Any, aggregate_id: Any, prefix: str = "platform") -> str:
    """``platform.<stream>.<aggregate_id>``; a part that is missing or cannot be a subject token
    is ``_`` (the body, not the subject, is what the consumer reads)."""

    def token(v: Any) -> str:
        return v if isinstance(v, str) and v and not _BAD_TOKEN.search(v) else "_"

    return f"{prefix}.{token(stream)}.{token(aggregate_id)}"


def _stamp(v: Any) -> Any:
    if isinstance(v, datetime):
        v = v.astimezone(UTC) if v.tzinfo is not None else v.replace(tzinfo=UTC)
        return v.isoformat().replace("+00:00", "Z")
    return v


def _payload_text(v: Any) -> str:
    """The payload as a JSON value: the export's own text when it is a JSON object."""
    if v is None:
        return "null"
    if isinstance(v, str):
        try:
            parsed = json.loads(v)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            return v
    return json.dumps(v, ensure_ascii=False, default=str)


_HEAD = [name for name in ENVELOPE_FIELDS if name != "payload"]


def body(row: dict[str, Any]) -> bytes:
    """The message body of one envelope row (catalog section 1, live stream): compact JSON,
    ``payload`` last."""
    head = json.dumps(
        {name: _stamp(row.get(name)) for name in _HEAD},
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return f'{head[:-1]},"payload":{_payload_text(row.get("payload"))}}}'.encode()


def messages(sources: Sequence[str | Path], *, batch_rows: int = 50_000) -> Iterator[OutMessage]:
    """Every row of the exports as a message, in publishing order (see the module docstring).
    Memory stays bounded: DuckDB sorts, rows come out in record batches."""
    files = parquet_files(sources)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false").fetchall()
        # The files are read as replay reads them (literal paths, types kept): native rows are
        # sorted by DuckDB; foreign rows (types the catalog does not name) go out at the end as
        # they are, for the consumer's decoder to judge.
        con.execute(
            "CREATE TEMP TABLE input ("
            + ", ".join(f"{c} {t}" for c, t in ENVELOPE_TYPES.items())
            + ")"
        ).fetchall()
        foreign: list[dict[str, Any]] = []
        for _info, batches in parquet_rows.read(list(files)):
            for batch in batches:
                if batch.native is not None:
                    con.register("_batch", batch.native)
                    con.execute("INSERT INTO input SELECT * FROM _batch").fetchall()
                    con.unregister("_batch")
                else:
                    foreign.extend(batch.foreign or ())
        order = ", ".join(f"{c} NULLS FIRST" for c in WINNER_ORDER)
        rel = con.sql(
            f"""SELECT {", ".join(ENVELOPE_FIELDS)} FROM (
                SELECT *,
                    CASE WHEN event_id IS NULL THEN position ELSE first_value(position) OVER w END
                        AS group_position,
                    row_number() OVER w AS pick
                FROM input
                WINDOW w AS (PARTITION BY event_id ORDER BY {order})
            )
            ORDER BY group_position NULLS LAST, event_id NULLS LAST, pick, position, payload"""
        )
        reader = rel.to_arrow_reader(batch_rows)
        winner: tuple[str | None, tuple[Any, ...] | None] = (None, None)
        for rb in reader:
            for row in rb.to_pylist():
                eid = row.get("event_id")
                text = body(row)
                canon = tuple(row.get(c) for c in ENVELOPE_FIELDS)
                if not isinstance(eid, str) or not eid:
                    yield OutMessage(
                        subject(row.get("stream"), row.get("aggregate_id")),
                        text,
                        "raw~" + hashlib.sha256(text).hexdigest()[:16],
                        "malformed",
                    )
                    continue
                if winner[0] != eid:
                    winner = (eid, canon)
                    kind, msg_id = "event", eid
                elif canon == winner[1]:
                    kind, msg_id = "redelivery", eid
                else:
                    kind = "conflicting"
                    msg_id = f"{eid}~{hashlib.sha256(text).hexdigest()[:16]}"
                yield OutMessage(
                    subject(row.get("stream"), row.get("aggregate_id")), text, msg_id, kind
                )
        for row in foreign:
            text = body(row)
            yield OutMessage(
                subject(row.get("stream"), row.get("aggregate_id")),
                text,
                "raw~" + hashlib.sha256(text).hexdigest()[:16],
                "malformed",
            )
    finally:
        con.close()
