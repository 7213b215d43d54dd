"""Tables made for reading: a Polars frame shown as a person reads it, not as a frame's repr.

:func:`table` turns a frame into a :class:`Table`. In reports and in the notebooks' checked
runs it is a Great Tables table (static HTML, the same bytes on every run, so strict nbval can
compare it); when working live (``WORKBENCH_INTERACTIVE=1``, which ``workbench lab`` sets for its
kernels, or :func:`set_interactive`) it is an itables table, sortable and filterable, with every
row. Its plain text (a terminal, ``repr``) is the same cells aligned.

What makes it readable, and why:

* money columns hold exact integer minor units (the data's unit); a table shows them in major
  units with the currency's decimals, thousands separators and, for differences, a sign
  (:func:`workbench.domain.money.format_major`, integer arithmetic, so no amount is rounded).
  Which columns are money is declared (``money=``) or known by name (:data:`MONEY_COLUMNS`),
  and the currency comes from a column (``currency`` by default) or a code: the header names it
  when all rows share it, each amount carries its own code when they do not and no currency
  column is shown;
* long opaque ids (UUIDs) are cut to their first 8 characters and ``…``; the full id stays in
  the cell's tooltip (``title``), in the interactive table, and in :attr:`Table.frame`;
* no dtype rows, no quotes, no ``shape:`` line; headers in words (``orders_settled`` →
  "Orders settled (USDT)"); times in UTC without an offset; numbers, amounts and times never
  wrap inside a cell (a line break in ``1,001.000000`` reads as two numbers).
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..domain.money import EXPONENTS, format_major

#: Columns that hold integer minor units of money wherever the workbench's frames have them
#: (findings, the reconciliation, drift, drill-downs, timelines, balances).
MONEY_COLUMNS: frozenset[str] = frozenset(
    {
        "amount",
        "amount_delta",
        "at_stake",
        "largest",
        "fee",
        "orders_settled",
        "ledger_orders",
        "orders_difference",
        "paid_out",
        "ledger_paid_out",
        "settled",
        "ledger",
        "payouts_difference",
        "top_ups",
        "difference",
        "drift",
        "settlement",
        "reward",
        "settlement_amount",
        "platform_fee",
        "trader_reward",
        "own",
        "held",
        "available",
        "balance",
        "balance_before",
        "balance_after",
        "held_before",
        "held_after",
        "available_before",
        "available_after",
    }
)

#: Money columns shown with a sign (``+`` as well as ``-``): differences and amounts at stake.
SIGNED_COLUMNS: frozenset[str] = frozenset(
    {"amount_delta", "orders_difference", "payouts_difference", "difference", "drift"}
)

#: Integer columns that are positions or counters of a sequence, shown without separators.
PLAIN_INTEGERS: frozenset[str] = frozenset(
    {"position", "seq", "attempt", "replication", "digits", "batch_id", "posting_index", "version"}
)

#: Words a header writes in capitals.
ACRONYMS: dict[str, str] = {"id": "ID", "ids": "IDs", "fx": "FX", "utc": "UTC", "sha256": "SHA-256"}

#: What a missing value looks like (a blank cell could be mistaken for a zero or an error).
MISSING = "—"

#: The environment variable that makes tables interactive (itables) in a live session.
INTERACTIVE_ENV = "WORKBENCH_INTERACTIVE"

#: The widest an id is shown before it is cut (UUIDs are 36 characters).
SHORT_ID = 8

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_interactive: bool | None = None


def set_interactive(on: bool | None) -> None:
    """Show tables as interactive itables (``True``), as Great Tables (``False``), or as
    :data:`INTERACTIVE_ENV` says (``None``, the default)."""
    global _interactive
    _interactive = on


def interactive() -> bool:
    """Whether tables display as interactive itables: set by :func:`set_interactive`, else
    ``WORKBENCH_INTERACTIVE=1`` (which ``workbench lab`` gives its kernels). Reports and nbval
    runs leave it unset, so their output is the static, deterministic Great Tables HTML."""
    if _interactive is not None:
        return _interactive
    return os.environ.get(INTERACTIVE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def shorten(value: str, width: int = SHORT_ID) -> str:
    """``value`` cut to its first ``width`` characters and ``…`` when it is longer than
    ``width + 1`` (cutting one character would save nothing)."""
    return value if len(value) <= width + 1 else value[:width] + "…"


def label(name: str) -> str:
    """A column name as a header: words, the first capitalised, known acronyms in capitals
    (``orders_settled`` → ``Orders settled``, ``event_id`` → ``Event ID``)."""
    words = [ACRONYMS.get(w, w) for w in name.split("_") if w]
    text = " ".join(words) or name
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Column:
    """How one shown column is written: its header, its cells as text, and how it is drawn."""

    name: str
    header: str
    cells: list[str]
    numeric: bool = False
    nowrap: bool = False
    ids: bool = False


@dataclass
class Table:
    """A frame ready to be read: :attr:`frame` is the exact data (minor units, full ids), the
    rest is how it is shown. Displays as Great Tables HTML, or itables when :func:`interactive`;
    ``str()``/``repr()`` give the same cells as aligned text."""

    frame: pl.DataFrame
    columns: list[Column]
    title: str | None = None
    subtitle: str | None = None
    notes: list[str] = field(default_factory=list)
    max_rows: int | None = 50
    spanners: dict[str, list[str]] = field(default_factory=dict)
    highlight: list[int] = field(default_factory=list)

    @property
    def height(self) -> int:
        return self.frame.height

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def rows(self, *, limit: bool = True, full_ids: bool = False) -> list[list[str]]:
        """The cells as text, row by row (cut to :attr:`max_rows` unless ``limit`` is false; ids
        shortened unless ``full_ids``)."""
        n = self.height if not limit or self.max_rows is None else min(self.height, self.max_rows)
        out: list[list[str]] = []
        for i in range(n):
            row = []
            for c in self.columns:
                v = c.cells[i]
                row.append(_short_ids(v) if c.ids and not full_ids else v)
            out.append(row)
        return out

    def _notes(self) -> list[str]:
        notes = list(self.notes)
        if self.max_rows is not None and self.height > self.max_rows:
            notes.append(
                f"The first {self.max_rows:,} of {self.height:,} rows "
                "(every row is in the frame, and in the interactive table)."
            )
        return notes

    @property
    def table_id(self) -> str:
        """The HTML id of the table: a digest of what it shows, so the same table gets the same
        id on every run (Great Tables would draw a random one) and two different tables on one
        page do not share their styles."""
        digest = hashlib.sha1(usedforsecurity=False)
        for part in (self.title or "", self.subtitle or "", *self.headers, *self._notes()):
            digest.update(part.encode() + b"\x1f")
        for row in self.rows():
            digest.update("\x1f".join(row).encode() + b"\x1e")
        return "wb-" + digest.hexdigest()[:12]

    def gt(self) -> Any:
        """The Great Tables ``GT`` object (to restyle or save it)."""
        from great_tables import GT, loc, style

        names = [c.name for c in self.columns]
        body = pl.DataFrame(
            self.rows(full_ids=True), schema=dict.fromkeys(names, pl.String), orient="row"
        )
        headers: dict[str, Any] = {c.name: c.header for c in self.columns}
        gt = GT(body, id=self.table_id).cols_label(cases=headers)
        if self.title:
            gt = gt.tab_header(title=self.title, subtitle=self.subtitle)
        for spanner, cols in self.spanners.items():
            gt = gt.tab_spanner(label=spanner, columns=cols)
        numeric = [c.name for c in self.columns if c.numeric]
        if numeric:
            gt = gt.cols_align("right", columns=numeric)
        nowrap = [c.name for c in self.columns if c.nowrap]
        if nowrap:
            gt = gt.tab_style(
                style.css("white-space: nowrap; font-variant-numeric: tabular-nums;"),
                loc.body(columns=nowrap),
            )
        ids = [c.name for c in self.columns if c.ids]
        if ids:
            gt = gt.fmt(_id_html, columns=ids)
        shown = range(body.height)
        rows = [i for i in self.highlight if i in shown]
        if rows:
            gt = gt.tab_style(
                [style.fill(color="#fde8e8"), style.text(weight="bold")], loc.body(rows=rows)
            )
        for note in self._notes():
            gt = gt.tab_source_note(note)
        return gt.tab_options(
            table_font_size="13px",
            data_row_padding="3px",
            column_labels_font_weight="bold",
            table_margin_left="0px",
        )

    def html(self) -> str:
        """The static HTML (Great Tables): the same table gives the same bytes."""
        return str(self.gt().as_raw_html())

    def interactive_html(self) -> str:
        """The interactive HTML (itables): every row, full ids, sortable and filterable. Needs
        the DataTables library in the page: :func:`init_interactive` (which
        :func:`workbench.notebook.setup` calls in an interactive session)."""
        import itables

        rows = self.rows(limit=False, full_ids=True)
        frame = pl.DataFrame(
            [[("" if v == MISSING else v) for v in r] for r in rows],
            schema=dict.fromkeys(_unique(self.headers), pl.String),
            orient="row",
        )
        caption = " — ".join(t for t in (self.title, self.subtitle) if t) or None
        return str(
            itables.to_html_datatable(
                frame,
                caption=caption,
                classes="display compact nowrap",
                maxBytes=0,
                showIndex=False,
                show_dtypes=False,  # every column is text here: a dtype row would say "str"
                connected=False,  # the library :func:`init_interactive` loaded: no network
            )
        )

    def text(self) -> str:
        """The table as aligned plain text: title, headers, cells, notes."""
        rows = self.rows()
        widths = [
            max([len(c.header), *(len(r[i]) for r in rows)]) for i, c in enumerate(self.columns)
        ]

        def line(cells: Sequence[str]) -> str:
            parts = [
                cell.rjust(w) if c.numeric else cell.ljust(w)
                for cell, w, c in zip(cells, widths, self.columns, strict=True)
            ]
            return "  ".join(parts).rstrip()

        out = [t for t in (self.title, self.subtitle) if t]
        out.append(line(self.headers))
        out.append("  ".join("-" * w for w in widths))
        out += [line(r) for r in rows]
        out += self._notes()
        return "\n".join(out)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return self.interactive_html() if interactive() else self.html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self._repr_html_()}


def _unique(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


def _short_ids(value: str) -> str:
    return ", ".join(shorten(v) for v in value.split(", "))


def _id_html(value: Any) -> str:
    """A cell of ids shortened, the full ids in its tooltip."""
    text = str(value)
    short = _short_ids(text)
    if short == text:
        return html.escape(text)
    return f'<span title="{html.escape(text, quote=True)}">{html.escape(short)}</span>'


# ------------------------------------------------------------------------------ cells
def _integer(v: Any, plain: bool) -> str:
    return MISSING if v is None else (str(v) if plain else f"{v:,}")


def _float(v: Any, decimals: int | None) -> str:
    if v is None:
        return MISSING
    if v != v or v in (float("inf"), float("-inf")):
        return str(v)
    return f"{v:,.{decimals}f}" if decimals is not None else f"{v:,.6g}"


def _decimal(v: Any, decimals: int | None) -> str:
    """An exact decimal with trailing zeros cut down to ``decimals`` digits, never rounded
    (a published score of 59.995 must not read as 60.00)."""
    if v is None:
        return MISSING
    text = f"{v:,f}"
    if decimals is None or "." not in text:
        return text
    whole, frac = text.split(".")
    frac = frac.rstrip("0").ljust(decimals, "0")
    return f"{whole}.{frac}" if frac else whole


def _time(col: pl.Series) -> list[str]:
    if isinstance(col.dtype, pl.Datetime) and col.dtype.time_zone is not None:
        col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    fmt = "%Y-%m-%d %H:%M:%S" if isinstance(col.dtype, pl.Datetime) else "%Y-%m-%d"
    return [MISSING if v is None else v for v in col.dt.strftime(fmt).to_list()]


def _list(v: Any) -> str:
    if v is None:
        return MISSING
    return ", ".join(MISSING if x is None else str(x) for x in v)


def _is_uuid_column(col: pl.Series) -> bool:
    if col.dtype == pl.List(pl.String):
        values = [x for v in col.drop_nulls().to_list() for x in v]
    elif col.dtype == pl.String:
        values = col.drop_nulls().to_list()
    else:
        return False
    return bool(values) and all(_UUID.match(v) for v in values)


def _money_cells(
    values: list[Any], currencies: list[str | None], *, signed: bool, with_code: bool
) -> list[str]:
    out = []
    for v, cur in zip(values, currencies, strict=True):
        if v is None:
            out.append(MISSING)
            continue
        text = format_major(int(v), cur, signed=signed)
        if cur not in EXPONENTS:
            text += f" minor units {cur}" if cur else " minor units"
        elif with_code:
            text += f" {cur}"
        out.append(text)
    return out


def table(
    frame: pl.DataFrame,
    *,
    money: Sequence[str] | Mapping[str, str] | None = None,
    currency: str = "currency",
    signed: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    decimals: Mapping[str, int] | None = None,
    hide: Sequence[str] = (),
    nowrap: Sequence[str] = (),
    right: Sequence[str] = (),
    title: str | None = None,
    subtitle: str | None = None,
    note: str | Sequence[str] | None = None,
    max_rows: int | None = 50,
    spanners: Mapping[str, Sequence[str]] | None = None,
    highlight: Sequence[int] = (),
) -> Table:
    """``frame`` as a :class:`Table` (see the module doc).

    ``money``: the columns of integer minor units, each with the currency column (or code) that
    applies: a mapping ``{column: currency}``, or a list using ``currency`` (default: the
    :data:`MONEY_COLUMNS` the frame has, when ``currency`` is one of its columns or a code).
    ``signed``: money columns shown with ``+`` (default :data:`SIGNED_COLUMNS`). ``ids``: columns
    of long ids to shorten (default: the columns whose values are all UUIDs). ``labels``:
    headers instead of the column names' words. ``decimals``: digits after the point per float
    column (default: 6 significant digits), or at least that many per decimal column (which is
    never rounded). ``hide``: columns used (e.g. a currency) but not
    shown. ``nowrap``, ``right``: more columns never wrapped, right-aligned (numbers, amounts and
    times already are). ``max_rows``: rows shown statically (``None``: all); the interactive table shows
    every row. ``spanners``: a header over several columns. ``highlight``: rows (indices) to
    mark, e.g. the offending event of a timeline.
    """
    specs = _money_specs(frame, money, currency)
    signed_cols = set(SIGNED_COLUMNS if signed is None else signed)
    id_cols = {c for c in frame.columns if _is_uuid_column(frame[c])} if ids is None else set(ids)
    named = set(specs) | id_cols | set(hide) | set(nowrap) | set(right)
    missing = sorted(named - set(frame.columns))
    if missing:
        raise KeyError(f"no column(s) {', '.join(missing)} in the frame ({frame.columns})")
    labels = dict(labels or {})
    decimals = dict(decimals or {})
    shown = [c for c in frame.columns if c not in set(hide)]

    columns: list[Column] = []
    for name in shown:
        col = frame[name]
        header = labels.get(name, label(name))
        if name in specs:
            if not col.dtype.is_integer():
                raise TypeError(
                    f"money column {name!r} is {col.dtype}, not integer minor units "
                    "(a float cannot hold every amount exactly)"
                )
            cur = specs[name]
            currencies: list[str | None] = (
                frame[cur].to_list() if cur in frame.columns else [cur] * frame.height
            )
            known = {c for c, v in zip(currencies, col.to_list(), strict=True) if v is not None}
            one = next(iter(known)) if len(known) == 1 else None
            shows_currency = cur in shown
            cells = _money_cells(
                col.to_list(),
                currencies,
                signed=name in signed_cols,
                with_code=one is None and not shows_currency,
            )
            if one in EXPONENTS and f"({one})" not in header:
                header = f"{header} ({one})"
            columns.append(Column(name, header, cells, numeric=True, nowrap=True))
        elif name in id_cols:
            values = col.to_list()
            cells = [
                _list(v) if isinstance(v, list) else (MISSING if v is None else str(v))
                for v in values
            ]
            columns.append(Column(name, header, cells, nowrap=True, ids=True))
        else:
            columns.append(_column(name, header, col, decimals.get(name)))
        if name in nowrap or name in right:
            last = columns[-1]
            columns[-1] = Column(
                last.name,
                last.header,
                last.cells,
                numeric=last.numeric or name in right,
                nowrap=last.nowrap or name in nowrap,
                ids=last.ids,
            )

    notes = [note] if isinstance(note, str) else list(note or [])
    return Table(
        frame=frame,
        columns=columns,
        title=title,
        subtitle=subtitle,
        notes=notes,
        max_rows=max_rows,
        spanners={k: list(v) for k, v in (spanners or {}).items()},
        highlight=list(highlight),
    )


def _money_specs(
    frame: pl.DataFrame, money: Sequence[str] | Mapping[str, str] | None, currency: str
) -> dict[str, str]:
    if isinstance(money, Mapping):
        specs = dict(money)
    elif money is not None:
        specs = dict.fromkeys(money, currency)
    elif currency in frame.columns or currency in EXPONENTS:
        specs = {
            c: currency for c in frame.columns if c in MONEY_COLUMNS and frame[c].dtype.is_integer()
        }
    else:
        specs = {}
    for col, cur in specs.items():
        if cur not in frame.columns and cur not in EXPONENTS:
            raise KeyError(
                f"money column {col!r}: {cur!r} is neither a column of the frame nor a "
                f"currency code ({', '.join(sorted(EXPONENTS))})"
            )
    return specs


def _column(name: str, header: str, col: pl.Series, decimals: int | None) -> Column:
    dtype = col.dtype
    if dtype.is_integer():
        plain = name in PLAIN_INTEGERS
        return Column(name, header, [_integer(v, plain) for v in col.to_list()], True, True)
    if dtype.is_float():
        return Column(name, header, [_float(v, decimals) for v in col.to_list()], True, True)
    if isinstance(dtype, pl.Decimal):
        return Column(name, header, [_decimal(v, decimals) for v in col.to_list()], True, True)
    if isinstance(dtype, pl.Datetime | pl.Date):
        if isinstance(dtype, pl.Datetime) and not header.endswith("(UTC)"):
            header = f"{header} (UTC)"
        return Column(name, header, _time(col), nowrap=True)
    if dtype == pl.Boolean:
        cells = [MISSING if v is None else ("yes" if v else "no") for v in col.to_list()]
        return Column(name, header, cells)
    if isinstance(dtype, pl.List | pl.Array):
        return Column(name, header, [_list(v) for v in col.to_list()])
    cells = [_str(v) for v in col.to_list()]
    # ids, accounts and codes are one token: a line break inside ``client:cl-01`` or
    # ``F-417da0cfa50c`` would read as two things.
    return Column(name, header, cells, nowrap=all(" " not in c for c in cells))


def _str(v: Any) -> str:
    return MISSING if v is None else str(v)


def show(frame: pl.DataFrame, **options: Any) -> Table:
    """Display ``frame`` as a :func:`table` now (in the middle of a cell), and return it."""
    from IPython.display import display

    shown = table(frame, **options)
    display(shown)  # type: ignore[no-untyped-call]
    return shown


def init_interactive() -> None:
    """Load the DataTables library into the page once (itables' offline mode: nothing is
    fetched from the network), for the interactive tables that follow."""
    import itables

    itables.init_notebook_mode(all_interactive=False, connected=False)
