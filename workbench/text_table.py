"""Fixed-width text tables for a terminal, at most 120 columns wide.

What ``reconcile``, ``ratings``, ``ledger`` and ``revenue`` print for a person, instead of a
frame's repr (dtype rows, quoted strings, a table several screens wide). Each column says how its
cells read (money in major units with the currency's decimals and thousands separators, via
:func:`~workbench.domain.money.format_major`; long ids cut with an ellipsis; numbers to the
right). A table that would be wider than the terminal leaves out its optional columns, least
needed first, and says which under it; one that still would not fit is printed as one record per
row (``name: value`` lines), so no line is ever wider than asked. The machine formats (CSV, JSON,
Parquet, Excel) keep every column, full ids and exact minor units.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .domain.money import format_major

#: The widest line a table prints (a terminal of 120 columns).
WIDTH = 120
GAP = "  "
ELLIPSIS = "…"
#: How a money figure too large for a ``BIGINT`` column (stored NULL) reads.
PAST_INT64 = "past int64"

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Col:
    """One column: its header (a ``\\n`` stacks it on two lines), how a row's cell reads, and
    how it fits.

    ``shorten``: cells longer than this are cut with an ellipsis (ids; the full id is in the
    machine formats). ``drop``: 0 for a column always shown; otherwise the column may be left
    out to fit, the highest ``drop`` first."""

    header: str
    cell: Callable[[Row], str]
    right: bool = False
    shorten: int | None = None
    drop: int = 0


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, the last one an ellipsis when it was longer."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + ELLIPSIS if width > 0 else ""


def text(header: str, key: str, *, shorten: int | None = None, drop: int = 0) -> Col:
    return Col(header, lambda r: "" if r.get(key) is None else str(r[key]), False, shorten, drop)


def number(header: str, key: str, *, drop: int = 0) -> Col:
    return Col(header, lambda r: "" if r.get(key) is None else f"{r[key]:,}", True, None, drop)


def when(header: str, key: str, fmt: str = "%Y-%m-%d %H:%M:%S", *, drop: int = 0) -> Col:
    """A time (UTC, as the workbench's connections give it) or a day."""

    def cell(r: Row) -> str:
        value = r.get(key)
        if isinstance(value, datetime | date):
            return value.strftime(fmt)
        return "" if value is None else str(value)

    return Col(header, cell, False, None, drop)


def money(
    header: str,
    key: str,
    currency: str = "currency",
    *,
    signed: bool = False,
    blank_zero: bool = False,
    drop: int = 0,
) -> Col:
    """Minor units in ``row[key]`` read in major units of ``row[currency]`` (no currency
    suffix: the table names it once). NULL (a figure past int64) reads :data:`PAST_INT64`."""

    def cell(r: Row) -> str:
        value = r.get(key)
        if value is None:
            return PAST_INT64
        if blank_zero and value == 0:
            return ""
        return format_major(int(value), r.get(currency), signed=signed)

    return Col(header, cell, True, None, drop)


def render(
    rows: Iterable[Row],
    columns: Sequence[Col],
    *,
    width: int = WIDTH,
    group: Callable[[Row], str] | None = None,
) -> list[str]:
    """The table's lines (header, a rule, one line per row), none wider than ``width``.
    ``group`` titles runs of rows: where its text changes, a blank line and that text come
    before the row (the columns stay aligned across groups)."""
    rows = list(rows)
    titles = [group(r) if group is not None else None for r in rows]
    cells = [[_fit(c, c.cell(r)) for c in columns] for r in rows]
    widths = [
        max([len(h) for h in c.header.split("\n")] + [len(row[i]) for row in cells])
        for i, c in enumerate(columns)
    ]
    shown = list(range(len(columns)))
    left_out: list[str] = []
    for i in sorted(
        (i for i, c in enumerate(columns) if c.drop), key=lambda i: (-columns[i].drop, -i)
    ):
        if _total(widths, shown) <= width:
            break
        shown.remove(i)
        left_out.append(columns[i].header.replace("\n", " "))
    if _total(widths, shown) > width:
        return _records(rows, columns, cells, width, titles)
    heads = [c.header.split("\n") for c in columns]
    depth = max(len(heads[i]) for i in shown) if shown else 1
    lines = []
    for level in range(depth):
        parts = []
        for i in shown:
            stack = heads[i]
            line = stack[level - (depth - len(stack))] if level >= depth - len(stack) else ""
            parts.append(_pad(line, widths[i], columns[i].right))
        lines.append(GAP.join(parts).rstrip())
    lines.append("─" * _total(widths, shown))
    previous = None
    for title, row in zip(titles, cells, strict=True):
        if title is not None and title != previous:
            lines += (
                ["", shorten(title, width)] if previous is not None else [shorten(title, width)]
            )
            previous = title
        lines.append(GAP.join(_pad(row[i], widths[i], columns[i].right) for i in shown).rstrip())
    if left_out:
        note = f"(left out to fit {width} columns: {', '.join(left_out)}; --format csv has them)"
        lines.append(shorten(note, width))
    return lines


def _fit(col: Col, value: str) -> str:
    value = " ".join(value.split())  # one line per cell
    return shorten(value, col.shorten) if col.shorten is not None else value


def _total(widths: Sequence[int], shown: Sequence[int]) -> int:
    return sum(widths[i] for i in shown) + len(GAP) * max(len(shown) - 1, 0)


def _pad(value: str, width: int, right: bool) -> str:
    return value.rjust(width) if right else value.ljust(width)


def _records(
    rows: Sequence[Row],
    columns: Sequence[Col],
    cells: Sequence[Sequence[str]],
    width: int,
    titles: Sequence[str | None],
) -> list[str]:
    """One block of ``name: value`` lines per row: the layout that always fits."""
    names = [c.header.replace("\n", " ") for c in columns]
    label = min(max(len(n) for n in names), width // 3)
    lines: list[str] = []
    for n, row in enumerate(cells):
        title = f" · {titles[n]}" if titles[n] else ""
        lines.append(shorten(f"── row {n + 1} of {len(rows)}{title}", width))
        for name, value in zip(names, row, strict=True):
            head = shorten(name, label).ljust(label)
            if len(head) + 2 + len(value) <= width:
                lines.append(f"{head}  {value}".rstrip())
            else:  # the value on a line of its own: a figure is never cut
                lines += [head.rstrip(), "  " + shorten(value, width - 2)]
    return lines


def line(text_: str, width: int = WIDTH) -> str:
    """A free line above or below a table (a title, a total), cut to fit."""
    return shorten(text_, width)
