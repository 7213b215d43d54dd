"""What replay does with a row, decided once for every engine and the live stream.

* Every row is judged by the domain's decoder (:func:`judge`); the SQL fast path may only vouch
  for rows the decoder would accept, and hands it every other row.
* Copies of one ``event_id``: only copies that decode compete, together with the event already
  stored, and the winner is the first in :data:`WINNER_ORDER` (earliest ``recorded_at``, then
  ``position``, then the payload text, then the other envelope fields; a stored copy before an
  identical new one). A copy identical to the winner is a redelivery; any other is quarantined
  as a conflicting duplicate, and so is a stored event that a new copy beats (it is *displaced*).
  So the same copies give the same winner in any row order, file split or order of runs.
* A quarantined row is kept once: a row whose raw text is already in quarantine is counted as a
  redelivery, not stored again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb

from ..domain.catalog import DecodingError, try_decode
from ..domain.events import ENVELOPE_FIELDS, Event
from .parquet_rows import raw_json
from .schema import QUARANTINE

CONFLICT = "conflicting_duplicate"

#: The order that picks the applied copy among the decodable copies of one ``event_id``: by
#: the catalog's values, so SQL (``NULLS FIRST``) and Python say the same.
WINNER_ORDER = (
    "recorded_at",
    "position",
    "payload",
    "seq",
    "occurred_at",
    "stream",
    "aggregate_id",
    "kind",
    "schema_version",
    "correlation_id",
    "causation_id",
)


def judge(
    row: Mapping[str, Any], *, text_times: bool = False, max_payload_bytes: int | None
) -> Event | DecodingError:
    """The domain's decoder: the one judge of a row (see :func:`workbench.domain.catalog.decode`)."""
    return try_decode(row, text_times=text_times, max_payload_bytes=max_payload_bytes)


def canonical_row(event: Event, payload: str) -> dict[str, Any]:
    """A decoded row in the catalog's values (what ``events`` stores)."""
    return {
        "event_id": event.event_id,
        "position": event.position,
        "stream": event.stream,
        "aggregate_id": event.aggregate_id,
        "seq": event.seq,
        "kind": event.kind,
        "schema_version": event.schema_version,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "payload": payload,
    }


def winner_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    values = (row.get(c) for c in WINNER_ORDER)
    return tuple((v is not None, v if v is not None else 0) for v in values)


def differences(row: Mapping[str, Any], winner: Mapping[str, Any]) -> list[str]:
    return [c for c in ENVELOPE_FIELDS if row.get(c) != winner.get(c)]


def conflict_error(event_id: str, diff: Sequence[str]) -> str:
    return f"event {event_id} delivered again with different {', '.join(diff)}"


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def _integer(value: Any, bits: int) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    return value if ok and -(2 ** (bits - 1)) <= value < 2 ** (bits - 1) else None


def quarantine_row(
    row: Mapping[str, Any],
    source: str,
    run_id: int,
    reason: str,
    field: str | None,
    error: str,
    raw: str | None = None,
) -> tuple[Any, ...]:
    """A ``quarantine`` row: what could be read of the envelope, the reason and the raw row."""
    return (
        _text(row.get("event_id")),
        _integer(row.get("position"), 64),
        _text(row.get("stream")),
        _text(row.get("aggregate_id")),
        _text(row.get("kind")),
        _integer(row.get("schema_version"), 16),
        reason,
        field,
        _text(error) or error.encode("utf-8", "backslashreplace").decode("utf-8"),
        raw if raw is not None else raw_json(dict(row)),
        source,
        run_id,
    )


def refused(
    row: Mapping[str, Any], source: str, run_id: int, err: DecodingError
) -> tuple[Any, ...]:
    return quarantine_row(row, source, run_id, err.reason, err.field, str(err))


def conflicting(
    row: Mapping[str, Any], source: str, run_id: int, winner: Mapping[str, Any]
) -> tuple[Any, ...]:
    diff = differences(row, winner)
    return quarantine_row(
        row,
        source,
        run_id,
        CONFLICT,
        diff[0] if diff else None,
        conflict_error(str(row["event_id"]), diff),
    )


def store_quarantine(
    con: duckdb.DuckDBPyConnection, rows: Iterable[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Append quarantine rows not already kept (by raw text); returns the rows stored (the
    others were there already, in the database or earlier in ``rows``)."""
    from . import store

    raw_at = QUARANTINE.column_names.index("raw")
    fresh: dict[str, tuple[Any, ...]] = {}
    for r in rows:
        fresh.setdefault(r[raw_at], r)
    if fresh:
        con.register("_qraw", _one_column(list(fresh)))
        try:
            known = {
                str(x[0])
                for x in con.execute(
                    "SELECT DISTINCT q.raw FROM quarantine q SEMI JOIN _qraw n ON n.raw = q.raw"
                ).fetchall()
            }
        finally:
            con.unregister("_qraw")
        for k in known:
            del fresh[k]
        store.append_rows(con, QUARANTINE, list(fresh.values()))
    return list(fresh.values())


def _one_column(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.table({"raw": pa.array(values, pa.string())})


def refresh_conflicts(con: duckdb.DuckDBPyConnection, event_ids: Iterable[str]) -> None:
    """After a stored event was displaced, say again how each kept conflicting copy of it
    differs from the copy now applied (the texts then do not depend on the order of runs)."""
    ids = sorted(set(event_ids))
    if not ids:
        return
    cols = ", ".join(ENVELOPE_FIELDS)
    winners = {
        r["event_id"]: _comparable(raw_json(r))
        for r in con.sql(
            f"SELECT {cols} FROM events WHERE event_id IN (SELECT unnest(?))", params=[ids]
        )
        .to_arrow_table()
        .to_pylist()
    }
    rows = con.execute(
        "SELECT rowid, event_id, raw FROM quarantine WHERE reason = ? AND event_id IN (SELECT unnest(?))",
        [CONFLICT, ids],
    ).fetchall()
    for rowid, eid, raw in rows:
        winner = winners.get(eid)
        if winner is None:
            continue
        mine = _comparable(raw)
        diff = [c for c in ENVELOPE_FIELDS if mine.get(c) != winner.get(c)]
        con.execute(
            "UPDATE quarantine SET field = ?, error = ? WHERE rowid = ?",
            [diff[0] if diff else None, conflict_error(eid, diff), rowid],
        ).fetchall()


def _comparable(raw: str) -> dict[str, Any]:
    """A kept row's envelope values from its raw text, comparable whatever carried it: an export
    row (``raw_json``: payload as text, Python's timestamps) or a stream message's body (payload
    nested: its exact text is taken; RFC 3339 timestamps)."""
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(parsed, dict):
        return {}
    obj: dict[str, Any] = parsed
    if isinstance(obj.get("payload"), dict | list):
        from .bodies import BodyError, envelope_row, parse_body

        try:
            body, text = parse_body(raw)
            obj = envelope_row(body, text)
        except BodyError:
            return obj
    for k in ("occurred_at", "recorded_at"):
        v = obj.get(k)
        if isinstance(v, str):
            with contextlib.suppress(ValueError):
                obj[k] = datetime.fromisoformat(v.replace("Z", "+00:00"))
    return obj
