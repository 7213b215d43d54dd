"""Money as a person reads it: major units with the currency's decimals, exactly."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext

from hypothesis import given
from hypothesis import strategies as st

from workbench.domain.money import EXPONENTS, INT64_MAX, INT64_MIN, format_major, format_money

amounts = st.integers(min_value=INT64_MIN, max_value=INT64_MAX) | st.integers()
currencies = st.sampled_from(sorted(EXPONENTS))


def read_back(text: str) -> tuple[int, str]:
    """What a person reads, turned back into minor units (the test's own parser)."""
    number, currency = text.rsplit(" ", 1)
    with localcontext(Context(prec=1000)):  # the default 28 digits would round huge amounts
        value = Decimal(number.replace(",", ""))
        return int(value.scaleb(EXPONENTS[currency])), currency


@given(amounts, currencies, st.booleans())
def test_round_trips_to_the_same_minor_units(minor: int, currency: str, signed: bool) -> None:
    text = format_money(minor, currency, signed=signed)
    assert read_back(text) == (minor, currency)


@given(amounts, currencies)
def test_has_exactly_the_currencys_decimals_and_a_plain_sign(minor: int, currency: str) -> None:
    number = format_major(minor, currency)
    exp = EXPONENTS[currency]
    whole, _, frac = number.lstrip("-").partition(".")
    assert len(frac) == exp and (exp > 0) == ("." in number)
    assert number.startswith("-") == (minor < 0)
    # thousands separators every three digits, nothing else
    groups = whole.split(",")
    assert all(len(g) == 3 for g in groups[1:]) and 1 <= len(groups[0]) <= 3
    assert format_major(minor, currency, signed=True).startswith("+") == (minor > 0)


def test_examples_from_the_findings() -> None:
    assert format_money(500_000_000, "USDT", signed=True) == "+500.000000 USDT"
    assert format_money(1, "USDT", signed=True) == "+0.000001 USDT"
    assert format_money(-1_001_000_000, "USDT") == "-1,001.000000 USDT"
    assert format_money(123_456_789, "RUB") == "1,234,567.89 RUB"
    assert format_money(0, "KZT", signed=True) == "0.00 KZT"


def test_an_unknown_currency_is_not_guessed_into_major_units() -> None:
    assert format_money(1234567, "XYZ") == "1,234,567 minor units XYZ"
    assert format_money(-5, None) == "-5 minor units"
