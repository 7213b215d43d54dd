"""A message body read as one catalog envelope: in Python (:func:`parse_body`, the exact text of a
nested payload kept) and in SQL for a whole batch (:func:`typed_sql`: the bodies DuckDB can
certainly read, typed in one pass; Python judges the others).
"""

from __future__ import annotations

import json
import re
from json import decoder as _json_decoder
from typing import Any

from ..domain.events import ENVELOPE_FIELDS, RFC3339_PATTERN
from .validate import TIMESTAMP_RE

# --------------------------------------------------------------------------- decoding messages
#: RFC 3339 as the catalog writes it (date, T, time, up to microseconds, Z or an offset).
RFC3339 = f"^{RFC3339_PATTERN}$"
#: What the SQL vouches for: UTC only (an offset near year 1 or 9999 leaves the calendar in
#: Python, not in DuckDB, so the decoder judges every other offset).
UTC_STAMP = TIMESTAMP_RE

_WS = re.compile(r"[ \t\n\r]*")
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
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


def typed_sql(msgs: str, source_prefix: str) -> str:
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
