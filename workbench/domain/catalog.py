"""Decoding: a raw envelope row → a typed :class:`Event`, or a :class:`DecodingError`.

This is the one place that knows every (kind, schema_version) of the catalog and the upcasters
between versions. Decoding never raises anything but :class:`DecodingError`, whatever the input,
and the error names the event, the kind and the field, so a caller can quarantine the row with a
reason an analyst can act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from . import client, ledger, payment_order, payout, rating, receipt, trader
from .events import ENVELOPE_FIELDS, RFC3339_PATTERN, STREAMS, Event, Payload, loads

PAYLOADS: Final[dict[tuple[str, int], type[Payload]]] = {
    (cls.KIND, cls.VERSION): cls
    for module in (client, trader, payment_order, receipt, payout, ledger, rating)
    for cls in module.PAYLOADS
}

#: Older versions and the function that lifts each to the next version.
UPCASTERS: Final[dict[tuple[str, int], Callable[[Any], Payload]]] = {
    ("trader.registered", 1): trader.upcast_registered_v1,
    ("payment_order.created", 1): payment_order.upcast_created_v1,
}

KINDS: Final[frozenset[str]] = frozenset(kind for kind, _ in PAYLOADS)
LATEST: Final[dict[str, int]] = {kind: max(v for k, v in PAYLOADS if k == kind) for kind in KINDS}


class DecodingError(ValueError):
    """An event that cannot be decoded. ``reason`` is one of :data:`REASONS`."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        event_id: str | None = None,
        kind: str | None = None,
        version: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.message = message
        self.event_id = event_id
        self.kind = kind
        self.version = version
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"event {self.event_id or '?'}"
        if self.kind:
            where += (
                f" ({self.kind}" + (f" v{self.version}" if self.version is not None else "") + ")"
            )
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.message}"


REASONS: Final = (
    "bad_envelope",
    "bad_json",
    "unknown_kind",
    "unknown_version",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "unexpected_field",
    "out_of_range",
    "too_large",
)

#: The catalog's envelope integers: (smallest allowed, largest allowed). ``position`` is int64,
#: ``seq`` int32 and ``schema_version`` int16, each with the catalog's lower bound.
ENVELOPE_INTS: Final[dict[str, tuple[int, int]]] = {
    "position": (0, 2**63 - 1),
    "seq": (1, 2**31 - 1),
    "schema_version": (1, 2**15 - 1),
}

#: A payload larger than this (UTF-8 bytes) is quarantined as ``too_large`` before it is parsed:
#: no catalog payload comes near it, and one hostile row must not exhaust a run's memory.
DEFAULT_MAX_PAYLOAD_BYTES: Final = 1_000_000

#: RFC 3339 as the live stream writes envelope timestamps (JSON has no timestamp type).
_RFC3339_TEXT: Final = re.compile(RFC3339_PATTERN)
_ESCAPED_SURROGATE: Final = re.compile(r"\\[uU][dD][89a-fA-F]")
#: How a reader names the second copy of a repeated column (``payload#2``).
_REPEATED: Final = re.compile("(" + "|".join(ENVELOPE_FIELDS) + r")#\d+")


def _is_text(value: str) -> bool:
    """A string that is valid Unicode text (no lone surrogate), so UTF-8 can hold it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _envelope_str(
    raw: Mapping[str, Any], name: str, event_id: str | None, *, nullable: bool = False
) -> str | None:
    value = raw.get(name)
    if value is None:
        if nullable:
            return None
        raise DecodingError("bad_envelope", "is missing", event_id=event_id, field=name)
    if isinstance(value, bytes | bytearray):
        raise DecodingError(
            "bad_envelope",
            "must be a string, got bytes" + ("" if _utf8(value) else " that are not UTF-8"),
            event_id=event_id,
            field=name,
        )
    if not isinstance(value, str):
        raise DecodingError(
            "bad_envelope",
            f"must be a string, got {type(value).__name__}",
            event_id=event_id,
            field=name,
        )
    if not _is_text(value):
        raise DecodingError(
            "bad_envelope", "is not valid Unicode (lone surrogate)", event_id=event_id, field=name
        )
    if not nullable and value == "":
        raise DecodingError("bad_envelope", "is empty", event_id=event_id, field=name)
    return value


def _utf8(value: bytes | bytearray) -> bool:
    try:
        bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _envelope_int(raw: Mapping[str, Any], name: str, event_id: str | None) -> int:
    """An envelope integer: a true integer (never a float, a string or a boolean) within the
    catalog's type; past it is ``out_of_range``, below the catalog's minimum ``bad_envelope``."""
    value = raw.get(name)
    lowest, highest = ENVELOPE_INTS[name]
    if value is None:
        raise DecodingError("bad_envelope", "is missing", event_id=event_id, field=name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodingError(
            "bad_envelope",
            f"must be an integer, got {type(value).__name__} {value!r}"[:200],
            event_id=event_id,
            field=name,
        )
    if value > highest or value < -highest - 1:
        raise DecodingError(
            "out_of_range",
            f"{value} is outside the catalog's {highest.bit_length() + 1}-bit integer",
            event_id=event_id,
            field=name,
        )
    if value < lowest:
        raise DecodingError(
            "bad_envelope", f"must be >= {lowest}, got {value}", event_id=event_id, field=name
        )
    return value


def _envelope_time(
    raw: Mapping[str, Any], name: str, event_id: str | None, *, text: bool
) -> datetime:
    """A timestamp: a typed one from an export (a timestamp column), or, from the live stream
    (``text``), an RFC 3339 string. A date, a number or another string is refused."""
    value = raw.get(name)
    if text and isinstance(value, str):
        if not _RFC3339_TEXT.fullmatch(value):
            raise DecodingError(
                "bad_envelope",
                f"{value[:60]!r} is not an RFC 3339 timestamp",
                event_id=event_id,
                field=name,
            )
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise DecodingError(
                "bad_envelope",
                f"{value!r} is not a valid timestamp",
                event_id=event_id,
                field=name,
            ) from None
    if not isinstance(value, datetime):
        shown = repr(value)[:80]
        raise DecodingError(
            "bad_envelope",
            f"must be a timestamp, got {type(value).__name__} {shown}",
            event_id=event_id,
            field=name,
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # Parquet timestamps without a zone are UTC by contract
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise DecodingError(
            "out_of_range", f"{value!r} is out of range in UTC", event_id=event_id, field=name
        ) from None


def _payload_object(
    raw: Mapping[str, Any], event_id: str, kind: str, version: int, max_bytes: int | None
) -> Any:
    """The payload as parsed JSON (numbers that are not integers become exact Decimals). The
    catalog's payload is a JSON *string* (the live stream's nested object reaches here as its
    exact text), so bytes, structs and other types are refused, never converted."""

    def error(reason: str, message: str) -> DecodingError:
        return DecodingError(
            reason, message, event_id=event_id, kind=kind, version=version, field="payload"
        )

    value = raw.get("payload")
    if value is None:
        raise error("bad_envelope", "is missing")
    if not isinstance(value, str):
        raise error("bad_envelope", f"must be a JSON string, got {type(value).__name__}")
    if max_bytes is not None and len(value) > max_bytes // 4:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise error("too_large", f"payload is {size:,} bytes, over the limit of {max_bytes:,}")
    if not _is_text(value):
        raise error("bad_json", "payload is not valid Unicode (lone surrogate)")
    try:
        parsed = loads(value)
    except (ValueError, RecursionError) as exc:
        raise error("bad_json", f"payload is not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(parsed, Mapping):
        # a JSON string holding an object's text is a string, not an object: never parsed twice
        raise error("bad_json", f"payload must be a JSON object, got {type(parsed).__name__}")
    if _ESCAPED_SURROGATE.search(value) and not _is_text(dumps_plain(parsed)):
        raise error("bad_json", "payload holds a lone surrogate (\\ud800-\\udfff escape)")
    return parsed


def dumps_plain(value: Any) -> str:
    """Every string of a parsed JSON value, keys included, joined (to check them as text)."""
    out: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, Mapping):
            out.extend(str(k) for k in v)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return "".join(out)


_PYDANTIC_REASON: Final = {
    "missing": "missing_field",
    "extra_forbidden": "unexpected_field",
    "json_invalid": "bad_json",
    "json_type": "bad_json",
    "model_type": "bad_json",
    "model_attributes_type": "bad_json",
    "out_of_range": "out_of_range",
}


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "payload"


def decode_payload(
    kind: str, version: int, payload: str | Mapping[str, Any], event_id: str | None = None
) -> Payload:
    """Validate a payload (JSON text, or already parsed) against its (kind, version) model and
    upcast it to the newest version."""
    model = PAYLOADS.get((kind, version))
    if model is None:
        if kind not in KINDS:
            raise DecodingError(
                "unknown_kind",
                f"unknown kind {kind!r}",
                event_id=event_id,
                kind=kind,
                version=version,
                field="kind",
            )
        raise DecodingError(
            "unknown_version",
            f"unknown schema_version {version} (known: {sorted(v for k, v in PAYLOADS if k == kind)})",
            event_id=event_id,
            kind=kind,
            version=version,
            field="schema_version",
        )
    if isinstance(payload, str):
        try:
            payload = loads(payload)
        except (ValueError, RecursionError) as exc:
            raise DecodingError(
                "bad_json",
                f"payload is not valid JSON ({exc})",
                event_id=event_id,
                kind=kind,
                version=version,
                field="payload",
            ) from None
    if not isinstance(payload, Mapping):
        raise DecodingError(
            "bad_json",
            f"payload must be a JSON object, got {type(payload).__name__}",
            event_id=event_id,
            kind=kind,
            version=version,
            field="payload",
        )
    try:
        decoded: Payload = model.model_validate(payload, strict=True)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        etype = str(err.get("type", ""))
        reason = _PYDANTIC_REASON.get(etype)
        if reason is None:
            reason = (
                "wrong_type"
                if etype.endswith("_type") or etype.endswith("_parsing")
                else "invalid_value"
            )
        field = (
            "payload"
            if reason == "bad_json"
            else "payload." + _field_name(tuple(err.get("loc", ())))
        )
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise DecodingError(
            reason,
            f"{err.get('msg')}{more}",
            event_id=event_id,
            kind=kind,
            version=version,
            field=field,
        ) from None
    return upcast(decoded)


def decode(
    raw: Mapping[str, Any],
    *,
    text_times: bool = False,
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Event:
    """Decode one envelope row: the one judge of every row, whatever carried it.

    An export's row comes with the Parquet's own values (see
    :func:`workbench.replay.parquet_rows.rows`: integers as ``int``, floats as ``float``,
    timestamps as ``datetime``, strings as ``str``, undecodable text as ``bytes``); a live-stream
    message with JSON's values and ``text_times`` (its timestamps are RFC 3339 strings). No value
    is converted into another type: a float ``seq``, a string ``position``, binary payload or a
    date where a timestamp belongs is refused, and an integer past its catalog type is
    ``out_of_range``. ``occurred_at`` after ``recorded_at`` is a fact with a violation, not a
    decoding error."""
    if not isinstance(raw, Mapping):
        raise DecodingError("bad_envelope", f"an event must be an object, got {type(raw).__name__}")
    eid = raw.get("event_id")
    event_id = eid if isinstance(eid, str) and _is_text(eid) else None
    missing = [
        f for f in ENVELOPE_FIELDS if f not in raw and f not in ("correlation_id", "causation_id")
    ]
    if missing:
        raise DecodingError(
            "bad_envelope",
            f"missing envelope field(s) {missing}",
            event_id=event_id,
            field=missing[0],
        )
    repeated = sorted(
        {k.split("#")[0] for k in raw if isinstance(k, str) and _REPEATED.fullmatch(k)}
    )
    if repeated:
        raise DecodingError(
            "bad_envelope",
            f"envelope field(s) {repeated} appear more than once (which copy is the fact?)",
            event_id=event_id,
            field=repeated[0],
        )
    event_id = _envelope_str(raw, "event_id", event_id)
    assert event_id is not None
    stream = _envelope_str(raw, "stream", event_id)
    kind = _envelope_str(raw, "kind", event_id)
    assert stream is not None and kind is not None
    version = _envelope_int(raw, "schema_version", event_id)
    if stream not in STREAMS:
        raise DecodingError(
            "bad_envelope",
            f"unknown stream {stream[:60]!r}",
            event_id=event_id,
            kind=kind,
            field="stream",
        )
    if not kind.startswith(stream + "."):
        raise DecodingError(
            "bad_envelope",
            f"kind {kind[:60]!r} is not of stream {stream!r}",
            event_id=event_id,
            kind=kind,
            field="kind",
        )
    aggregate_id = _envelope_str(raw, "aggregate_id", event_id)
    assert aggregate_id is not None
    position = _envelope_int(raw, "position", event_id)
    seq = _envelope_int(raw, "seq", event_id)
    occurred_at = _envelope_time(raw, "occurred_at", event_id, text=text_times)
    recorded_at = _envelope_time(raw, "recorded_at", event_id, text=text_times)
    correlation_id = _envelope_str(raw, "correlation_id", event_id, nullable=True)
    causation_id = _envelope_str(raw, "causation_id", event_id, nullable=True)
    payload = decode_payload(
        kind,
        version,
        _payload_object(raw, event_id, kind, version, max_payload_bytes),
        event_id,
    )
    return Event(
        event_id=event_id,
        position=position,
        stream=stream,
        aggregate_id=aggregate_id,
        seq=seq,
        kind=kind,
        schema_version=version,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        correlation_id=correlation_id,
        causation_id=causation_id,
        payload=payload,
    )


def try_decode(
    raw: Mapping[str, Any],
    *,
    text_times: bool = False,
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Event | DecodingError:
    """:func:`decode` that returns the error instead of raising: a caller can never crash on input."""
    try:
        return decode(raw, text_times=text_times, max_payload_bytes=max_payload_bytes)
    except DecodingError as exc:
        return exc
    except Exception as exc:  # pragma: no cover - a bug in decoding must still not crash a run
        eid = raw.get("event_id") if isinstance(raw, Mapping) else None
        return DecodingError(
            "bad_envelope",
            f"undecodable ({type(exc).__name__}: {exc})",
            event_id=eid if isinstance(eid, str) else None,
        )


def newest_version(kind: str) -> int:
    return LATEST[kind]


def upcast(payload: Payload) -> Payload:
    """Lift a payload of an older version to its kind's newest version."""
    kind, version = payload.KIND, payload.VERSION
    while (kind, version) in UPCASTERS:
        payload = UPCASTERS[(kind, version)](payload)
        version = payload.VERSION
    return payload


def upcast_event(event: Event) -> Event:
    """The same event with its payload in the newest version (the envelope is kept as written)."""
    if (event.payload.KIND, event.payload.VERSION) not in UPCASTERS:
        return event
    return replace(event, payload=upcast(event.payload))
