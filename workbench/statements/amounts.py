"""A statement's amount text to exact integer minor units, or the reason it cannot be.

Why by hand and not ``Decimal(text)`` or ``float(text)``: a float cannot hold most decimal
amounts, ``Decimal`` accepts exponents (``1E+2``), non-ASCII digits, ``NaN`` and ``Infinity``,
and neither knows a bank's separators. Here the text is matched against one strict shape (sign,
ASCII digits, the layout's thousands separator only between groups of three, the layout's
decimal separator) and the digits are turned into an integer by string arithmetic: nothing is
ever rounded. An amount with more decimals than the currency's exponent (``EXPONENTS``) is
refused even when the extra digits are zeros: ``12.500`` for EUR is as likely a thousands
separator read as a decimal one (twelve thousand five hundred) as twelve euros fifty.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..domain.money import EXPONENTS, INT64_MAX, INT64_MIN


class AmountError(ValueError):
    """Why an amount was refused: ``reason`` is a quarantine reason (``bad_amount``,
    ``too_many_decimals``, ``unknown_currency``), ``detail`` one sentence for a person."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@lru_cache(maxsize=64)
def _shape(decimal: str, thousands: str | None) -> re.Pattern[str]:
    """The one shape an amount may have in a layout (see the module doc)."""
    grouped = (
        rf"[0-9]{{1,3}}(?:{re.escape(thousands)}[0-9]{{3}})+|[0-9]+" if thousands else r"[0-9]+"
    )
    return re.compile(
        rf"(?P<sign>[+-]?)(?P<whole>{grouped})(?:{re.escape(decimal)}(?P<frac>[0-9]*))?"
    )


def check_separators(decimal: str, thousands: str | None) -> None:
    """Refuse a layout whose separators could be confused (a usage error, not a line's)."""
    if len(decimal) != 1 or decimal.isdigit() or decimal in "+-":
        raise ValueError(
            f"decimal separator {decimal!r} must be one character, not a digit or sign"
        )
    if thousands is not None and (
        len(thousands) != 1 or thousands.isdigit() or thousands in "+-" or thousands == decimal
    ):
        raise ValueError(
            f"thousands separator {thousands!r} must be one character, not a digit or sign, "
            f"and differ from the decimal separator {decimal!r}"
        )


def exponent_of(currency: str) -> int:
    """The currency's minor-unit exponent; :class:`AmountError` ``unknown_currency`` if the
    catalog does not know it (as written: ``eur`` is not ``EUR``)."""
    exp = EXPONENTS.get(currency)
    if exp is None:
        raise AmountError(
            "unknown_currency",
            f"currency {currency!r} is not one the catalog knows ({', '.join(sorted(EXPONENTS))})",
        )
    return exp


def to_minor(
    text: str,
    currency: str,
    *,
    decimal: str = ".",
    thousands: str | None = None,
    signed: bool = True,
    negate: bool = False,
) -> int:
    """``text`` (major units, e.g. ``-1.234,50`` with ``decimal=","``, ``thousands="."``) as
        integer minor units of ``currency``. ``signed=False`` refuses a sign in the text (MT940 and
    camt.053 write the direction apart, as a mark); ``negate`` then makes it negative (a debit).

        Surrounding blanks are ignored; anything else outside the shape is ``bad_amount``, as is a
        value outside a ``BIGINT``. Raises :class:`AmountError`."""
    exp = exponent_of(currency)
    check_separators(decimal, thousands)
    m = _shape(decimal, thousands).fullmatch(text.strip())
    if m is None:
        sep = f"decimal {decimal!r}" + (f", thousands {thousands!r}" if thousands else "")
        raise AmountError("bad_amount", f"{text!r} is not an amount (separators: {sep})")
    if m.group("sign") and not signed:
        raise AmountError("bad_amount", f"{text!r}: this format writes no sign in the amount")
    frac = m.group("frac") or ""
    if len(frac) > exp:
        raise AmountError(
            "too_many_decimals",
            f"{text!r} has {len(frac)} decimals; {currency} has {exp} (never rounded)",
        )
    whole = m.group("whole").replace(thousands, "") if thousands else m.group("whole")
    minor = int(whole + frac.ljust(exp, "0"))
    if (m.group("sign") == "-") != negate:
        minor = -minor
    if not INT64_MIN <= minor <= INT64_MAX:
        raise AmountError("bad_amount", f"{text!r} {currency} is outside the range of a BIGINT")
    return minor
