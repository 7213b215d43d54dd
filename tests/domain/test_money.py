"""Money (catalog section 2): exact half-even rounding, settlement, fee and reward, currencies,
rates, and the catalog JSON round trip of payloads (decimals and timestamps kept exactly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.domain import catalog, ledger, money, payment_order, rating, receipt, trader
from workbench.domain.events import Payload, dumps, loads
from workbench.domain.money import (
    CurrencyMismatch,
    Money,
    MoneyError,
    div_round_half_even,
    parse_rate,
    platform_fee,
    price_order,
    round_half_even,
    settlement_amount,
    trader_reward,
)

# Exponents written again from catalog section 2.
CATALOG_EXPONENTS = {"RUB": 2, "KZT": 2, "UZS": 2, "USD": 2, "EUR": 2, "USDT": 6}
FAST = settings(max_examples=200, deadline=None)


def test_exponents_are_the_catalogs() -> None:
    assert money.EXPONENTS == CATALOG_EXPONENTS
    for cur, exp in CATALOG_EXPONENTS.items():
        assert money.exponent(cur) == exp
    with pytest.raises(MoneyError):
        money.exponent("BTC")


# --------------------------------------------------------------------------- rounding
@FAST
@given(st.integers(-(10**30), 10**30), st.integers(-(10**12), 10**12).filter(bool))
def test_div_round_half_even_is_round_of_fraction(n: int, d: int) -> None:
    assert div_round_half_even(n, d) == round(Fraction(n, d))


@FAST
@given(st.integers(-(10**6), 10**6))
def test_exact_halves_go_to_even(k: int) -> None:
    # (2k+1)/2 is a tie between k and k+1: the even one wins
    got = div_round_half_even(2 * k + 1, 2)
    assert got in (k, k + 1) and got % 2 == 0


@pytest.mark.parametrize(
    ("n", "d", "want"),
    [
        (5, 2, 2),
        (7, 2, 4),
        (-5, 2, -2),
        (-7, 2, -4),
        (1, 2, 0),
        (-1, 2, 0),
        (3, 2, 2),
        (25, 10, 2),
        (35, 10, 4),
        (-25, 10, -2),
        (26, 10, 3),
        (24, 10, 2),
        (5, -2, -2),
        (15_000, 10_000, 2),
        (25_000, 10_000, 2),
        (0, 7, 0),
    ],
)
def test_half_even_cases(n: int, d: int, want: int) -> None:
    assert div_round_half_even(n, d) == want


def test_round_half_even_on_exact_values() -> None:
    assert round_half_even(Decimal("2.5")) == 2
    assert round_half_even(Decimal("3.5")) == 4
    assert round_half_even(Decimal("-2.5")) == -2
    assert round_half_even(Fraction(7, 2)) == 4
    assert round_half_even(Decimal("2.5000000000000000000000001")) == 3
    assert round_half_even(11) == 11
    with pytest.raises(ZeroDivisionError):
        div_round_half_even(1, 0)


# ------------------------------------------------------------------------- settlement
currencies = st.sampled_from(sorted(CATALOG_EXPONENTS))
rates = st.decimals(
    min_value=Decimal("0.0001"),
    max_value=Decimal("100000"),
    places=4,
    allow_nan=False,
    allow_infinity=False,
).map(lambda d: format(d, "f"))


def settlement_by_hand(amount: int, fiat: str, rate: str, settle: str) -> int:
    """The catalog formula with Fraction and Python's (half-even) round."""
    value = (
        Fraction(amount, 10 ** CATALOG_EXPONENTS[fiat])
        / Fraction(Decimal(rate))
        * 10 ** CATALOG_EXPONENTS[settle]
    )
    return round(value)


@FAST
@given(st.integers(0, 10**13), currencies, rates, currencies)
def test_settlement_amount_is_the_catalog_formula(
    amount: int, fiat: str, rate: str, settle: str
) -> None:
    assert settlement_amount(amount, fiat, rate, settle) == settlement_by_hand(
        amount, fiat, rate, settle
    )


@pytest.mark.parametrize(
    ("amount", "fiat", "rate", "settle", "want"),
    [
        (92_350_00, "RUB", "92.35", "USDT", 1_000_000_000),  # 92350.00 RUB / 92.35 = 1000 USDT
        (1_00, "RUB", "100", "USDT", 10_000),
        # 0.01 RUB / 4000 = 0.000_0025 USDT: half-way between 2 and 3 micro-units, so 2 (even)
        (1, "RUB", "4000", "USDT", 2),
        # 0.07 RUB / 20000 = 0.000_0035 USDT: half-way between 3 and 4, so 4 (even)
        (7, "RUB", "20000", "USDT", 4),
        (9, "RUB", "4000", "USDT", 22),  # 22.5 micro-units -> 22
        (1, "USD", "0.5", "EUR", 2),
        (5, "USDT", "1", "USD", 0),  # 0.000005 USD -> 0.0005 cents -> 0
        (500_000, "USDT", "1", "USD", 50),
        (1_250_000, "USDT", "0.5", "RUB", 250),
    ],
)
def test_settlement_examples(amount: int, fiat: str, rate: str, settle: str, want: int) -> None:
    assert settlement_amount(amount, fiat, rate, settle) == want


def test_settlement_half_way_that_floats_get_wrong() -> None:
    # 0.29 RUB at rate 2 is 0.145 USD = 14.5 cents: a tie, so 14 (half-even); half-up gives 15
    assert settlement_amount(29, "RUB", "2", "USD") == 14
    assert settlement_amount(31, "RUB", "2", "USD") == 16
    # a rate that a float cannot hold: 1.1; 11 / 1.1 = 10 exactly, a float path gives 9.999...
    assert settlement_amount(11_00, "USD", "1.1", "EUR") == 10_00
    assert settlement_amount(33, "USD", "1.1", "EUR") == 30
    assert settlement_amount(3_30, "USD", "0.1", "EUR") == 33_00


bps = st.integers(0, 10_000)


@FAST
@given(st.integers(0, 10**15), bps)
def test_fee_and_reward_are_bounded_by_settlement(settle: int, b: int) -> None:
    fee = platform_fee(settle, b)
    reward = trader_reward(settle, b)
    assert 0 <= fee <= settle and 0 <= reward <= settle
    assert fee == round(Fraction(settle * b, 10_000))
    assert reward == round(Fraction(settle * b, 10_000))


@FAST
@given(st.integers(0, 10**15), bps, bps)
def test_reward_never_exceeds_fee_when_bps_do_not(settle: int, a: int, b: int) -> None:
    reward_bps, fee_bps = sorted((a, b))
    assert trader_reward(settle, reward_bps) <= platform_fee(settle, fee_bps)


@FAST
@given(st.integers(1, 10**12), currencies, rates, currencies, bps, bps)
def test_price_order(
    amount: int, fiat: str, rate: str, settle: str, fee_bps: int, reward_bps: int
) -> None:
    p = price_order(amount, fiat, rate, settle, fee_bps, reward_bps)
    s = settlement_by_hand(amount, fiat, rate, settle)
    assert p.settlement_amount == s
    assert p.platform_fee == round(Fraction(s * fee_bps, 10_000))
    assert p.trader_reward == round(Fraction(s * reward_bps, 10_000))
    assert p.payin_hold == s - p.trader_reward
    assert p.payout_credit == s + p.trader_reward
    assert p.client_payout_cost == s + p.platform_fee
    assert p.platform_net == p.platform_fee - p.trader_reward


def test_fee_half_even_examples() -> None:
    # 1_000_050 * 150 / 10000 = 15000.75 -> 15001; 100 * 150 / 10000 = 1.5 -> 2; 300 * 50/10000=1.5 -> 2
    assert platform_fee(1_000_050, 150) == 15_001
    assert platform_fee(100, 150) == 2
    assert platform_fee(300, 50) == 2
    assert platform_fee(500, 50) == 2  # 2.5 -> 2
    assert trader_reward(700, 50) == 4  # 3.5 -> 4


# ----------------------------------------------------------------------------- Money
def test_money_arithmetic_and_mismatch() -> None:
    a, b = Money(150, "USD"), Money(25, "USD")
    assert a + b == Money(175, "USD")
    assert a - b == Money(125, "USD")
    assert -a == Money(-150, "USD")
    assert str(Money(1_500_000, "USDT")) == "1.500000 USDT"
    assert str(Money(-1_234_567_890_123, "USDT")) == "-1,234,567.890123 USDT"
    with pytest.raises(CurrencyMismatch):
        _ = a + Money(1, "EUR")
    with pytest.raises(CurrencyMismatch):
        _ = a - Money(1, "RUB")
    assert issubclass(CurrencyMismatch, MoneyError)


@FAST
@given(st.integers(), st.integers(), currencies, currencies)
def test_money_add_property(x: int, y: int, c1: str, c2: str) -> None:
    if c1 == c2:
        assert (Money(x, c1) + Money(y, c2)).amount == x + y
    else:
        with pytest.raises(CurrencyMismatch):
            Money(x, c1) + Money(y, c2)


@pytest.mark.parametrize("bad", [1.5, "100", True, Decimal("1"), None])
def test_money_amount_must_be_int(bad: Any) -> None:
    with pytest.raises(MoneyError):
        Money(bad, "USD")


def test_money_unknown_currency() -> None:
    with pytest.raises(MoneyError):
        Money(1, "XXX")


# ------------------------------------------------------------------------------ rates
@pytest.mark.parametrize("bad", ["0", "0.000", "-1", "-0.5", "abc", "", "NaN", "Infinity", "1/2"])
def test_parse_rate_rejects(bad: str) -> None:
    with pytest.raises(MoneyError):
        parse_rate(bad)


@pytest.mark.parametrize("bad", [92.35, 92, Decimal("92.35"), None, b"92.35"])
def test_parse_rate_rejects_non_strings(bad: Any) -> None:
    with pytest.raises(MoneyError):
        parse_rate(bad)


@pytest.mark.parametrize(
    ("text", "want"), [("92.35", Fraction(9235, 100)), ("0.1", Fraction(1, 10)), ("3", Fraction(3))]
)
def test_parse_rate_is_exact(text: str, want: Fraction) -> None:
    assert parse_rate(text) == want


# -------------------------------------------------------------------- catalog JSON round trip
def roundtrip(p: Payload) -> Payload:
    return catalog.decode_payload(p.KIND, p.VERSION, p.to_json())


utc_times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@FAST
@given(
    as_of=utc_times,
    window=st.integers(1, 365),
    counts=st.tuples(*[st.integers(0, 10_000)] * 4),
    score=st.decimals(min_value=0, max_value=100, places=2, allow_nan=False),
)
def test_rating_payload_roundtrip(
    as_of: datetime, window: int, counts: tuple[int, ...], score: Decimal
) -> None:
    p = rating.RatingPublished(
        as_of=as_of,
        window_days=window,
        assignments=counts[0],
        completed=counts[1],
        on_time=counts[2],
        disputed=counts[3],
        score=score,
    )
    back = roundtrip(p)
    assert back == p
    assert back.score == score and back.as_of == as_of  # type: ignore[attr-defined]


@FAST
@given(
    conf=st.decimals(min_value=0, max_value=1, places=3, allow_nan=False),
    amount=st.none() | st.integers(0, 10**12),
    at=st.none() | utc_times,
    flags=st.lists(st.text(max_size=8), max_size=3),
)
def test_receipt_analyzed_roundtrip(
    conf: Decimal, amount: int | None, at: datetime | None, flags: list[str]
) -> None:
    p = receipt.ReceiptAnalyzed(
        extracted_amount=amount, extracted_paid_at=at, confidence=conf, flags=flags
    )
    assert roundtrip(p) == p


@pytest.mark.parametrize(
    ("text", "field", "want"),
    [
        ("0.8", "confidence", Decimal("0.8")),
        ("62.35", "score", Decimal("62.35")),
        ("55.00", "score", Decimal("55.00")),
    ],
)
def test_decimal_survives_exactly(text: str, field: str, want: Decimal) -> None:
    if field == "confidence":
        p: Payload = receipt.ReceiptAnalyzed(
            extracted_amount=None, extracted_paid_at=None, confidence=want, flags=[]
        )
    else:
        p = rating.RatingPublished(
            as_of=datetime(2026, 11, 1, tzinfo=UTC),
            window_days=1,
            assignments=0,
            completed=0,
            on_time=0,
            disputed=0,
            score=want,
        )
    assert f'"{field}":{text}' in p.to_json()
    back = roundtrip(p)
    assert getattr(back, field) == want
    if want != want.to_integral_value():
        # the digits themselves survive (no float on the way); trailing zeros of an integral
        # value are the same JSON number, so only the value is compared for 55.00
        assert str(getattr(back, field)) == str(want)


@FAST
@given(
    batch=st.integers(1, 10**9),
    posts=st.lists(
        st.tuples(
            st.text(min_size=1, max_size=6),
            st.text(min_size=1, max_size=6),
            st.integers(1, 10**12),
            currencies,
            st.text(max_size=10),
        ),
        max_size=4,
    ),
)
def test_batch_held_roundtrip_keeps_from_alias(batch: int, posts: list[tuple[Any, ...]]) -> None:
    p = ledger.BatchHeld.model_validate(
        {
            "batch_id": batch,
            "postings": [
                {"from": f, "to": t, "amount": a, "currency": c, "description": d}
                for f, t, a, c, d in posts
            ],
        }
    )
    text = p.to_json()
    assert all(
        set(x) == {"from", "to", "amount", "currency", "description"}
        for x in loads(text)["postings"]
    )
    assert roundtrip(p) == p


@FAST
@given(
    amount=st.integers(1, 2**63 - 1),  # an order amount is positive int64 (catalog 2, 3.3)
    cur=currencies,
    direction=st.sampled_from(["payin", "payout"]),
    expires=utc_times,
    text=st.text(max_size=12),
)
def test_order_created_roundtrips_and_v1_upcasts(
    amount: int, cur: str, direction: str, expires: datetime, text: str
) -> None:
    v1 = payment_order.OrderCreatedV1(
        client_id=text,
        direction=direction,
        amount=amount,
        currency=cur,
        client_ref=text,
        expires_at=expires,  # type: ignore[arg-type]
    )
    v2 = roundtrip(v1)
    assert isinstance(v2, payment_order.OrderCreated)
    assert (v2.money.amount, v2.money.currency, v2.channel, v2.expires_at) == (
        amount,
        cur,
        "card",
        expires,
    )
    assert roundtrip(v2) == v2


@FAST
@given(
    rate=rates,
    amounts=st.tuples(st.integers(0, 10**15), st.integers(0, 10**12), st.integers(0, 10**12)),
    at=utc_times,
    attempt=st.integers(1, 50),
)
def test_order_assigned_roundtrip(
    rate: str, amounts: tuple[int, int, int], at: datetime, attempt: int
) -> None:
    p = payment_order.OrderAssigned(
        trader_id="tr",
        attempt=attempt,
        rate=rate,
        settlement_currency="USDT",
        settlement_amount=amounts[0],
        platform_fee=amounts[1],
        trader_reward=amounts[2],
        accept_by=at,
    )
    back = roundtrip(p)
    assert back == p and back.rate == rate  # type: ignore[attr-defined]


def test_trader_registered_roundtrips() -> None:
    v1 = trader.TraderRegisteredV1(
        name="n",
        fiat_currency="UZS",
        settlement_currency="USDT",
        min_amount=1,
        max_amount=2,
        max_active_orders=3,
        reward_bps=4,
    )
    v2 = roundtrip(v1)
    assert v2 == catalog.upcast(v1)
    assert roundtrip(v2) == v2


def test_timestamps_are_rfc3339_utc() -> None:
    p = payment_order.OrderAccepted(
        trader_id="t", complete_by=datetime(2026, 11, 1, 10, 15, tzinfo=UTC)
    )
    assert p.to_json() == '{"trader_id":"t","complete_by":"2026-11-01T10:15:00Z"}'
    q = payment_order.OrderAccepted(
        trader_id="t", complete_by=datetime(2026, 11, 1, 10, 15, 0, 120, tzinfo=UTC) + timedelta(0)
    )
    assert '"2026-11-01T10:15:00.000120Z"' in q.to_json()
    assert roundtrip(q) == q


def test_dumps_and_loads_decimals_exactly() -> None:
    value = {"a": Decimal("0.1"), "b": [Decimal("62.35"), 3, None, True], "c": "x"}
    text = dumps(value)
    assert text == '{"a":0.1,"b":[62.35,3,null,true],"c":"x"}'
    assert loads(text) == value
    assert loads("0.30000000000000004") == Decimal("0.30000000000000004")
