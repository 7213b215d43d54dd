"""Closed forms against textbook values, against each other at their limits, and against the chain."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from workbench.sim.theory import (
    TAIL_TOLERANCE,
    erlang_a,
    erlang_a_distribution,
    erlang_b,
    erlang_c,
    mmc,
    mmc_wait_quantile,
    mmc_wait_survival,
)

# --- Erlang B ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("c", "a", "expected"),
    [
        (1, 1.0, 0.5),  # a / (1 + a)
        (2, 1.0, 0.2),  # (1/2) / (1 + 1 + 1/2)
        (10, 5.0, 0.018384),  # Erlang B tables (0.0183846, printed to six places)
        (5, 2.0, 0.036697),
        (20, 15.0, 0.045593),
    ],
)
def test_erlang_b_table_values(c: int, a: float, expected: float) -> None:
    assert erlang_b(c, a) == pytest.approx(expected, abs=1e-6)


def test_erlang_b_matches_direct_sum() -> None:
    for c in range(0, 30):
        for a in (0.1, 1.0, 7.5, 25.0):
            terms = [a**k / math.factorial(k) for k in range(c + 1)]
            assert erlang_b(c, a) == pytest.approx(terms[-1] / sum(terms), rel=1e-12)


def test_erlang_b_is_stable_for_huge_systems() -> None:
    # a^c / c! overflows a float long before this; the recursion does not care.
    b = erlang_b(5000, 5000.0)
    assert 0.0 < b < 0.02
    assert erlang_b(0, 3.0) == 1.0
    assert erlang_b(4, 0.0) == 0.0


def test_erlang_b_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        erlang_b(-1, 1.0)
    with pytest.raises(ValueError):
        erlang_b(3, -0.5)
    with pytest.raises(TypeError):
        erlang_b(2.5, 1.0)  # type: ignore[arg-type]


# --- Erlang C and M/M/c -----------------------------------------------------------------------


def test_mm3_textbook_example() -> None:
    m = mmc(0.2, 0.1, 3)
    assert m.rho == pytest.approx(2 / 3)
    assert m.p_wait == pytest.approx(4 / 9, rel=1e-12)
    assert m.wq == pytest.approx(40 / 9, rel=1e-12)
    assert m.lq == pytest.approx(0.2 * 40 / 9, rel=1e-12)
    assert m.w == pytest.approx(40 / 9 + 10, rel=1e-12)
    assert m.l == pytest.approx(0.2 * (40 / 9 + 10), rel=1e-12)
    assert erlang_c(3, 2.0) == pytest.approx(0.4444444444, rel=1e-9)


@pytest.mark.parametrize(("lam", "mu"), [(0.5, 1.0), (0.9, 1.0), (3.0, 4.0), (0.01, 2.0)])
def test_mm1_closed_forms(lam: float, mu: float) -> None:
    rho = lam / mu
    m = mmc(lam, mu, 1)
    assert m.p_wait == pytest.approx(rho, rel=1e-12)
    assert m.wq == pytest.approx(rho / (mu - lam), rel=1e-12)
    assert m.l == pytest.approx(rho / (1 - rho), rel=1e-12)


def test_erlang_c_is_at_least_erlang_b() -> None:
    for c in (1, 2, 5, 50):
        for frac in (0.1, 0.5, 0.9, 0.999):
            a = frac * c
            assert erlang_c(c, a) >= erlang_b(c, a)
            assert 0.0 <= erlang_c(c, a) <= 1.0


def test_erlang_c_rejects_unstable_load_clearly() -> None:
    with pytest.raises(ValueError, match="a < c"):
        erlang_c(3, 3.0)
    with pytest.raises(ValueError, match="a < c"):
        mmc(1.0, 0.25, 4)
    with pytest.raises(ValueError):
        mmc(-1.0, 1.0, 2)
    with pytest.raises(ValueError):
        erlang_c(0, 0.0)


def test_wait_survival_and_quantile() -> None:
    lam, mu, c = 0.2, 0.1, 3
    assert mmc_wait_survival(lam, mu, c, 0.0) == pytest.approx(4 / 9)
    assert mmc_wait_survival(lam, mu, c, 10.0) == pytest.approx(4 / 9 * math.exp(-1.0))
    # The atom at zero: P(Wq = 0) = 5/9.
    assert mmc_wait_quantile(lam, mu, c, 0.5) == 0.0
    assert mmc_wait_quantile(lam, mu, c, 5 / 9) == pytest.approx(0.0, abs=1e-12)
    assert mmc_wait_quantile(lam, mu, c, 1.0) == math.inf
    for q in (0.6, 0.9, 0.95, 0.99):
        t = mmc_wait_quantile(lam, mu, c, q)
        assert 1.0 - mmc_wait_survival(lam, mu, c, t) == pytest.approx(q, rel=1e-12)
    # The mean of the distribution is Wq: ∫ P(Wq > t) dt = C / (cμ − λ).
    assert 4 / 9 / (c * mu - lam) == pytest.approx(mmc(lam, mu, c).wq)
    with pytest.raises(ValueError):
        mmc_wait_quantile(lam, mu, c, 1.5)


# --- Erlang A ---------------------------------------------------------------------------------


@given(
    lam=st.floats(0.05, 50.0),
    mu=st.floats(0.1, 5.0),
    theta=st.floats(0.001, 20.0),
    c=st.integers(1, 40),
)
@settings(max_examples=150, deadline=None)
def test_erlang_a_distribution_is_a_distribution(
    lam: float, mu: float, theta: float, c: int
) -> None:
    p = erlang_a_distribution(lam, mu, theta, c)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (p >= 0).all()
    assert p.size > c
    # Detailed balance between every pair of neighbouring states.
    n = np.arange(1, p.size)
    deaths = np.minimum(n, c) * mu + np.maximum(n - c, 0) * theta
    np.testing.assert_allclose(lam * p[:-1], deaths * p[1:], rtol=1e-9, atol=1e-300)
    # The dropped tail is negligible: the next term is below the tolerance.
    next_ratio = lam / (min(p.size, c) * mu + max(p.size - c, 0) * theta)
    assert p[-1] * next_ratio < TAIL_TOLERANCE


@given(
    lam=st.floats(0.05, 50.0),
    mu=st.floats(0.1, 5.0),
    theta=st.floats(0.001, 20.0),
    c=st.integers(1, 40),
)
@settings(max_examples=150, deadline=None)
def test_erlang_a_is_internally_consistent(lam: float, mu: float, theta: float, c: int) -> None:
    r = erlang_a(lam, mu, theta, c)
    assert 0.0 <= r.p_abandon <= r.p_wait <= 1.0
    # Little's law on the abandoning flow.
    assert r.wq == pytest.approx(r.p_abandon / theta, rel=1e-9, abs=1e-300)
    # Flow balance: what is not abandoned is served, by c servers at rate μ each.
    assert r.occupancy == pytest.approx(lam * (1 - r.p_abandon) / (c * mu), rel=1e-9, abs=1e-15)
    # Mean wait of all arrivals splits into served and abandoning parts.
    if r.p_abandon > 1e-12:
        split = (1 - r.p_abandon) * r.wq_served + r.p_abandon * r.wq_abandoned
        assert split == pytest.approx(r.wq, rel=1e-9)
        assert r.wq_abandoned >= 0.0
    assert r.wq_served >= 0.0


def test_erlang_a_tagged_customer_wait_agrees_with_littles_law() -> None:
    # Following one arrival that finds j waiting, its mean wait (to service or to abandonment)
    # is (j + 1) / (cμ + (j + 1)θ). Averaged over what arrivals see, that must equal Lq / λ,
    # an identity of the balance equations that exercises the tagged-customer argument.
    for lam, mu, theta, c in [(5.0, 1.0, 0.5, 4), (12.0, 1.0, 0.2, 10), (0.9, 1.0, 2.0, 1)]:
        p = erlang_a_distribution(lam, mu, theta, c)
        j = np.arange(p.size - c)
        tagged = float((p[c:] * (j + 1) / (c * mu + (j + 1) * theta)).sum())
        assert tagged == pytest.approx(erlang_a(lam, mu, theta, c).wq, rel=1e-10)


def test_erlang_a_with_theta_equal_mu_is_infinite_server() -> None:
    # If patience runs out at the service rate, every customer leaves at rate μ whether or not
    # it is being served: the number in system is M/M/∞, Poisson with mean a.
    lam, mu, c = 7.0, 1.5, 4
    p = erlang_a_distribution(lam, mu, mu, c)
    poisson = stats.poisson.pmf(np.arange(p.size), lam / mu)
    np.testing.assert_allclose(p, poisson, rtol=1e-10, atol=1e-17)
    r = erlang_a(lam, mu, mu, c)
    assert r.p_wait == pytest.approx(stats.poisson.sf(c - 1, lam / mu), rel=1e-10)


@pytest.mark.parametrize(("lam", "mu", "c"), [(0.2, 0.1, 3), (0.9, 1.0, 1), (45.0, 1.0, 50)])
def test_erlang_a_reduces_to_erlang_c_as_theta_vanishes(lam: float, mu: float, c: int) -> None:
    exact = mmc(lam, mu, c)
    zero = erlang_a(lam, mu, 0.0, c)
    assert zero.p_wait == pytest.approx(exact.p_wait, rel=1e-11)
    assert zero.wq == pytest.approx(exact.wq, rel=1e-11)
    assert zero.wq_served == pytest.approx(exact.wq, rel=1e-11)
    assert zero.p_abandon == 0.0
    assert math.isnan(zero.wq_abandoned)
    previous = math.inf
    for theta in (1e-2, 1e-4, 1e-6, 1e-8):
        r = erlang_a(lam, mu, theta, c)
        gap = abs(r.p_wait - exact.p_wait)
        assert gap < previous
        previous = gap
        assert r.wq <= exact.wq  # impatience only shortens the queue
    assert r.p_wait == pytest.approx(exact.p_wait, rel=1e-5)
    assert r.wq == pytest.approx(exact.wq, rel=1e-5)


@pytest.mark.parametrize(("lam", "mu", "c"), [(0.2, 0.1, 3), (8.0, 1.0, 5), (20.0, 1.0, 25)])
def test_erlang_a_approaches_erlang_b_as_theta_grows(lam: float, mu: float, c: int) -> None:
    thetas = [0.01, 0.1, 1.0, 10.0, 100.0, 1e4, 1e7]
    results = [erlang_a(lam, mu, theta, c) for theta in thetas]
    abandon = [r.p_abandon for r in results]
    waits = [r.wq for r in results]
    assert abandon == sorted(abandon)  # more impatience, more abandonment
    assert waits == sorted(waits, reverse=True)
    blocking = erlang_b(c, lam / mu)
    assert abandon[-1] <= blocking
    assert abandon[-1] == pytest.approx(blocking, rel=1e-5)
    assert results[-1].p_wait == pytest.approx(blocking, rel=1e-5)


def test_erlang_a_handles_overload() -> None:
    # 1000 Erlangs on 900 servers: the fluid limit says 1 − c/a = 10 % abandon and the queue
    # settles where θ·Lq balances the excess λ − cμ.
    r = erlang_a(1000.0, 1.0, 0.1, 900)
    assert r.p_abandon == pytest.approx(0.1, rel=1e-3)
    assert r.lq == pytest.approx(1000.0, rel=1e-3)
    assert r.occupancy == pytest.approx(1.0, abs=1e-6)
    assert r.truncation > 900


def test_erlang_a_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unstable"):
        erlang_a(2.0, 1.0, 0.0, 2)
    with pytest.raises(ValueError):
        erlang_a(1.0, 1.0, -0.1, 2)
    with pytest.raises(ValueError):
        erlang_a(1.0, 0.0, 0.1, 2)
    with pytest.raises(ValueError):
        erlang_a(1.0, 1.0, 0.1, 0)
