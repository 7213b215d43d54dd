"""The envelope (catalog section 1) and the base of every payload model.

An :class:`Event` is one decoded fact: the envelope exactly as the platform wrote it plus a typed
payload in the *newest* schema version of its kind (upcasting happens in :mod:`.catalog`). The
envelope is kept verbatim, including the ``schema_version`` the platform recorded, so that a
projection can always say what it was built from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Final

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from .money import EXPONENTS

STREAMS: Final[tuple[str, ...]] = (
    "client",
    "trader",
    "payment_order",
    "receipt",
    "payout",
    "ledger_plan",
    "trader_rating",
)

ENVELOPE_FIELDS: Final[tuple[str, ...]] = (
    "event_id",
    "position",
    "stream",
    "aggregate_id",
    "seq",
    "kind",
    "schema_version",
    "occurred_at",
    "recorded_at",
    "correlation_id",
    "causation_id",
    "payload",
)


def _utc(value: datetime) -> datetime:
    """Timestamps in payloads are UTC by contract; another offset is a typed error."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("timestamp has no time zone; the catalog requires UTC")
    if offset.total_seconds() != 0:
        raise ValueError(f"timestamp offset {offset} is not UTC")
    return value.astimezone(UTC)


def _currency(value: str) -> str:
    if value not in EXPONENTS:
        raise ValueError(f"unknown currency {value!r}")
    return value


def _rate(value: str) -> str:
    try:
        dec = Decimal(value)
    except Exception:
        raise ValueError(f"rate {value!r} is not a decimal string") from None
    if not dec.is_finite() or dec <= 0:
        raise ValueError(f"rate {value!r} must be a positive decimal")
    return value


def _unit_interval(value: Decimal) -> Decimal:
    if not (Decimal(0) <= value <= Decimal(1)):
        raise ValueError(f"{value} is outside 0..1")
    return value


#: RFC 3339 as the catalog writes timestamps, with every field in its range (year 0001..9999,
#: hours 00..23, no leap second, offsets under a day): one pattern for the decoder and the SQL
#: that vouches for rows (DuckDB alone would take ``T24:00:00`` or year 0000). A day past its
#: month's end is left to the parsers, which both refuse it.
RFC3339_PATTERN: Final = (
    r"(\d{3}[1-9]|\d{2}[1-9]\d|\d[1-9]\d{2}|[1-9]\d{3})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"
)
_RFC3339 = re.compile(RFC3339_PATTERN)


def _rfc3339(value: Any) -> Any:
    """Payload timestamps are RFC 3339 strings (``2026-11-01T10:15:00Z``), nothing looser:
    ``fromisoformat`` alone would also take ``20261101T101500Z`` or week dates, which the
    platform never writes and the columnar replay could not read."""
    if isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ValueError(f"{value!r} is not an RFC 3339 timestamp")
        return datetime.fromisoformat(value)
    return value


def _json_number(value: Any) -> Any:
    """A JSON number held exactly: refuses strings and booleans, lifts integers to Decimal."""
    if isinstance(value, bool | str):
        raise PydanticCustomError(
            "json_number_type",
            "must be a JSON number, got {kind} {value}",
            {"kind": type(value).__name__, "value": repr(value)},
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # Only a caller using pydantic's own JSON parsing gets here (decode() parses numbers
        # straight to Decimal); the shortest repr is the number as it was written.
        return Decimal(repr(value))
    return value


#: The catalog's integers are int64 (amounts in minor units, counts, ids of batches).
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


def _int64(value: int) -> int:
    """A JSON integer past int64 is not a catalog value: refused, never wrapped or zeroed."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise PydanticCustomError("out_of_range", "{value} is outside int64", {"value": str(value)})
    return value


def _positive(value: int) -> int:
    """Amounts the catalog requires to be positive (an order, a deposit movement, a payout)."""
    if value <= 0:
        raise PydanticCustomError(
            "invalid_value", "amount must be positive, got {value}", {"value": str(value)}
        )
    return value


INT32_MAX: Final = 2**31 - 1


def _int32(value: int) -> int:
    """Counts, attempts and basis points: int32 in every projection, so past it is refused."""
    if not -INT32_MAX - 1 <= value <= INT32_MAX:
        raise PydanticCustomError("out_of_range", "{value} is outside int32", {"value": str(value)})
    return value


#: A decimal the projections hold exactly: DECIMAL(18,6), read through a double without loss
#: (at most 6 decimal places and 15 significant digits). More would be rounded somewhere.
_SIX_PLACES: Final = Decimal("0.000001")
DECIMAL6_LIMIT: Final = Decimal(10) ** 9


def _decimal6(value: Decimal) -> Decimal:
    if not value.is_finite() or abs(value) >= DECIMAL6_LIMIT:
        raise PydanticCustomError(
            "out_of_range", "{value} is outside +-10^9", {"value": str(value)}
        )
    if value != value.quantize(_SIX_PLACES):
        raise PydanticCustomError(
            "out_of_range",
            "{value} has more than 6 decimal places (the projections keep 6; no rounding)",
            {"value": str(value)},
        )
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_utc)]
Int64 = Annotated[int, AfterValidator(_int64)]
Int32 = Annotated[int, AfterValidator(_int64), AfterValidator(_int32)]
PositiveAmount = Annotated[int, AfterValidator(_int64), AfterValidator(_positive)]
#: A non-integer JSON number (``score``, ``confidence``), read as an exact Decimal.
JsonNumber = Annotated[Decimal, BeforeValidator(_json_number)]
Currency = Annotated[str, AfterValidator(_currency)]
Rate = Annotated[str, AfterValidator(_rate)]
UnitInterval = Annotated[
    Decimal,
    BeforeValidator(_json_number),
    AfterValidator(_decimal6),
    AfterValidator(_unit_interval),
]
#: A JSON number kept exactly as DECIMAL(18,6) (``score``).
Decimal6 = Annotated[Decimal, BeforeValidator(_json_number), AfterValidator(_decimal6)]


class Payload(BaseModel):
    """Base of every payload: strict types (an amount is a JSON integer, never ``"100"``),
    unknown fields refused, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    KIND: ClassVar[str] = ""  # the kind this model decodes, e.g. "client.registered"
    VERSION: ClassVar[int] = 1  # its schema_version

    #: True when a field holds a Decimal, which pydantic would write as a JSON string.
    HAS_DECIMAL: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.HAS_DECIMAL = any("Decimal" in repr(f.annotation) for f in cls.model_fields.values())

    def to_json(self) -> str:
        """Catalog JSON: timestamps as RFC 3339 UTC strings, decimals as JSON numbers.

        Pydantic's serializer writes exactly this for every payload without a decimal field
        (and is ten times faster); a decimal (score, confidence) goes through :func:`dumps`,
        which writes its digits as a JSON number without passing through a float.
        """
        if self.HAS_DECIMAL:
            return dumps(self.model_dump(mode="python", by_alias=True))
        return self.__pydantic_serializer__.to_json(self, by_alias=True).decode()


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded event: the verbatim envelope and a payload in its kind's newest version."""

    event_id: str
    position: int
    stream: str
    aggregate_id: str
    seq: int
    kind: str
    schema_version: int
    occurred_at: datetime
    recorded_at: datetime
    correlation_id: str | None
    causation_id: str | None
    payload: Payload

    @property
    def subject(self) -> str:
        """``stream:aggregate_id``, the name findings and violations use for an aggregate."""
        return f"{self.stream}:{self.aggregate_id}"

    def to_row(self) -> dict[str, Any]:
        """The export row of this event; ``schema_version`` is the payload's own version."""
        return {
            "event_id": self.event_id,
            "position": self.position,
            "stream": self.stream,
            "aggregate_id": self.aggregate_id,
            "seq": self.seq,
            "kind": self.kind,
            "schema_version": self.payload.VERSION,
            "occurred_at": self.occurred_at,
            "recorded_at": self.recorded_at,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "payload": self.payload.to_json(),
        }


# --------------------------------------------------------------------------- JSON encoding
def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``; fractional seconds only when there are some."""
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        # A JSON number written from the decimal's own digits: exact, no float on the way.
        out.append(format(value, "f") if value == value.to_integral_value() else str(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, datetime):
        out.append(json.dumps(format_timestamp(value)))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (k, v) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(k), ensure_ascii=False))
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as catalog JSON")


def dumps(value: Any) -> str:
    """Compact catalog JSON (``json.dumps`` would write a Decimal as a string or a float)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads(text: str) -> Any:
    """Parse catalog JSON with every non-integer number as an exact ``Decimal``.

    A repeated key is an error: readers disagree on which copy wins (Python keeps the last,
    DuckDB the first), so such a payload is not a fact anyone could rely on.
    """
    return json.loads(
        text,
        parse_float=Decimal,
        parse_constant=_no_constant,
        object_pairs_hook=_no_duplicate_keys,
    )


def _no_constant(name: str) -> Any:
    """``NaN`` and ``Infinity`` are not JSON (Python's parser takes them; DuckDB's does not)."""
    raise ValueError(f"{name} is not a JSON value")
