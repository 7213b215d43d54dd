"""The typed payload columns, derived from the domain's payload models (one definition).

Each stream's events get one table (``payload_<stream>``, declared in :mod:`.schema`) with a
column per payload field of any of the stream's kinds and versions, typed from the field's
pydantic annotation: integers ``BIGINT`` (``INTEGER`` for the catalog's int32 fields), strings,
currencies, rates and enumerations ``VARCHAR``, timestamps ``TIMESTAMPTZ``, the exact decimals
(``score``, ``confidence``) ``DECIMAL(18,6)``, lists and objects as DuckDB lists and structs.
Fields keep the version the event was written in (``trader.registered`` v1 has ``min_amount``,
v2 ``limits``): the typed table holds what was written, and the upcast is the reader's, as in
the domain (:func:`workbench.domain.catalog.upcast`).

:func:`decode_sql` reads each payload once with DuckDB's ``from_json`` into the stream's
structure; a timestamp or a decimal is read as its JSON text and cast, exactly as the decoder
reads it. Only rows the decoder accepts are ever decoded here (they come from ``events``), so
every value is one the catalog allows and every cast is exact; a cast that fails raises.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal, get_args, get_origin

from pydantic import BaseModel

from ..domain.catalog import PAYLOADS

#: The envelope columns each typed table carries (those the models read beside the payload).
PAYLOAD_ENVELOPE: Final[tuple[str, ...]] = (
    "event_id",
    "position",
    "aggregate_id",
    "seq",
    "kind",
    "schema_version",
    "occurred_at",
    "correlation_id",  # the process: PROCESS_BROKEN groups a stream's steps by it
)


@dataclass(frozen=True)
class PayloadColumn:
    name: str
    type: str  # the column's DuckDB type
    read: Any  # the from_json structure it is read with (a type name, dict or list)
    doc: str

    @property
    def cast(self) -> bool:
        """Read as its JSON text and cast (a timestamp, an exact decimal)."""
        return isinstance(self.read, str) and self.read != self.type


def _validators(annotation: Any) -> set[str]:
    return {
        m.func.__name__
        for m in getattr(annotation, "__metadata__", ())
        if getattr(m, "func", None) is not None
    }


def _annotation(field: Any) -> Any:
    """A model field's annotation with its validators (pydantic keeps them in ``metadata``)."""
    return (
        typing.Annotated[(field.annotation, *field.metadata)]
        if field.metadata
        else field.annotation
    )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duck_type(annotation: Any, *, nested: bool = False) -> tuple[str, Any]:
    """(DuckDB column type, ``from_json`` read structure) of a payload annotation. Raises
    ``TypeError`` for an annotation it does not know, so a new field type is decided, not
    guessed."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        others = [a for a in get_args(annotation) if a is not type(None)]
        if len(others) != 1:
            raise TypeError(f"no typed column for the union {annotation!r}")
        return duck_type(others[0], nested=nested)
    if origin is typing.Annotated:
        base = get_args(annotation)[0]
        names = _validators(annotation)
        if "_utc" in names:
            typed = ("TIMESTAMPTZ", "VARCHAR")
        elif "_decimal6" in names:
            typed = ("DECIMAL(18,6)", "VARCHAR")
        elif "_int32" in names:
            typed = ("INTEGER", "INTEGER")
        elif "_int64" in names:
            typed = ("BIGINT", "BIGINT")
        elif base is str:
            typed = ("VARCHAR", "VARCHAR")
        else:
            raise TypeError(f"no typed column for {annotation!r}")
        if nested and typed[0] != typed[1]:
            raise TypeError(f"{annotation!r} inside a list or object would need a cast")
        return typed
    if origin is Literal:
        if not all(isinstance(v, str) for v in get_args(annotation)):
            raise TypeError(f"no typed column for {annotation!r}")
        return "VARCHAR", "VARCHAR"
    if origin is list:
        item_type, item_read = duck_type(get_args(annotation)[0], nested=True)
        return f"{item_type}[]", [item_read]
    if annotation is str:
        return "VARCHAR", "VARCHAR"
    if annotation is bool:
        return "BOOLEAN", "BOOLEAN"
    if annotation is int:
        return "BIGINT", "BIGINT"
    if annotation is Decimal:
        raise TypeError("a Decimal field needs its precision (Decimal6 or UnitInterval)")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        parts = []
        read: dict[str, Any] = {}
        for name, f in annotation.model_fields.items():
            key = f.alias or name
            t, r = duck_type(_annotation(f), nested=True)
            parts.append(f"{_ident(key)} {t}")
            read[key] = r
        return f"STRUCT({', '.join(parts)})", read
    raise TypeError(f"no typed column for {annotation!r}")


def payload_columns(stream: str) -> tuple[PayloadColumn, ...]:
    """The typed columns of ``stream``'s payloads: every field of its kinds and versions, in the
    order the models define them. A field two kinds share must have one type in both."""
    out: dict[str, PayloadColumn] = {}
    carriers: dict[str, list[str]] = {}
    for (kind, version), model in sorted(PAYLOADS.items()):
        if kind.split(".")[0] != stream:
            continue
        for name, f in model.model_fields.items():
            key = f.alias or name
            if key in PAYLOAD_ENVELOPE or key in ("stream", "ord", "fresh", "payload"):
                raise TypeError(
                    f"{kind} v{version}: field {key!r} is named like an envelope column"
                )
            t, r = duck_type(_annotation(f))
            seen = out.get(key)
            if seen is not None and (seen.type, seen.read) != (t, r):
                raise TypeError(f"{stream}: field {key!r} is {seen.type} and {t} in two kinds")
            out[key] = PayloadColumn(key, t, r, "")
            carriers.setdefault(key, []).append(f"`{kind}` v{version}")
    return tuple(
        PayloadColumn(c.name, c.type, c.read, "payload field of " + ", ".join(carriers[c.name]))
        for c in out.values()
    )


def structure(stream: str) -> str:
    """The ``from_json`` structure of ``stream``'s payloads (every field of its kinds)."""
    return json.dumps({c.name: c.read for c in payload_columns(stream)})


def decode_sql(stream: str, rows: str) -> str:
    """SELECT the typed rows (the table's columns, in order) of ``stream``'s events in ``rows``
    (a relation with the columns of ``events``): each payload parsed once."""
    q = "'" + structure(stream).replace("'", "''") + "'"
    cols = [*PAYLOAD_ENVELOPE]
    for c in payload_columns(stream):
        value = f"j.{_ident(c.name)}"
        cols.append(
            f"CAST({value} AS {c.type}) AS {_ident(c.name)}"
            if c.cast
            else f"{value} AS {_ident(c.name)}"
        )
    return (
        f"SELECT {', '.join(cols)} FROM (SELECT *, from_json(payload, {q}) AS j "
        f"FROM {rows} WHERE stream = '{stream}')"
    )
