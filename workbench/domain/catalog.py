"""Decoding: a raw envelope row → a typed :class:`Event`, or a :class:`DecodingError`.

This is the one place that knows every (kind, schema_version) of the catalog and the upcasters
between versions. Decoding never raises anything but :class:`DecodingError`, whatever the input,
and the error names the event, the kind and the field, so a caller can quarantine the row with a
reason an analyst can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from . import client, ledger, payment_order, payout, rating, receipt, trader
from .events import ENVELOPE_FIELDS, STREAMS, Event, Payload, loads

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
)


def _envelope_str(
    raw: Mapping[str, Any], name: str, event_id: str | None, *, nullable: bool = False
) -> str | None:
    value = raw.get(name)
    if value is None:
        if nullable:
            return None
        raise DecodingError("bad_envelope", "is missing", event_id=event_id, field=name)
    if not isinstance(value, str):
        raise DecodingError(
            "bad_envelope",
            f"must be a string, got {type(value).__name__}",
            event_id=event_id,
            field=name,
        )
    return value


def _envelope_int(raw: Mapping[str, Any], name: str, event_id: str | None, minimum: int) -> int:
    value = raw.get(name)
    if value is None:
        raise DecodingError("bad_envelope", "is missing", event_id=event_id, field=name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodingError(
            "bad_envelope", f"must be an integer, got {value!r}", event_id=event_id, field=name
        )
    if value < minimum:
        raise DecodingError(
            "bad_envelope", f"must be >= {minimum}, got {value}", event_id=event_id, field=name
        )
    return value


def _envelope_time(raw: Mapping[str, Any], name: str, event_id: str | None) -> datetime:
    value = raw.get(name)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise DecodingError(
                "bad_envelope",
                f"{value!r} is not an RFC 3339 timestamp",
                event_id=event_id,
                field=name,
            ) from None
    if not isinstance(value, datetime):
        raise DecodingError(
            "bad_envelope", f"must be a timestamp, got {value!r}", event_id=event_id, field=name
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # Parquet timestamps without a zone are UTC by contract
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise DecodingError(
            "bad_envelope", f"{value!r} is out of range in UTC", event_id=event_id, field=name
        ) from None


def _payload_object(raw: Mapping[str, Any], event_id: str, kind: str, version: int) -> Any:
    """The payload as parsed JSON: the export's string is parsed (numbers that are not integers
    become exact Decimals); the live stream's nested object is taken as it is."""

    def error(reason: str, message: str) -> DecodingError:
        return DecodingError(
            reason, message, event_id=event_id, kind=kind, version=version, field="payload"
        )

    value = raw.get("payload")
    if value is None:
        raise error("bad_envelope", "is missing")
    if isinstance(value, Mapping):
        return value
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise error("bad_json", "payload is not UTF-8") from None
    if not isinstance(value, str):
        raise error("bad_envelope", f"must be a JSON object, got {type(value).__name__}")
    try:
        return loads(value)
    except (ValueError, RecursionError) as exc:
        raise error("bad_json", f"payload is not valid JSON ({exc})") from None


_PYDANTIC_REASON: Final = {
    "missing": "missing_field",
    "extra_forbidden": "unexpected_field",
    "json_invalid": "bad_json",
    "json_type": "bad_json",
    "model_type": "bad_json",
    "model_attributes_type": "bad_json",
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


def decode(raw: Mapping[str, Any]) -> Event:
    """Decode one envelope row (a Parquet row or a live-stream message as a mapping)."""
    if not isinstance(raw, Mapping):
        raise DecodingError("bad_envelope", f"an event must be an object, got {type(raw).__name__}")
    event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
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
    event_id = _envelope_str(raw, "event_id", event_id)
    assert event_id is not None
    stream = _envelope_str(raw, "stream", event_id)
    kind = _envelope_str(raw, "kind", event_id)
    assert stream is not None and kind is not None
    version = _envelope_int(raw, "schema_version", event_id, 1)
    if stream not in STREAMS:
        raise DecodingError(
            "bad_envelope",
            f"unknown stream {stream!r}",
            event_id=event_id,
            kind=kind,
            field="stream",
        )
    if not kind.startswith(stream + "."):
        raise DecodingError(
            "bad_envelope",
            f"kind {kind!r} is not of stream {stream!r}",
            event_id=event_id,
            kind=kind,
            field="kind",
        )
    aggregate_id = _envelope_str(raw, "aggregate_id", event_id)
    assert aggregate_id is not None
    if not aggregate_id:
        raise DecodingError(
            "bad_envelope", "is empty", event_id=event_id, kind=kind, field="aggregate_id"
        )
    occurred_at = _envelope_time(raw, "occurred_at", event_id)
    recorded_at = _envelope_time(raw, "recorded_at", event_id)
    if recorded_at < occurred_at:
        raise DecodingError(
            "bad_envelope",
            f"recorded_at {recorded_at.isoformat()} is before occurred_at {occurred_at.isoformat()}",
            event_id=event_id,
            kind=kind,
            field="recorded_at",
        )
    payload = decode_payload(kind, version, _payload_object(raw, event_id, kind, version), event_id)
    return Event(
        event_id=event_id,
        position=_envelope_int(raw, "position", event_id, 0),
        stream=stream,
        aggregate_id=aggregate_id,
        seq=_envelope_int(raw, "seq", event_id, 1),
        kind=kind,
        schema_version=version,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        correlation_id=_envelope_str(raw, "correlation_id", event_id, nullable=True),
        causation_id=_envelope_str(raw, "causation_id", event_id, nullable=True),
        payload=payload,
    )


def try_decode(raw: Mapping[str, Any]) -> Event | DecodingError:
    """:func:`decode` that returns the error instead of raising: a caller can never crash on input."""
    try:
        return decode(raw)
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
