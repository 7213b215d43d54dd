"""Payload validation in SQL, compiled from the domain's pydantic models.

Bulk replay cannot afford a pydantic decode per event, so each (kind, version) model is compiled
into a SQL predicate over the payload JSON. The predicate is *conservative*: it only says
"certainly valid". A row it does not pass goes to the domain's decoder, which has the final word
and writes the precise error, so the SQL may be stricter than pydantic (costing time on odd rows)
but must never be looser (a test checks both on generated and malformed corpora). The models stay
the one definition of a payload's shape.
"""

from __future__ import annotations

import itertools
import json
import types
import typing
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from ..domain.catalog import PAYLOADS
from ..domain.events import RFC3339_PATTERN, STREAMS
from ..domain.money import EXPONENTS

INTS = "('BIGINT','UBIGINT')"
NUMBERS = "('BIGINT','UBIGINT','DOUBLE')"
# RFC 3339 in UTC as the platform writes it: date, T, time, optional fraction, Z or +00:00.
TIMESTAMP_RE = "^" + RFC3339_PATTERN.rsplit("(Z|", 1)[0] + r"(Z|\+00:00)$"
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
        if "_int64" in names:
            positive = f" AND TRY_CAST({text} AS BIGINT) > 0" if "_positive" in names else ""
            narrow = f" AND TRY_CAST({text} AS INTEGER) IS NOT NULL" if "_int32" in names else ""
            return f"({jt} IN {INTS} AND TRY_CAST({text} AS BIGINT) IS NOT NULL{positive}{narrow})"
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


def _typed(annotation: Any) -> tuple[Any, Any] | None:
    """The DuckDB type to read a value of ``annotation`` into, and a function giving the SQL
    value check on the read value (``None``: a type this compiler does not vouch for). A JSON
    ``null`` reads as NULL whatever the type, so only an optional type lets it through."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = get_args(annotation)
        others = [a for a in args if a is not type(None)]
        inner = _typed(others[0]) if len(others) == 1 and len(args) == 2 else None
        if inner is None:
            return None
        return inner[0], lambda x, check=inner[1]: f"({x} IS NULL OR ({check(x)}))"
    typed = _typed_value(annotation)
    if typed is None:
        return None
    return typed[0], lambda x, check=typed[1]: f"({x} IS NOT NULL AND ({check(x)}))"


def _typed_value(annotation: Any) -> tuple[Any, Any] | None:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        base = get_args(annotation)[0]
        names = {f.__name__ for f in _validators(annotation)}
        if "_currency" in names:
            currencies = ", ".join(_q(c) for c in sorted(EXPONENTS))
            return "VARCHAR", lambda x: f"{x} IN ({currencies})"
        if "_rate" in names:
            return (
                "VARCHAR",
                lambda x: (
                    f"regexp_full_match({x}, {_q(RATE_RE)}) AND TRY_CAST({x} AS DECIMAL(38,12)) > 0"
                ),
            )
        if "_utc" in names:
            return (
                "VARCHAR",
                lambda x: (
                    f"regexp_full_match({x}, {_q(TIMESTAMP_RE)}) AND TRY_CAST({x} AS TIMESTAMPTZ) IS NOT NULL"
                ),
            )
        if "_unit_interval" in names:
            return (
                "JSON",
                lambda x: (
                    f"json_type({x}) IN {NUMBERS} AND TRY_CAST(json_extract_string({x}, '$') AS DECIMAL(38,12)) BETWEEN 0 AND 1"
                ),
            )
        if "_owner" in names:
            return "VARCHAR", lambda x: f"regexp_full_match({x}, '^(client|trader):.+')"
        if "_int64" in names:
            if "_positive" in names:
                return "BIGINT", lambda x: f"{x} > 0"
            if "_int32" in names:
                return "BIGINT", lambda x: f"{x} BETWEEN -2147483648 AND 2147483647"
            return "BIGINT", lambda x: "TRUE"
        if base is Decimal:
            return "JSON", lambda x: f"json_type({x}) IN {NUMBERS}"
        return None
    if origin in (typing.Union, types.UnionType):
        return None
    if origin is Literal:
        values = get_args(annotation)
        if not all(isinstance(v, str) for v in values):
            return None
        return "VARCHAR", lambda x: f"{x} IN ({', '.join(_q(v) for v in values)})"
    if origin is list:
        item = _typed(get_args(annotation)[0])
        if item is None:
            return None
        depth = next(_LAMBDAS)
        return (
            [item[0]],
            lambda x, check=item[1]: (
                f"coalesce(list_bool_and(list_transform({x}, lambda e{depth}: {check(f'e{depth}')})), TRUE)"
            ),
        )
    if annotation is bool:
        return "BOOLEAN", lambda x: "TRUE"
    if annotation is int:
        return "BIGINT", lambda x: "TRUE"
    if annotation is str:
        return "VARCHAR", lambda x: "TRUE"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _struct(annotation)
    return None


_LAMBDAS = itertools.count()


def _struct(model: type[BaseModel]) -> tuple[Any, Any] | None:
    shape: dict[str, Any] = {}
    checks = []
    for name, f in model.model_fields.items():
        # pydantic keeps an Annotated field's validators in ``metadata``: put them back together.
        annotation = typing.Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation
        typed = _typed(annotation)
        if typed is None:
            return None
        key = f.alias or name
        shape[key] = typed[0]
        checks.append((key, typed[1]))
    if not shape:
        return None
    return shape, lambda x: " AND ".join(f"({check(f'{x}[{_q(key)}]')})" for key, check in checks)


def _model_predicate(col: str, model: type[BaseModel]) -> str:
    """The fast check: true only for a payload that is certainly an instance of ``model``.

    The payload is parsed once into the model's shape (``from_json``); it is an instance when
    writing that value back gives the payload's own text (so every key is one of the model's,
    none is repeated or missing, and every value has exactly the type read: a string read as a
    number, a float read as an integer, a big integer, would all come back different) and every
    field passes its value check (currencies, timestamps, rates, enumerations). A payload written
    with its keys in another order fails it and is judged by the per-path check instead."""
    if not model.model_fields:
        return f"(try(json({col})) = '{{}}')"
    typed = _struct(model)
    if typed is None:
        return "FALSE"
    shape, check = typed
    structure = _q(json.dumps(shape))
    return (
        f"list_transform([from_json({col}, {structure})], lambda s: "
        f"to_json(s) = try(json({col})) AND {check('s')})[1]"
    )


def payload_predicate(col: str = "pj", *, per_path: bool = True) -> str:
    """SQL true only for rows whose (kind, schema_version) payload is certainly valid (NULL or
    FALSE otherwise).

    ``per_path=False`` keeps only the fast check (a payload written in its model's key order):
    a much smaller expression, which DuckDB sets up several times faster, for the live stream's
    small batches, whose other rows go to the decoder."""
    branches = [
        f"WHEN kind = {_q(kind)} AND schema_version = {version} THEN CASE WHEN "
        f"coalesce({_model_predicate(col, model)}, FALSE) THEN TRUE ELSE "
        f"{_object(col, '', model) if per_path else 'FALSE'} END"
        for (kind, version), model in sorted(PAYLOADS.items())
    ]
    return f"CASE WHEN NOT json_valid({col}) THEN FALSE " + " ".join(branches) + " ELSE FALSE END"


def _decimal_fields() -> list[str]:
    """Payload fields held as DECIMAL(18,6) (validated by ``_decimal6``)."""
    out: set[str] = set()
    for model in PAYLOADS.values():
        for name, f in model.model_fields.items():
            if any(
                getattr(getattr(m, "func", None), "__name__", None) == "_decimal6"
                for m in f.metadata
            ):
                out.add(f.alias or name)
    return sorted(out)


#: A ``score`` or ``confidence`` written with an exponent, more than 6 decimals or 10 integer
#: digits: DuckDB reads JSON numbers through a double, which could make such a number look
#: like one the decoder accepts, so the SQL never vouches for it and the decoder judges it.
DECIMAL_GUARD = (
    '"('
    + "|".join(_decimal_fields())
    + r')"\s*:\s*(-?[0-9]{10,}|-?[0-9]*\.[0-9]{7,}|-?[0-9.]+[eE]|-?(Infinity|NaN))'
)


def envelope_predicate(max_payload_bytes: int | None = None) -> str:
    """SQL true only for rows whose envelope is certainly valid (types come from the input
    table, already the catalog's: see :mod:`.parquet_rows`). ``occurred_at`` after
    ``recorded_at`` is not a decoding error (the violations say so)."""
    streams = ", ".join(_q(s) for s in STREAMS)
    size = "" if max_payload_bytes is None else f" AND strlen(payload) <= {int(max_payload_bytes)}"
    return (
        "(event_id IS NOT NULL AND event_id <> '' AND position IS NOT NULL AND position >= 0"
        " AND stream IN (" + streams + ")"
        " AND aggregate_id IS NOT NULL AND aggregate_id <> ''"
        " AND seq IS NOT NULL AND seq >= 1"
        " AND kind IS NOT NULL AND starts_with(kind, stream || '.')"
        " AND schema_version IS NOT NULL AND schema_version >= 1"
        " AND occurred_at IS NOT NULL AND recorded_at IS NOT NULL"
        " AND payload IS NOT NULL" + size + " AND json_valid(payload)"
        f" AND NOT regexp_matches(payload, {_q(DECIMAL_GUARD)})"
        # a \\u escape could spell a key the guard above does not see: the decoder judges it
        " AND NOT contains(payload, '\\u'))"
    )
