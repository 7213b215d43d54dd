"""Replication statistics: hand-checked values, coverage by simulation, and invariants by hypothesis."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from workbench.sim.stats import gini, lorenz, mean_ci, paired_difference, percentile, welch_warmup

counts = st.lists(st.integers(0, 10**6), min_size=1, max_size=60)
reals = st.lists(
    st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=60
)
samples = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=2, max_size=40
)

# --- mean_ci and paired_difference ------------------------------------------------------------


def test_mean_ci_hand_checked() -> None:
    ci = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    t = sps.t.ppf(0.975, 4)
    assert ci.n == 5
    assert ci.mean == 3.0
    assert ci.std == pytest.approx(math.sqrt(2.5))
    assert ci.half_width == pytest.approx(t * math.sqrt(2.5) / math.sqrt(5))
    assert (ci.low, ci.high) == pytest.approx(
        sps.t.interval(0.95, 4, loc=3.0, scale=sps.sem([1, 2, 3, 4, 5]))
    )
    wider = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0], level=0.99)
    assert wider.half_width > ci.half_width


def test_mean_ci_single_value_is_infinitely_wide() -> None:
    ci = mean_ci([7.5])
    assert ci.n == 1
    assert ci.mean == 7.5
    assert ci.half_width == math.inf
    assert ci.low == -math.inf and ci.high == math.inf


def test_mean_ci_constant_values_have_zero_width() -> None:
    ci = mean_ci(np.full(10, 4.25))
    assert ci.half_width == 0.0
    assert ci.low == ci.high == 4.25


def test_mean_ci_accepts_arrays_series_and_generators() -> None:
    expected = mean_ci([1.0, 4.0, 9.0])
    assert mean_ci(np.array([1.0, 4.0, 9.0])) == expected
    assert mean_ci(pl.Series([1.0, 4.0, 9.0])) == expected
    assert mean_ci(x * x for x in (1.0, 2.0, 3.0)) == expected


def test_mean_ci_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        mean_ci([])
    with pytest.raises(ValueError, match="nan"):
        mean_ci([1.0, math.nan])
    with pytest.raises(ValueError, match="level"):
        mean_ci([1.0, 2.0], level=1.0)


def test_mean_ci_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    true_mean = 3.0
    trials = 2000
    covered = 0
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        ci = mean_ci(rng.normal(true_mean, 2.0, size=10))
        covered += ci.low <= true_mean <= ci.high
    assert 0.93 <= covered / trials <= 0.97


@given(
    pairs=st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=1, max_size=40)
)
@settings(max_examples=200, deadline=None)
def test_paired_difference_is_mean_ci_of_differences(pairs: list[tuple[float, float]]) -> None:
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    assert paired_difference(a, b) == mean_ci([x - y for x, y in pairs])
    assert paired_difference(a, b, level=0.9) == mean_ci([x - y for x, y in pairs], level=0.9)


def test_paired_difference_cancels_common_noise() -> None:
    rng = np.random.default_rng(7)
    shared = rng.normal(0.0, 10.0, size=30)
    a = 5.0 + shared + rng.normal(0.0, 0.1, size=30)
    b = 4.0 + shared + rng.normal(0.0, 0.1, size=30)
    paired = paired_difference(a, b)
    assert paired.low > 0.0  # the one-unit difference is detected
    assert paired.half_width < mean_ci(a).half_width / 20


def test_paired_difference_names_both_lengths() -> None:
    with pytest.raises(ValueError, match=r"len\(a\) = 3 and len\(b\) = 2"):
        paired_difference([1.0, 2.0, 3.0], [1.0, 2.0])


@given(samples)
@settings(max_examples=200, deadline=None)
def test_mean_ci_is_centred_and_ordered(values: list[float]) -> None:
    ci = mean_ci(values)
    assert ci.low <= ci.mean <= ci.high
    assert ci.high - ci.mean == pytest.approx(ci.mean - ci.low, rel=1e-9, abs=1e-6)


# --- Welch ------------------------------------------------------------------------------------


def test_welch_curve_by_hand() -> None:
    result = welch_warmup([[0.0, 2.0, 4.0, 6.0, 8.0], [2.0, 4.0, 6.0, 8.0, 10.0]], window=1)
    assert result.curve.columns == ["bin", "mean", "smoothed"]
    assert result.curve["bin"].to_list() == [0, 1, 2, 3, 4]
    assert result.curve["mean"].to_list() == [1.0, 3.0, 5.0, 7.0, 9.0]
    # Bin 0 averages itself only; bins 1..3 average three bins; bin 4 has no centred window.
    assert result.curve["smoothed"].to_list() == [1.0, 3.0, 5.0, 7.0, None]
    assert result.replications == 2 and result.window == 1


def test_welch_shrunken_window_near_the_start() -> None:
    means = [10.0, 0.0, 4.0, 1.0, 3.0, 2.0, 2.0, 2.0, 2.0]
    result = welch_warmup(np.array([means]), window=2)
    smoothed = result.curve["smoothed"].to_list()
    assert smoothed[0] == 10.0
    assert smoothed[1] == pytest.approx((10.0 + 0.0 + 4.0) / 3)
    assert smoothed[2] == pytest.approx(sum(means[0:5]) / 5)
    assert smoothed[6] == pytest.approx(sum(means[4:9]) / 5)
    assert smoothed[7:] == [None, None]


def test_welch_finds_the_end_of_a_decaying_transient() -> None:
    rng = np.random.default_rng(2024)
    replications, bins = 20, 200
    t = np.arange(bins)
    data = 10.0 + 10.0 * np.exp(-t / 10.0) + rng.normal(0.0, 1.0, size=(replications, bins))
    result = welch_warmup(data, window=5)
    assert result.level == pytest.approx(10.0, abs=0.1)
    assert result.tolerance == pytest.approx(1.96 / math.sqrt(replications), rel=0.1)
    # The transient 10·exp(−t/10) falls below the ≈0.44 band at t ≈ 31.
    assert result.warmup_bin is not None
    assert 20 <= result.warmup_bin <= 45


def test_welch_stationary_output_needs_no_warmup() -> None:
    rng = np.random.default_rng(99)
    result = welch_warmup(5.0 + rng.normal(0.0, 1.0, size=(20, 100)), window=5)
    assert result.warmup_bin is not None
    assert result.warmup_bin <= 3


def test_welch_reports_an_unsettled_curve() -> None:
    ramp = np.tile(np.arange(50, dtype=float), (5, 1))  # still climbing at the end
    assert welch_warmup(ramp, window=3).warmup_bin is None


def test_welch_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"lengths \[2, 3\]"):
        welch_warmup([[1.0, 2.0, 3.0], [1.0, 2.0]], window=0)
    with pytest.raises(ValueError, match="window"):
        welch_warmup([[1.0, 2.0, 3.0]], window=2)
    with pytest.raises(ValueError, match="window"):
        welch_warmup([[1.0, 2.0, 3.0]], window=-1)
    with pytest.raises(ValueError):
        welch_warmup([], window=0)


# --- Gini and Lorenz --------------------------------------------------------------------------


def test_gini_hand_checked() -> None:
    assert gini([5, 5, 5, 5]) == 0.0
    assert gini([0, 0, 0]) == 0.0
    assert gini([7]) == 0.0
    assert gini([0, 0, 0, 1]) == 0.75  # (n − 1) / n: one holds everything
    assert gini([1, 2, 3, 4, 5]) == float(Fraction(4, 15))
    assert gini([0.5, 1.5]) == 0.25


def test_gini_matches_the_mean_absolute_difference() -> None:
    rng = np.random.default_rng(3)
    x = rng.exponential(2.0, size=300)
    mad = np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size**2 * x.mean())
    assert gini(x) == pytest.approx(mad, rel=1e-12)


def test_gini_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        gini([1, -1])
    with pytest.raises(ValueError, match="empty"):
        gini([])
    with pytest.raises(ValueError, match="finite"):
        gini([1.0, math.inf])
    with pytest.raises(ValueError, match="non-negative"):
        lorenz([3, -2])


@given(counts)
@settings(max_examples=300, deadline=None)
def test_gini_is_in_unit_interval(values: list[int]) -> None:
    g = gini(values)
    assert 0.0 <= g < 1.0
    assert g <= (len(values) - 1) / len(values)


@given(reals)
@settings(max_examples=300, deadline=None)
def test_gini_is_in_unit_interval_for_floats(values: list[float]) -> None:
    assert 0.0 <= gini(values) < 1.0


@given(st.data(), counts)
@settings(max_examples=200, deadline=None)
def test_gini_is_invariant_under_permutation(data: st.DataObject, values: list[int]) -> None:
    shuffled = data.draw(st.permutations(values))
    assert gini(shuffled) == gini(values)


@given(counts, st.integers(1, 10**6))
@settings(max_examples=200, deadline=None)
def test_gini_is_invariant_under_integer_scaling(values: list[int], k: int) -> None:
    assert gini([k * v for v in values]) == gini(values)


@given(reals, st.floats(1e-3, 1e3))
@settings(max_examples=200, deadline=None)
def test_gini_is_invariant_under_float_scaling(values: list[float], k: float) -> None:
    assert gini([k * v for v in values]) == pytest.approx(gini(values), rel=1e-9, abs=1e-12)


def test_lorenz_hand_checked() -> None:
    curve = lorenz([3, 1, 0, 4])
    assert curve.columns == ["share_of_population", "share_of_total"]
    assert curve["share_of_population"].to_list() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curve["share_of_total"].to_list() == [0.0, 0.0, 0.125, 0.5, 1.0]
    assert lorenz([0, 0])["share_of_total"].to_list() == [0.0, 0.5, 1.0]


@given(st.one_of(counts, reals))
@settings(max_examples=300, deadline=None)
def test_lorenz_is_monotone_from_origin_to_one_one(values: list[float]) -> None:
    curve = lorenz(values)
    pop = curve["share_of_population"].to_numpy()
    share = curve["share_of_total"].to_numpy()
    assert curve.height == len(values) + 1
    assert (pop[0], share[0]) == (0.0, 0.0)
    assert (pop[-1], share[-1]) == (1.0, 1.0)
    assert (np.diff(pop) > 0).all()
    assert (np.diff(share) >= 0).all()
    assert (share <= pop + 1e-12).all()  # never above the line of equality
    # Gini is twice the area between the diagonal and the curve.
    area = float(((share[1:] + share[:-1]) / 2 * np.diff(pop)).sum())
    assert 1.0 - 2.0 * area == pytest.approx(gini(values), abs=1e-9)


# --- percentile -------------------------------------------------------------------------------


def test_percentile_hand_checked() -> None:
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentile(values, 0) == 15.0
    assert percentile(values, 100) == 50.0
    assert percentile(values, 50) == 35.0
    assert percentile(values, 40) == pytest.approx(29.0)  # h = 1.6: 20 + 0.6 · 15
    assert percentile([4.0], 95) == 4.0


@given(samples, st.floats(0.0, 100.0))
@settings(max_examples=300, deadline=None)
def test_percentile_is_numpys_linear_method(values: list[float], q: float) -> None:
    expected = float(np.percentile(values, q, method="linear"))
    assert percentile(values, q) == pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        percentile([1.0, 2.0], 101)
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
