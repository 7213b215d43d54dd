"""Amounts are exact: any decimal text with at most the currency's decimals is its minor units,
more decimals are refused (never rounded), and separators are read only as the layout says."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.domain.money import EXPONENTS
from workbench.statements.amounts import AmountError, to_minor

LAYOUTS = [(".", None), (".", ","), (",", None), (",", "."), (",", " "), (".", "'")]


def written(whole: int, frac: str, decimal: str, thousands: str | None) -> str:
    """``whole`` and fraction digits as a bank of the layout writes them (the test's own
    formatting, by string slicing: no number type involved)."""
    digits = str(whole)
    if thousands:
        head = len(digits) % 3 or 3
        groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
        digits = thousands.join(groups)
    return digits + (decimal + frac if frac else "")


@given(
    currency=st.sampled_from(sorted(EXPONENTS)),
    whole=st.integers(min_value=0, max_value=10**12),
    frac_digits=st.data(),
    negative=st.booleans(),
    layout=st.sampled_from(LAYOUTS),
)
def test_at_most_the_currency_s_decimals_is_exact(
    currency: str,
    whole: int,
    frac_digits: st.DataObject,
    negative: bool,
    layout: tuple[str, str | None],
) -> None:
    exp = EXPONENTS[currency]
    frac = frac_digits.draw(st.text("0123456789", min_size=0, max_size=exp))
    decimal, thousands = layout
    text = ("-" if negative else "") + written(whole, frac, decimal, thousands)
    expected = whole * 10**exp + (int(frac) * 10 ** (exp - len(frac)) if frac else 0)
    got = to_minor(text, currency, decimal=decimal, thousands=thousands)
    assert got == (-expected if negative else expected)


@given(
    currency=st.sampled_from(sorted(EXPONENTS)),
    whole=st.integers(min_value=0, max_value=10**9),
    extra=st.integers(min_value=1, max_value=4),
    digits=st.data(),
    layout=st.sampled_from(LAYOUTS),
)
def test_more_decimals_than_the_currency_has_are_refused(
    currency: str,
    whole: int,
    extra: int,
    digits: st.DataObject,
    layout: tuple[str, str | None],
) -> None:
    exp = EXPONENTS[currency]
    # trailing zeros too: 12.500 EUR may be a thousands separator misread, never "12.50"
    frac = digits.draw(st.text("0123456789", min_size=exp + extra, max_size=exp + extra))
    decimal, thousands = layout
    with pytest.raises(AmountError) as err:
        to_minor(
            written(whole, frac, decimal, thousands), currency, decimal=decimal, thousands=thousands
        )
    assert err.value.reason == "too_many_decimals"


@pytest.mark.parametrize(
    ("text", "decimal", "thousands", "reason"),
    [
        ("1,234.56", ".", None, "bad_amount"),  # a thousands separator the layout has not
        ("1.234,56", ".", ",", "bad_amount"),  # the other bank's layout
        ("12,34,567.00", ".", ",", "bad_amount"),  # groups of three only
        ("1,2345.00", ".", ",", "bad_amount"),
        (",234.00", ".", ",", "bad_amount"),
        ("1E+2", ".", None, "bad_amount"),  # Decimal would take it
        ("NaN", ".", None, "bad_amount"),
        ("Infinity", ".", None, "bad_amount"),
        ("١٢٣", ".", None, "bad_amount"),  # Arabic-Indic digits: int() would take them
        (".5", ".", None, "bad_amount"),
        ("--5", ".", None, "bad_amount"),
        ("", ".", None, "bad_amount"),
        ("5 00", ".", None, "bad_amount"),
        ("12,345", ",", ".", "too_many_decimals"),  # the decimal comma: 3 decimals, EUR has 2
    ],
)
def test_what_is_not_an_amount_of_the_layout_is_refused(
    text: str, decimal: str, thousands: str | None, reason: str
) -> None:
    with pytest.raises(AmountError) as err:
        to_minor(text, "EUR", decimal=decimal, thousands=thousands)
    assert err.value.reason == reason


def test_separators_are_read_as_the_layout_says() -> None:
    assert to_minor("1.234.567,89", "EUR", decimal=",", thousands=".") == 123_456_789
    assert to_minor("1,234,567.89", "EUR", decimal=".", thousands=",") == 123_456_789
    assert to_minor("1234567,89", "EUR", decimal=",", thousands=".") == 123_456_789
    assert to_minor("-0,000001", "USDT", decimal=",") == -1
    assert to_minor("12.345", "EUR", decimal=",", thousands=".") == 1_234_500
    assert to_minor("250,", "EUR", decimal=",", signed=False, negate=True) == -25_000


def test_an_unknown_currency_is_refused_as_written() -> None:
    for currency in ("XXX", "eur", "EURO", ""):
        with pytest.raises(AmountError) as err:
            to_minor("1.00", currency)
        assert err.value.reason == "unknown_currency"


def test_a_sign_where_the_format_writes_a_mark_and_a_value_past_int64_are_refused() -> None:
    with pytest.raises(AmountError) as err:
        to_minor("-5,00", "EUR", decimal=",", signed=False)
    assert err.value.reason == "bad_amount"
    with pytest.raises(AmountError) as err:
        to_minor("92233720368547758.08", "EUR")  # one minor unit past 2**63 - 1
    assert err.value.reason == "bad_amount"
    assert to_minor("92233720368547758.07", "EUR") == 2**63 - 1
    assert to_minor("-92233720368547758.08", "EUR") == -(2**63)
