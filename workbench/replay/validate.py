"""Payload validation in SQL, compiled from the domain's pydantic models.

Bulk replay cannot afford a pydantic decode per event, so each (kind, version) model is compiled
into a SQL predicate over the payload JSON. The predicate is *conservative*: it only says
"certainly valid". A row it does not pass goes to the domain's decoder, which has the final word
and writes the precise error, so the SQL may be stricter than pydantic (costing time on odd rows)
but must never be looser (a test checks both on generated and malformed corpora). The models stay
the one definition of a payload's shape.
"""

from __future__ import annotations

import types
import typing
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from ..domain.catalog import PAYLOADS
from ..domain.events import STREAMS
from ..domain.money import EXPONENTS

INTS = "('BIGINT','UBIGINT')"
NUMBERS = "('BIGINT','UBIGINT','DOUBLE')"
# RFC 3339 in UTC as the platform writes it: date, T, time, optional fraction, Z or +00:00.
TIMESTAMP_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)$"
RATE_RE = r"^[0-9]+(\.[0-9]+)?$"


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _path(base: str, name: str) -> str:
    return f"{base}.{name}" if base else f"$.{name}"


def _validators(annotation: Any) -> list[Any]:
    """The AfterValidator functions on an Annotated type (how Currency, Rate, … are built)."""
    out = []
    for meta in getattr(annotation, "__metadata__", ()):
        func = getattr(meta, "func", None)
        if func is not None:
            out.append(func)
    return out


def _check(col: str, path: str, annotation: Any) -> str:
    """SQL that is true only if the JSON value at ``path`` certainly satisfies ``annotation``."""
    jt = f"json_type({col}, {_q(path)})"
    text = f"json_extract_string({col}, {_q(path)})"
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        base = get_args(annotation)[0]
        names = {f.__name__ for f in _validators(annotation)}
        if "_currency" in names:
            return (
                f"({jt} = 'VARCHAR' AND {text} IN ({', '.join(_q(c) for c in sorted(EXPONENTS))}))"
            )
        if "_rate" in names:
            return f"({jt} = 'VARCHAR' AND regexp_full_match({text}, {_q(RATE_RE)}) AND TRY_CAST({text} AS DECIMAL(38,12)) > 0)"
        if "_utc" in names:
            return f"({jt} = 'VARCHAR' AND regexp_full_match({text}, {_q(TIMESTAMP_RE)}) AND TRY_CAST({text} AS TIMESTAMPTZ) IS NOT NULL)"
        if "_unit_interval" in names:
            return f"({jt} IN {NUMBERS} AND TRY_CAST({text} AS DECIMAL(38,12)) BETWEEN 0 AND 1)"
        if "_owner" in names:
            return f"({jt} = 'VARCHAR' AND regexp_full_match({text}, '^(client|trader):.+'))"
        if base is Decimal:
            return f"({jt} IN {NUMBERS})"
        return "FALSE"  # an annotated type this compiler does not know: let the decoder decide
    if origin in (typing.Union, types.UnionType):
        args = get_args(annotation)
        others = [a for a in args if a is not type(None)]
        if len(others) == 1 and len(args) == 2:
            return f"({jt} = 'NULL' OR {_check(col, path, others[0])})"
        return "FALSE"
    if origin is Literal:
        values = get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return f"({jt} = 'VARCHAR' AND {text} IN ({', '.join(_q(v) for v in values)}))"
        return "FALSE"
    if origin is list:
        (item,) = get_args(annotation)
        elem = _check("e", "$", item)
        return (
            f"({jt} = 'ARRAY' AND coalesce(list_bool_and(list_transform("
            f"TRY_CAST(json_extract({col}, {_q(path)}) AS JSON[]), lambda e: {elem})), "
            f"json_array_length({col}, {_q(path)}) = 0))"
        )
    if annotation is bool:
        return f"({jt} = 'BOOLEAN')"
    if annotation is int:
        return f"({jt} IN {INTS} AND TRY_CAST({text} AS BIGINT) IS NOT NULL)"
    if annotation is str:
        return f"({jt} = 'VARCHAR')"
    if annotation is datetime:
        return "FALSE"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _object(col, path, annotation)
    return "FALSE"


def _object(col: str, path: str, model: type[BaseModel]) -> str:
    """An object with exactly the model's fields (extra fields are refused, as the models do)."""
    keys = [f.alias or name for name, f in model.model_fields.items()]
    root = path or "$"
    parts = [f"json_type({col}, {_q(root)}) = 'OBJECT'"]
    if keys:
        keys_sql = ", ".join(_q(k) for k in keys)
        parts.append(
            f"coalesce(list_bool_and(list_transform(json_keys({col}, {_q(root)}), lambda k: k IN ({keys_sql}))), TRUE)"
        )
    else:  # a payload without fields is exactly {}
        parts.append(f"len(json_keys({col}, {_q(root)})) = 0")
    # A repeated key is refused by the decoder (readers disagree on which copy wins).
    parts.append(
        f"len(list_distinct(json_keys({col}, {_q(root)}))) = len(json_keys({col}, {_q(root)}))"
    )
    for name, f in model.model_fields.items():
        key = f.alias or name
        # pydantic keeps an Annotated field's validators in ``metadata``: put them back together.
        annotation = typing.Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation
        parts.append(_check(col, _path(path if path != "$" else "", key), annotation))
    return "(" + " AND ".join(parts) + ")"


def payload_predicate(col: str = "pj") -> str:
    """SQL true only for rows whose (kind, schema_version) payload is certainly valid."""
    branches = [
        f"WHEN kind = {_q(kind)} AND schema_version = {version} THEN {_object(col, '', model)}"
        for (kind, version), model in sorted(PAYLOADS.items())
    ]
    return "CASE " + " ".join(branches) + " ELSE FALSE END"


def envelope_predicate() -> str:
    """SQL true only for rows whose envelope is certainly valid (types come from the Parquet)."""
    streams = ", ".join(_q(s) for s in STREAMS)
    return (
        "(event_id IS NOT NULL AND position IS NOT NULL AND position >= 0"
        " AND stream IN (" + streams + ")"
        " AND aggregate_id IS NOT NULL AND aggregate_id <> ''"
        " AND seq IS NOT NULL AND seq >= 1"
        " AND kind IS NOT NULL AND starts_with(kind, stream || '.')"
        " AND schema_version IS NOT NULL AND schema_version >= 1"
        " AND occurred_at IS NOT NULL AND recorded_at IS NOT NULL AND recorded_at >= occurred_at"
        " AND payload IS NOT NULL AND json_valid(payload))"
    )
