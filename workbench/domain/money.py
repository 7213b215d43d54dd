"""Money rules of the catalog (section 2), in exact arithmetic.

Amounts are integers in minor units. Every division is done on exact rationals (a decimal rate
is an exact fraction) and rounded half-even only once, at the end, exactly as the catalog writes
the formulas. No float ever touches an amount: a float cannot hold 0.1 exactly, so a float path
would disagree with the platform on the half-way cases the fixtures contain on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache
from typing import Final

#: Minor-unit exponent of every currency the catalog knows.
EXPONENTS: Final[dict[str, int]] = {
    "RUB": 2,
    "KZT": 2,
    "UZS": 2,
    "USD": 2,
    "EUR": 2,
    "USDT": 6,
}

BPS_DENOMINATOR: Final[int] = 10_000

#: The range of a stored amount (the projections' ``BIGINT`` columns). Sums are computed exactly
#: (Python ints, ``HUGEINT`` in SQL); a sum outside this range is stored as NULL and flagged
#: ``AMOUNT_OVERFLOW``, never wrapped or clipped.
INT64_MIN: Final[int] = -(2**63)
INT64_MAX: Final[int] = 2**63 - 1


def fits_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def as_int64(value: int) -> int | None:
    """``value`` as a ``BIGINT`` column holds it: itself if it fits, else NULL."""
    return value if INT64_MIN <= value <= INT64_MAX else None


def format_money(minor: int, currency: str | None, *, signed: bool = False) -> str:
    """``minor`` units as a person reads them: major units with the currency's decimals,
    thousands separators, a minus (and with ``signed`` a plus) sign, the currency after:
    ``format_money(-1001000000, "USDT") == "-1,001.000000 USDT"``.

    Integer arithmetic only, so any size prints exactly. An amount whose currency is missing
    or unknown is not guessed into major units: it says ``minor units``."""
    if currency not in EXPONENTS:
        unit = f"minor units {currency}" if currency else "minor units"
        return f"{format_major(minor, None, signed=signed)} {unit}"
    return f"{format_major(minor, currency, signed=signed)} {currency}"


def format_major(minor: int, currency: str | None, *, signed: bool = False) -> str:
    """The number :func:`format_money` prints, without the currency (for columns and timelines
    that name it once); a missing or unknown currency leaves the minor units as they are."""
    sign = "-" if minor < 0 else ("+" if signed and minor > 0 else "")
    exp = EXPONENTS.get(currency or "")
    if exp is None:
        return f"{sign}{abs(minor):,}"
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole:,}" + (f".{frac:0{exp}d}" if exp else "")


class MoneyError(ValueError):
    """A money rule was broken: unknown currency, mixed currencies, bad rate."""


class CurrencyMismatch(MoneyError):
    """Two amounts of different currencies were combined."""


def exponent(currency: str) -> int:
    """Minor-unit exponent of ``currency``; an unknown currency is an error, never a guess."""
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}; known: {sorted(EXPONENTS)}") from None


def div_round_half_even(numerator: int, denominator: int) -> int:
    """Integer quotient rounded half to even, exactly (no float, no precision limit)."""
    if denominator == 0:
        raise ZeroDivisionError("division by zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    q, r = divmod(numerator, denominator)
    twice = 2 * r
    if twice > denominator or (twice == denominator and q % 2 == 1):
        q += 1
    return q


def round_half_even(value: Fraction | Decimal | int) -> int:
    """Round an exact value to the nearest integer, ties to even."""
    frac = Fraction(value)
    return div_round_half_even(frac.numerator, frac.denominator)


def parse_rate(rate: str) -> Fraction:
    """A catalog rate: a positive decimal string, as an exact fraction."""
    if not isinstance(rate, str):
        raise MoneyError(f"rate must be a decimal string, got {type(rate).__name__}")
    try:
        dec = Decimal(rate)
    except InvalidOperation:
        raise MoneyError(f"rate {rate!r} is not a decimal string") from None
    if not dec.is_finite() or dec <= 0:
        raise MoneyError(f"rate {rate!r} must be a positive finite decimal")
    return Fraction(dec)


@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An amount in minor units of one currency. Adding two currencies raises."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise MoneyError(f"amount must be an integer of minor units, got {self.amount!r}")
        exponent(self.currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def to_decimal(self) -> Decimal:
        """Major units, for display only (never for arithmetic)."""
        return Decimal(self.amount).scaleb(-exponent(self.currency))

    def __str__(self) -> str:
        """As a person reads it; the one display rule, :func:`format_money`."""
        return format_money(self.amount, self.currency)


def settlement_amount(
    amount_fiat: int, fiat_currency: str, rate: str, settlement_currency: str
) -> int:
    """``round_half_even(amount_fiat / 10^exp_fiat / rate * 10^exp_settle)``, exactly."""
    num, den = _rate_parts(rate)
    return div_round_half_even(
        amount_fiat * den * 10 ** exponent(settlement_currency),
        num * 10 ** exponent(fiat_currency),
    )


@lru_cache(maxsize=4096)
def _rate_parts(rate: str) -> tuple[int, int]:
    """A rate's exact numerator and denominator (a scheduler prices many orders at one rate)."""
    r = parse_rate(rate)
    return r.numerator, r.denominator


def bps_share(amount: int, bps: int) -> int:
    """``round_half_even(amount * bps / 10000)``: the shape of both the fee and the reward."""
    return div_round_half_even(amount * bps, BPS_DENOMINATOR)


def platform_fee(settlement: int, fee_bps: int) -> int:
    """The client's fee on a settlement amount, at the ``fee_bps`` in force at assignment."""
    return bps_share(settlement, fee_bps)


def trader_reward(settlement: int, reward_bps: int) -> int:
    """The trader's reward on a settlement amount, at the ``reward_bps`` in force at assignment."""
    return bps_share(settlement, reward_bps)


@dataclass(frozen=True, slots=True)
class OrderPricing:
    """Everything the scheduler prices at assignment, from the catalog formulas."""

    settlement_amount: int
    platform_fee: int
    trader_reward: int

    @property
    def payin_hold(self) -> int:
        """Trader deposit held for a payin: settlement minus the trader's reward."""
        return self.settlement_amount - self.trader_reward

    @property
    def payout_credit(self) -> int:
        """Trader deposit credited for a payout: settlement plus the trader's reward."""
        return self.settlement_amount + self.trader_reward

    @property
    def client_payout_cost(self) -> int:
        """What a payout order takes from the client's balance: settlement plus the fee."""
        return self.settlement_amount + self.platform_fee

    @property
    def platform_net(self) -> int:
        """What the platform keeps: its fee net of the trader's reward."""
        return self.platform_fee - self.trader_reward


def price_order(
    amount_fiat: int,
    fiat_currency: str,
    rate: str,
    settlement_currency: str,
    fee_bps: int,
    reward_bps: int,
) -> OrderPricing:
    """Price an assignment the way the catalog says the scheduler must."""
    settle = settlement_amount(amount_fiat, fiat_currency, rate, settlement_currency)
    return OrderPricing(settle, platform_fee(settle, fee_bps), trader_reward(settle, reward_bps))
