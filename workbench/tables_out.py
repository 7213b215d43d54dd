"""Tables written for analysts: CSV, JSON, Parquet and Excel, the same way by every command.

``audit`` (findings), ``reconcile``, ``ratings``, ``ledger`` and ``revenue`` hand their tables
here as :class:`Sheet` s. CSV, JSON and Parquet hold the first (the command's main table)
exactly as the Python function returns it: full ids, money in integer minor units. Excel holds
every sheet, one worksheet each, made for a person who will sort, filter and sum them:

* each money column holds the amount in **major units as a number** whose cell format shows
  exactly its currency's decimals (``#,##0.000000`` for USDT, exponent 6; ``#,##0.00`` for RUB),
  the currency read from the row (a money column names the column that holds its currency), and
  the exact integer minor units stay beside it in a ``…_minor`` column at the sheet's end;
* an amount a spreadsheet's double cannot hold to the last minor unit (2^52 minor units and
  more) is written as text, exact, rather than rounded; so is one of a currency the catalog does
  not know (``format_money``'s "minor units" wording: never guessed into major units);
* times are UTC (Excel has no time zones), lists are joined with spaces, and strings are always
  written as text (never turned into formulas or links).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from .domain.money import EXPONENTS, format_money

#: Every output format; ``table`` is text for a person (the command renders it).
FORMATS = ("table", "csv", "json", "parquet", "xlsx")
#: Formats written to a file only (``--out``).
BINARY = frozenset({"parquet", "xlsx"})
#: Below this many minor units (in absolute value) a double holds ``minor / 10**exp`` closely
#: enough that rounding it to ``exp`` decimals gives the amount back exactly.
EXACT_IN_DOUBLE = 2**52


@dataclass(frozen=True)
class Sheet:
    """One table: its sheet name, its rows, and its money columns, each with the column holding
    its currency (by default every ``*_minor`` column, with ``currency``)."""

    name: str
    frame: pl.DataFrame
    money: Mapping[str, str] = field(default_factory=dict)

    def money_columns(self) -> dict[str, str]:
        if self.money:
            return dict(self.money)
        if "currency" not in self.frame.columns:
            return {}
        return {c: "currency" for c in self.frame.columns if c.endswith("_minor")}


def number_format(exp: int) -> str:
    """The Excel number format that shows exactly ``exp`` decimals, with thousands separators."""
    return "#,##0" if exp == 0 else "#,##0." + "0" * exp


def write(
    sheets: Sequence[Sheet], fmt: str, out: Path | None, text: Callable[[], str] | None = None
) -> None:
    """Write ``sheets`` as ``fmt`` to ``out`` (stdout for a text format when ``out`` is None).
    ``text`` renders the ``table`` format. Raises ``ValueError`` (a usage error) for a binary
    format without ``out``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if fmt in BINARY and out is None:
        raise ValueError(f"--format {fmt} needs --out FILE")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        assert out is not None
        write_xlsx(sheets, out)
        return
    main = sheets[0].frame
    if fmt == "parquet":
        assert out is not None
        main.write_parquet(out)
        return
    if fmt == "csv":
        body = flat(main).write_csv()
    elif fmt == "json":
        body = main.write_json()
    else:
        if text is None:
            raise ValueError("this command has no table format")
        body = text()
    if not body.endswith("\n"):
        body += "\n"
    if out is None:
        sys.stdout.write(body)
    else:
        out.write_text(body)


def flat(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its list columns joined by spaces (CSV has no lists)."""
    lists = [c for c, t in frame.schema.items() if isinstance(t, pl.List)]
    return frame.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join(" ") for c in lists)


def write_xlsx(sheets: Sequence[Sheet], out: Path) -> None:
    """An Excel workbook, one worksheet per sheet (see the module doc)."""
    import xlsxwriter  # type: ignore[import-untyped]

    options = {"strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False}
    book = xlsxwriter.Workbook(str(out), options)
    try:
        styles = _Styles(book)
        names: set[str] = set()
        for sheet in sheets:
            _write_sheet(book.add_worksheet(_sheet_name(sheet.name, names)), sheet, styles)
    finally:
        book.close()


class _Styles:
    """The workbook's cell formats, made once each."""

    def __init__(self, book: Any) -> None:
        self.book = book
        self.header = book.add_format({"bold": True, "bottom": 1})
        self.time = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.day = book.add_format({"num_format": "yyyy-mm-dd"})
        self.integer = book.add_format({"num_format": "0"})
        self.text = book.add_format({"num_format": "@"})
        self._money: dict[int, Any] = {}

    def money(self, exp: int) -> Any:
        if exp not in self._money:
            self._money[exp] = self.book.add_format({"num_format": number_format(exp)})
        return self._money[exp]


def _sheet_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "_", name).strip("'")[:31] or "sheet"
    out, n = base, 2
    while out.lower() in taken:
        suffix = f" ({n})"
        out, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(out.lower())
    return out


def _write_sheet(ws: Any, sheet: Sheet, styles: _Styles) -> None:
    frame = sheet.frame
    money = sheet.money_columns()
    for column, cur in money.items():
        if column not in frame.columns or cur not in frame.columns:
            raise ValueError(f"sheet {sheet.name}: money column {column} or {cur} missing")
    headers = [_major_name(c) if c in money else c for c in frame.columns]
    headers += [_minor_name(c) for c in money]
    widths = [len(h) for h in headers]
    for col, h in enumerate(headers):
        ws.write_string(0, col, h, styles.header)
    rows = frame.iter_rows(named=True)
    for n, row in enumerate(rows, start=1):
        for col, name in enumerate(frame.columns):
            if name in money:
                shown = _money_cell(ws, n, col, row[name], row[money[name]], styles)
            else:
                shown = _cell(ws, n, col, row[name], styles)
            widths[col] = max(widths[col], shown)
        for k, name in enumerate(money, start=len(frame.columns)):
            widths[k] = max(widths[k], _integer_cell(ws, n, k, row[name], styles))
    for col, w in enumerate(widths):
        ws.set_column(col, col, min(w + 2, 60))
    ws.freeze_panes(1, 0)
    if headers:
        ws.autofilter(0, 0, max(frame.height, 1), len(headers) - 1)


def _major_name(column: str) -> str:
    return column.removesuffix("_minor")


def _minor_name(column: str) -> str:
    return column if column.endswith("_minor") else f"{column}_minor"


def _money_cell(ws: Any, r: int, c: int, minor: Any, currency: Any, styles: _Styles) -> int:
    """A money cell: the major-unit number in its currency's format; text when inexact."""
    if minor is None:
        ws.write_blank(r, c, None)
        return 0
    minor = int(minor)
    exp = EXPONENTS.get(currency) if isinstance(currency, str) else None
    if exp is None or abs(minor) >= EXACT_IN_DOUBLE:
        shown = format_money(minor, currency) if exp is None else _exact_major(minor, exp)
        ws.write_string(r, c, shown, styles.text)
        return len(shown)
    ws.write_number(r, c, float(Decimal(minor).scaleb(-exp)), styles.money(exp))
    return len(f"{abs(minor) // 10**exp:,}") + exp + 2


def _exact_major(minor: int, exp: int) -> str:
    whole, frac = divmod(abs(minor), 10**exp)
    return ("-" if minor < 0 else "") + str(whole) + (f".{frac:0{exp}d}" if exp else "")


def _integer_cell(ws: Any, r: int, c: int, value: Any, styles: _Styles) -> int:
    if value is None:
        ws.write_blank(r, c, None)
        return 0
    value = int(value)
    if abs(value) >= 2**53:  # beyond a double's integers: exact as text
        ws.write_string(r, c, str(value), styles.text)
    else:
        ws.write_number(r, c, value, styles.integer)
    return len(str(value))


def _cell(ws: Any, r: int, c: int, value: Any, styles: _Styles) -> int:
    """Any other cell, by its Python type; returns about how wide it reads."""
    if value is None:
        ws.write_blank(r, c, None)
        return 0
    if isinstance(value, bool):
        ws.write_boolean(r, c, value)
        return 5
    if isinstance(value, int):
        return _integer_cell(ws, r, c, value, styles)
    if isinstance(value, float | Decimal):
        ws.write_number(r, c, float(value))
        return len(str(value))
    if isinstance(value, datetime):
        naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        ws.write_datetime(r, c, naive, styles.time)
        return 19
    if isinstance(value, date):
        ws.write_datetime(r, c, datetime(value.year, value.month, value.day), styles.day)
        return 10
    if isinstance(value, list | tuple):
        shown = " ".join(str(v) for v in value)
    elif isinstance(value, dict):
        shown = json.dumps(value, default=str, sort_keys=True)
    else:
        shown = str(value)
    ws.write_string(r, c, shown)
    return len(shown)
