"""A CSV statement: a header, then one record per line, in the default columns
``line_id,value_date,booked_at,amount,currency,reference,counterparty`` or a bank's own layout.

Why a layout object and not a guess: ``1.234`` is one thousand two hundred thirty-four in a
German export and one point two three four in an English one; only the analyst knows which bank
wrote the file. :class:`CsvLayout` says which header holds each field, the separators and the
date form; nothing in a value is guessed, and a value the layout does not fit is quarantined.

Each record keeps its raw text as read (every physical line it spans, a quoted field may hold a
line break) and the physical line it starts on (the header is line 1). Records whose every field
is blank are not lines (spreadsheets append them); anything else is a line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .amounts import AmountError, check_separators, to_minor
from .records import LineError, NotAStatement, Parsed, parse_date, parse_instant

#: The fields of a statement line a CSV can carry, in the default column order.
FIELDS = ("line_id", "value_date", "booked_at", "amount", "currency", "reference", "counterparty")
#: Fields the header must have (a line also needs a line id or a reference: see records.Parsed).
REQUIRED = ("value_date", "amount", "currency")


@dataclass(frozen=True)
class CsvLayout:
    """How a bank writes its CSV. ``columns`` maps a field (:data:`FIELDS`) to its header in the
    file; a field not named keeps its own name as header. ``decimal`` and ``thousands`` are the
    amount's separators (``thousands=None``: none allowed), ``delimiter`` the field separator,
    ``date_format`` the ``strptime`` form of ``value_date`` (``booked_at`` is always RFC 3339),
    ``encoding`` the file's text encoding (a byte-order mark is skipped)."""

    columns: Mapping[str, str] = field(default_factory=dict)
    decimal: str = "."
    thousands: str | None = None
    delimiter: str = ","
    date_format: str = "%Y-%m-%d"
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns) - set(FIELDS))
        if unknown:
            raise ValueError(
                f"CSV column mapping names {', '.join(unknown)}: the fields are {', '.join(FIELDS)}"
            )
        if len(self.delimiter) != 1 or self.delimiter in '\r\n"':
            raise ValueError(f"CSV delimiter {self.delimiter!r} must be one character")
        check_separators(self.decimal, self.thousands)
        try:
            "".encode(self.encoding)
        except LookupError:
            raise ValueError(f"unknown text encoding {self.encoding!r}") from None
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))

    def header_of(self, name: str) -> str:
        return self.columns.get(name, name)


def parse(data: bytes, layout: CsvLayout | None = None) -> Parsed:
    """Read a CSV statement (see the module doc). Raises :class:`NotAStatement` when the header
    lacks a required field's column, or names one twice, or there is no header at all."""
    layout = layout or CsvLayout()
    encoding = layout.encoding
    if data.startswith(b"\xef\xbb\xbf") and encoding.replace("-", "").lower() in (
        "utf8",
        "utf8sig",
    ):
        data = data[3:]
    text = data.decode(encoding, errors="surrogateescape")
    out = Parsed()
    index: dict[str, int] | None = None
    width = 0
    for line_no, raw, row in _records(text, layout.delimiter, out):
        if _undecodable(raw):
            shown = raw.encode(encoding, "surrogateescape").decode(encoding, "backslashreplace")
            if index is None:
                raise NotAStatement(f"the header is not {encoding} text: {shown!r}")
            out.refuse(line_no, shown, LineError("bad_encoding", None, f"not {encoding} text"))
            continue
        if index is None:
            index = _header(row, layout)
            width = len(row)
            continue
        if len(row) != width:
            out.refuse(
                line_no,
                raw,
                LineError("bad_line", None, f"{len(row)} fields; the header has {width}"),
            )
            continue
        try:
            _line(out, line_no, raw, {name: row[i] for name, i in index.items()}, layout)
        except LineError as err:
            out.refuse(line_no, raw, err)
    if index is None:
        raise NotAStatement("no header: the file holds no CSV record")
    return out


def _records(text: str, delimiter: str, out: Parsed) -> Iterator[tuple[int, str, list[str]]]:
    """Each non-blank record: the physical line it starts on, its raw text, its fields. A record
    the csv module cannot split (an unclosed quote) is quarantined as ``bad_line`` here."""
    consumed: list[tuple[int, str]] = []
    physical = enumerate(io.StringIO(text, newline=""), start=1)

    def feed() -> Iterator[str]:
        for no, line in physical:
            consumed.append((no, line))
            yield line

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    while True:
        consumed.clear()
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if consumed:
                raw = "".join(line for _, line in consumed).rstrip("\r\n")
                out.refuse(consumed[0][0], raw, LineError("bad_line", None, f"CSV: {exc}"))
            continue
        if not consumed or all(not cell.strip() for cell in row):
            continue
        yield consumed[0][0], "".join(line for _, line in consumed).rstrip("\r\n"), row


def _undecodable(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _header(row: list[str], layout: CsvLayout) -> dict[str, int]:
    """Field name → column index, from the header row (names compared without blanks)."""
    names = [cell.strip() for cell in row]
    index: dict[str, int] = {}
    for name in FIELDS:
        header = layout.header_of(name)
        hits = [i for i, n in enumerate(names) if n == header]
        if len(hits) > 1:
            raise NotAStatement(
                f"the header names {header!r} ({name}) {len(hits)} times", field=name
            )
        if hits:
            index[name] = hits[0]
        elif name in REQUIRED:
            raise NotAStatement(
                f"no column {header!r} for {name} in the header "
                f"{layout.delimiter.join(names)!r} (a CSV layout's --csv-columns maps it)",
                field=name,
            )
    return index


def _line(out: Parsed, line_no: int, raw: str, cells: dict[str, str], layout: CsvLayout) -> None:
    def need(name: str) -> str:
        value = cells.get(name, "").strip()
        if not value:
            raise LineError("missing_field", name, f"{name} is empty")
        return value

    value_date = parse_date(need("value_date"), "value_date", layout.date_format)
    booked = cells.get("booked_at", "").strip()
    booked_at = parse_instant(booked, "booked_at") if booked else None
    currency = need("currency")
    try:
        amount = to_minor(
            need("amount"), currency, decimal=layout.decimal, thousands=layout.thousands
        )
    except AmountError as exc:
        raise LineError.of_amount(exc, "amount") from None
    out.add(
        line_id=cells.get("line_id"),
        line_no=line_no,
        raw=raw,
        value_date=value_date,
        booked_at=booked_at,
        amount_minor=amount,
        currency=currency,
        reference=cells.get("reference"),
        counterparty=cells.get("counterparty"),
    )
