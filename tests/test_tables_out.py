"""The writers every table command shares, on any amounts: the Excel money cells read back to the
exact minor units (numbers with the currency's decimals, or exact text where a double cannot hold
them), and the terminal tables never wider than asked, money exact in major units, long ids cut
with an ellipsis."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import openpyxl
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import text_table as tt
from workbench.domain.money import EXPONENTS, format_money
from workbench.tables_out import EXACT_IN_DOUBLE, Sheet, number_format, write_xlsx

INT64 = st.integers(-(2**63), 2**63 - 1)
AMOUNTS = st.one_of(st.integers(-(10**15), 10**15), INT64, st.none())
CURRENCIES = st.sampled_from([*sorted(EXPONENTS), "XYZ"])


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.tuples(AMOUNTS, CURRENCIES), min_size=1, max_size=30))
def test_every_money_cell_reads_back_exactly(
    rows: list[tuple[int | None, str]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.mktemp("xlsx") / "money.xlsx"
    frame = pl.DataFrame(
        {"amount_minor": [a for a, _ in rows], "currency": [c for _, c in rows]},
        schema={"amount_minor": pl.Int64, "currency": pl.String},
    )
    write_xlsx([Sheet("money", frame), Sheet("again", frame)], out)
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["money", "again"]
    ws = book["money"]
    assert [c.value for c in ws[1]] == ["amount", "currency", "amount_minor"]
    for (minor, currency), (major, cur, exact) in zip(rows, ws.iter_rows(min_row=2), strict=True):
        assert cur.value == currency
        if minor is None:
            assert major.value is None and exact.value is None
            continue
        assert exact.value == (minor if abs(minor) < 2**53 else str(minor))
        exp = EXPONENTS.get(currency)
        if exp is None:  # never guessed into major units
            assert major.value == format_money(minor, currency)
        elif abs(minor) >= EXACT_IN_DOUBLE:  # exact text rather than a rounded double
            assert Decimal(major.value) == Decimal(minor).scaleb(-exp)
        else:
            assert isinstance(major.value, int | float)
            shown = Decimal(major.value).quantize(Decimal(1).scaleb(-exp))
            assert shown == Decimal(minor).scaleb(-exp)
            assert major.number_format == number_format(exp)
            assert number_format(exp).count("0") - 1 == exp  # exactly exp decimals shown


IDS = st.text(alphabet="abcdef0123456789-:", min_size=0, max_size=60)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {"id": IDS, "amount": st.one_of(INT64, st.none()), "currency": CURRENCIES}
        ),
        min_size=0,
        max_size=8,
    ),
    width=st.integers(30, 160),
    extra=st.integers(0, 6),
)
def test_text_tables_fit_and_keep_money_exact(
    rows: list[dict[str, Any]], width: int, extra: int
) -> None:
    columns = [
        tt.text("id", "id", shorten=20),
        tt.money("amount", "amount"),
        *(tt.money(f"again {i}", "amount", drop=i + 1) for i in range(extra)),
        tt.text("currency", "currency"),
    ]
    lines = tt.render(rows, columns, width=width)
    assert all(len(line) <= width for line in lines), lines
    text = "\n".join(lines)
    for r in rows:
        shown = tt.PAST_INT64 if r["amount"] is None else format_money(r["amount"], r["currency"])
        number = shown.split(" ")[0] if r["amount"] is not None else shown
        assert number in text  # the figure whole, never cut
        if len(r["id"]) > 20:
            assert r["id"] not in text and r["id"][:19] + tt.ELLIPSIS in text
