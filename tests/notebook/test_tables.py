"""Tables made for reading: money in major units with each currency's decimals (exact, beyond a
float's 53 bits), long ids shortened with the full id kept, no dtype rows, the same HTML on
every run, and itables only when asked for."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl
import pytest

from workbench.notebook import tables
from workbench.notebook.tables import label, shorten, table

BIG = 2**53 + 1  # a float reads it as 2**53: the cell must not
UUID = "429641f1-5c7e-4f6e-9a51-0f7d2b1c9e11"
OTHER = "3c8e17ec-0000-4000-8000-000000000002"


def _text(markup: str) -> list[str]:
    """The text of an HTML fragment, cell by cell (styles left out)."""
    markup = re.sub(r"<style.*?</style>", "", markup, flags=re.S)
    return [html.unescape(t).strip() for t in re.split(r"<[^>]+>", markup) if t.strip()]


@pytest.fixture(autouse=True)
def _static(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tables.INTERACTIVE_ENV, raising=False)
    tables.set_interactive(None)


def test_money_in_major_units_with_each_currencys_decimals() -> None:
    frame = pl.DataFrame(
        {
            "currency": ["USDT", "RUB", "USDT", "KZT", None],
            "amount_delta": [BIG, -123456, -1001000000, 5, 7],
        }
    )
    t = table(frame)
    assert t.columns[1].cells == [
        "+9,007,199,254.740993",  # 6 decimals, exact (a float gives …740992)
        "-1,234.56",  # 2 decimals
        "-1,001.000000",
        "+0.05",
        "+7 minor units",  # no currency: not guessed into major units
    ]
    assert t.headers == ["Currency", "Amount delta"]  # several currencies: the column says it


def test_one_currency_is_named_in_the_header_and_a_hidden_one_on_each_amount() -> None:
    usdt = pl.DataFrame({"account": ["a", "b"], "currency": ["USDT", "USDT"], "paid_out": [1, 0]})
    t = table(usdt)
    assert t.headers == ["Account", "Currency", "Paid out (USDT)"]
    assert t.columns[2].cells == ["0.000001", "0.000000"]  # not signed: not a difference
    mixed = pl.DataFrame({"currency": ["USDT", "RUB"], "fee": [2_500_000, 250]})
    cells = table(mixed, hide=["currency"]).columns[0].cells
    assert cells == ["2.500000 USDT", "2.50 RUB"]


def test_money_columns_named_with_their_currency_column_or_code() -> None:
    frame = pl.DataFrame({"fiat": ["RUB"], "amount_fiat": [123456], "settled": [5]})
    t = table(frame, money={"amount_fiat": "fiat", "settled": "USDT"}, signed=["settled"])
    assert t.columns[1].cells == ["1,234.56"] and t.columns[1].header == "Amount fiat (RUB)"
    assert t.columns[2].cells == ["+0.000005"] and t.columns[2].header == "Settled (USDT)"
    with pytest.raises(KeyError, match="neither a column"):
        table(frame, money={"settled": "usdt"})


def test_a_float_money_column_is_refused() -> None:
    with pytest.raises(TypeError, match="not integer minor units"):
        table(pl.DataFrame({"currency": ["USDT"], "amount": [1.5]}), money=["amount"])


def test_long_ids_are_shortened_with_the_full_id_kept() -> None:
    frame = pl.DataFrame(
        {
            "finding_id": ["F-417da0cfa50c"],
            "event_id": [UUID],
            "evidence": [[UUID, OTHER]],
        }
    )
    t = table(frame)
    assert t.rows() == [["F-417da0cfa50c", "429641f1…", "429641f1…, 3c8e17ec…"]]
    assert t.frame["event_id"][0] == UUID  # the data keeps it
    page = t.html()
    assert f'title="{UUID}"' in page and f'title="{UUID}, {OTHER}"' in page
    assert "F-417da0cfa50c" in _text(page)  # short ids stay whole
    assert shorten("abcdefghi") == "abcdefghi" and shorten("abcdefghij") == "abcdefgh…"


def test_no_dtype_rows_quotes_or_shape_in_the_html_or_text() -> None:
    frame = pl.DataFrame(
        {
            "check": ["FEE_MISMATCH"],
            "findings": [1234],
            "share": [0.25],
            "at": [datetime(2026, 11, 3, 5, 11, 23, tzinfo=UTC)],
            "day": [date(2026, 11, 3)],
            "matches": [False],
            "score": [Decimal("59.990000")],
            "note": [None],
        },
        schema_overrides={"score": pl.Decimal(18, 6), "note": pl.String},
    )
    t = table(frame, decimals={"score": 2})
    cells = _text(t.html())
    for dtype in ("i64", "str", "f64", "bool", "date", "decimal[18,6]", "datetime[μs, UTC]"):
        assert dtype not in cells
    assert not any(c.startswith("shape:") or c.startswith('"') for c in cells)
    assert cells[-8:] == [
        "FEE_MISMATCH",
        "1,234",
        "0.25",
        "2026-11-03 05:11:23",
        "2026-11-03",
        "no",
        "59.99",
        tables.MISSING,
    ]
    assert "At (UTC)" in cells
    assert "i64" not in t.text() and "shape:" not in t.text()


def test_numbers_amounts_times_and_ids_never_wrap() -> None:
    frame = pl.DataFrame(
        {
            "account": ["client:cl-01"],
            "currency": ["USDT"],
            "paid_out": [1_001_000_000],
            "detail": ["words may wrap"],
        }
    )
    page = table(frame).html()
    cells = re.findall(r"<td([^>]*)>([^<]*)</td>", page)
    nowrap = {text for attrs, text in cells if "white-space: nowrap;" in attrs}
    assert nowrap == {"client:cl-01", "USDT", "1,001.000000"}


def test_decimals_are_never_rounded() -> None:
    frame = pl.DataFrame(
        {"score": [Decimal("59.995000"), Decimal("55.000000"), Decimal("100.000000")]},
        schema={"score": pl.Decimal(18, 6)},
    )
    assert table(frame, decimals={"score": 2}).columns[0].cells == ["59.995", "55.00", "100.00"]


def test_the_same_table_gives_the_same_html_and_another_another_id() -> None:
    frame = pl.DataFrame({"currency": ["USDT"], "amount": [5]})
    first, second = table(frame, title="x").html(), table(frame, title="x").html()
    assert first == second
    ids = set(re.findall(r'id="(wb-[0-9a-f]+)"', first))
    assert len(ids) == 1
    other = table(frame.with_columns(pl.lit(6).alias("amount")), title="x")
    assert other.table_id not in ids


def test_rows_beyond_max_rows_are_left_to_the_frame_and_said() -> None:
    frame = pl.DataFrame({"n": list(range(7))})
    t = table(frame, max_rows=5)
    assert len(t.rows()) == 5 and len(t.rows(limit=False)) == 7
    assert "The first 5 of 7 rows" in t.text()
    assert table(frame, max_rows=None).rows()[-1] == ["6"]


def test_headers_in_words() -> None:
    assert label("orders_settled") == "Orders settled"
    assert label("event_id") == "Event ID"
    assert table(pl.DataFrame({"x": [1]}), labels={"x": "Why"}).headers == ["Why"]


def test_interactive_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pl.DataFrame({"event_id": [UUID], "currency": ["RUB"], "amount": [150]})
    static = table(frame)._repr_mimebundle_()
    assert "gt_table" in static["text/html"] and "DataTable" not in static["text/html"]
    monkeypatch.setenv(tables.INTERACTIVE_ENV, "1")
    assert tables.interactive()
    live = table(frame)._repr_mimebundle_()
    assert "gt_table" not in live["text/html"]
    assert "ITable" in live["text/html"]
    assert UUID in live["text/html"] and "1.50" in live["text/html"]  # full id, major units
    assert "unpkg" not in live["text/html"]  # offline: the library setup() loaded
    assert "'dtype'>str" not in live["text/html"]  # no dtype row there either
    assert live["text/plain"] == static["text/plain"]
    tables.set_interactive(False)  # a session may turn it off again
    assert "gt_table" in table(frame)._repr_html_()
