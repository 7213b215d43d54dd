"""Rating (catalog 3.7): the score formula in exact arithmetic and the window ``(as_of - d, as_of]``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.domain.rating import DEFAULT_SCORE, RatingCounts, RatingHistory, score


def score_by_hand(a: int, c: int, o: int, d: int) -> Decimal:
    """The catalog's formula with Fractions, rounded half-even to 2 places via ``round``."""
    value = 100 * (
        Fraction(6, 10) * Fraction(c + 1, a + 2)
        + Fraction(3, 10) * Fraction(o + 1, c + 2)
        + Fraction(1, 10) * (1 - Fraction(d, c + 1))
    )
    hundredths = round(value * 100)  # round() of a Fraction is half-even
    return Decimal(hundredths) / 100


def test_zero_counts_score_55() -> None:
    got = score(RatingCounts(0, 0, 0, 0))
    assert got == Decimal("55.00")
    assert str(got) == "55.00"
    assert Decimal("55.00") == DEFAULT_SCORE


@pytest.mark.parametrize(
    ("counts", "want"),
    [
        # 100*(0.6*2/3 + 0.3*2/3 + 0.1*1) = 70
        ((1, 1, 1, 0), Decimal("70.00")),
        # 100*(0.6*1/3 + 0.3*1/2 + 0.1) = 20 + 15 + 10 = 45
        ((1, 0, 0, 0), Decimal("45.00")),
        # 100*(0.6*11/12 + 0.3*10/12 + 0.1*(1 - 1/11)) = 55 + 25 + 9.0909.. = 89.09
        ((10, 10, 9, 1), Decimal("89.09")),
    ],
)
def test_score_examples(counts: tuple[int, int, int, int], want: Decimal) -> None:
    assert score(RatingCounts(*counts)) == want


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 500).flatmap(
        lambda a: st.tuples(st.just(a), st.integers(0, a)).flatmap(
            lambda ac: st.tuples(
                st.just(ac[0]), st.just(ac[1]), st.integers(0, ac[1]), st.integers(0, ac[1] + 3)
            )
        )
    )
)
def test_score_matches_fraction_computation(counts: tuple[int, int, int, int]) -> None:
    got = score(RatingCounts(*counts))
    assert got == score_by_hand(*counts)
    assert got.as_tuple().exponent == -2  # always two places


@settings(max_examples=100, deadline=None)
@given(st.tuples(*[st.integers(0, 10**6)] * 4))
def test_score_any_counts_matches(counts: tuple[int, int, int, int]) -> None:
    assert score(RatingCounts(*counts)) == score_by_hand(*counts)


def test_score_rounds_half_even() -> None:
    # find counts whose exact score sits on a half-hundredth and check the even neighbour wins
    ties = []
    for a in range(0, 60):
        for c in range(0, a + 1):
            for o in range(0, c + 1):
                v = 100 * (
                    Fraction(6, 10) * Fraction(c + 1, a + 2)
                    + Fraction(3, 10) * Fraction(o + 1, c + 2)
                    + Fraction(1, 10)
                )
                if (v * 100).denominator == 2:
                    ties.append((a, c, o, v))
    assert ties, "expected some exact half-way scores"
    for a, c, o, v in ties[:50]:
        lower = (v * 100).numerator // 2
        even = lower if lower % 2 == 0 else lower + 1
        assert score(RatingCounts(a, c, o, 0)) == Decimal(even) / 100


# ------------------------------------------------------------------------------- window
AS_OF = datetime(2026, 11, 8, 0, 0, tzinfo=UTC)


def test_window_is_open_at_start_closed_at_as_of() -> None:
    h = RatingHistory()
    start = AS_OF - timedelta(days=7)
    h.assigned("t", start)  # exactly at the start: out
    h.assigned("t", start + timedelta(microseconds=1))  # in
    h.assigned("t", AS_OF)  # exactly at as_of: in
    h.assigned("t", AS_OF + timedelta(microseconds=1))  # after: out
    h.completed("t", AS_OF, complete_by=AS_OF)  # on time (at complete_by)
    h.completed("t", AS_OF - timedelta(hours=1), complete_by=AS_OF - timedelta(hours=2))  # late
    h.completed("t", start, complete_by=start)  # at the start: out
    h.completed(
        "t", AS_OF - timedelta(hours=3), complete_by=None
    )  # no acceptance known: not on time
    h.disputed("t", start)
    h.disputed("t", AS_OF)
    h.assigned("other", AS_OF)
    assert h.counts("t", AS_OF, 7) == RatingCounts(
        assignments=2, completed=3, on_time=1, disputed=1
    )
    assert h.counts("nobody", AS_OF, 7) == RatingCounts(0, 0, 0, 0)


def test_window_counts_out_of_order_inserts() -> None:
    h = RatingHistory()
    times = [AS_OF - timedelta(hours=h_) for h_ in (5, 1, 30, 2, 170, 168)]
    for t in times:
        h.assigned("t", t)
    # (as_of - 7d, as_of]: 168h is exactly the start (out), 170h out; 5, 1, 30, 2 in
    assert h.counts("t", AS_OF, 7).assignments == 4
    assert h.counts("t", AS_OF, 1).assignments == 3
    assert h.assignments["t"] == sorted(times)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(-10 * 24 * 60, 2 * 24 * 60), max_size=30),
    st.integers(1, 9),
)
def test_window_property(offsets_min: list[int], window_days: int) -> None:
    h = RatingHistory()
    times = [AS_OF + timedelta(minutes=m) for m in offsets_min]
    for t in times:
        h.assigned("t", t)
    start = AS_OF - timedelta(days=window_days)
    assert h.counts("t", AS_OF, window_days).assignments == sum(
        1 for t in times if start < t <= AS_OF
    )
