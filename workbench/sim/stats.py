"""Statistics over independent simulation replications.

A simulation run is one random sample; a claim about the model ("policy B waits less than
policy A") needs several independent replications and a confidence interval, not one number.
This module holds the few estimators the experiments use, each pure and small enough to check
by hand: Student-t intervals for a mean and for a paired difference (common random numbers make
replication i of two policies comparable), Welch's graphical warm-up procedure, the Gini
coefficient and Lorenz curve of how orders are spread over traders, and one percentile with a
stated method. Results are frozen dataclasses or Polars frames.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import polars as pl

#: The normal quantile the Welch warm-up band uses (a two-sided 95 % band).
WELCH_Z: float = 1.96


@dataclass(frozen=True, slots=True)
class MeanCI:
    """A two-sided Student-t confidence interval for a mean.

    With a single observation there is no variance estimate: ``half_width`` is infinite and the
    interval is the whole line, which says honestly that one replication proves nothing.
    """

    n: int
    mean: float
    #: Sample standard deviation (ddof = 1); nan when n = 1.
    std: float
    half_width: float
    low: float
    high: float
    level: float


def _as_float_array(values: Iterable[float], name: str) -> npt.NDArray[np.float64]:
    array = np.asarray(values if hasattr(values, "__array__") else list(values), dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains nan or infinite values")
    return array


def _check_level(level: float) -> None:
    if not (0.0 < level < 1.0):
        raise ValueError(f"confidence level must lie strictly between 0 and 1, got {level!r}")


def mean_ci(values: Iterable[float], level: float = 0.95) -> MeanCI:
    """Confidence interval mean ± t_{(1+level)/2, n−1} · s / √n over replication outputs.

    Valid when the values are independent (one per replication) and their mean is roughly
    normal, which replication means of a stable simulation are. Uses ``scipy.stats.t.ppf``.
    """
    _check_level(level)
    x = _as_float_array(values, "values")
    n = int(x.size)
    mean = float(x.mean())
    if n == 1:
        return MeanCI(
            n=1,
            mean=mean,
            std=math.nan,
            half_width=math.inf,
            low=-math.inf,
            high=math.inf,
            level=level,
        )
    std = float(x.std(ddof=1))
    from scipy import stats as sps  # here, not at import: it costs seconds in each Dask worker

    half = float(sps.t.ppf((1.0 + level) / 2.0, n - 1)) * std / math.sqrt(n)
    return MeanCI(
        n=n, mean=mean, std=std, half_width=half, low=mean - half, high=mean + half, level=level
    )


def paired_difference(
    a: Sequence[float] | npt.NDArray[np.float64],
    b: Sequence[float] | npt.NDArray[np.float64],
    level: float = 0.95,
) -> MeanCI:
    """Confidence interval for the mean of a_i − b_i, pairing the two by replication index.

    This is the comparison to use when replication i of both configurations ran on the same
    random-number streams (common random numbers): the shared noise cancels in the difference,
    and the interval is usually far narrower than two separate intervals would suggest.
    An interval that excludes 0 says the configurations differ at that level.
    """
    x = _as_float_array(a, "a")
    y = _as_float_array(b, "b")
    if x.size != y.size:
        raise ValueError(
            f"paired samples must have equal lengths (one value per replication); "
            f"got len(a) = {x.size} and len(b) = {y.size}"
        )
    return mean_ci(x - y, level=level)


@dataclass(frozen=True, slots=True)
class WelchWarmup:
    """Result of Welch's procedure.

    ``curve`` has one row per time bin: ``bin`` (0-based), ``mean`` (the average over
    replications) and ``smoothed`` (the moving average, null for the last ``window`` bins where
    the centred window does not fit). ``warmup_bin`` is the suggested first bin to keep, or
    None if the smoothed curve has not settled by its last defined bin.
    """

    curve: pl.DataFrame
    warmup_bin: int | None
    #: Steady-state level: mean of the bin means over the second half of the bins.
    level: float
    #: Half width of the band around ``level`` the smoothed curve must stay inside.
    tolerance: float
    window: int
    replications: int


def welch_warmup(
    series_by_replication: Sequence[Sequence[float]] | npt.NDArray[np.float64], window: int
) -> WelchWarmup:
    """Welch's moving-average procedure for choosing a warm-up period.

    ``series_by_replication`` holds one equal-length series per replication (for example the
    mean wait of orders arriving in each 10-minute bin). Following Welch (1983) as presented in
    Law & Kelton, *Simulation Modeling and Analysis*:

    1. average across replications bin by bin, Ȳ_i;
    2. smooth with a centred moving average of half width w = ``window`` (2w + 1 bins):
       Ȳ_i(w) = mean(Ȳ_{i−w} … Ȳ_{i+w}) once i ≥ w, and mean(Ȳ_0 … Ȳ_{2i}) for the first
       bins where the full window does not fit (a symmetric, shrunken window); the last w bins
       have no centred window and are left null.

    Law & Kelton choose the warm-up by eye. As a documented, mechanical suggestion this takes
    the steady-state level L as the mean of Ȳ_i over the second half of the bins and the
    standard error s as the root-mean-square over those bins of (cross-replication standard
    deviation of the bin) / √R — with one replication, the standard deviation of Ȳ_i over the
    second half instead. The suggested warm-up is the first bin k from which every defined
    smoothed value stays within L ± 1.96·s. It assumes the second half is past the transient;
    look at the curve before trusting the number.
    """
    if isinstance(series_by_replication, np.ndarray):
        data = series_by_replication.astype(float)
    else:
        rows = [np.asarray(row, dtype=float) for row in series_by_replication]
        lengths = sorted({row.size for row in rows})
        if len(lengths) > 1:
            raise ValueError(
                f"every replication needs the same number of bins; got lengths {lengths}"
            )
        data = np.vstack(rows) if rows else np.empty((0, 0))
    if data.ndim != 2:
        raise ValueError(
            "series_by_replication must be a non-empty list of equal-length series "
            f"(one per replication); got an array of shape {data.shape}"
        )
    replications, bins = data.shape
    if replications == 0 or bins == 0:
        raise ValueError(f"need at least one replication with at least one bin; got {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError("series_by_replication contains nan or infinite values")
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 0:
        raise ValueError(f"window must be a non-negative integer, got {window!r}")
    window = int(window)
    if 2 * window + 1 > bins:
        raise ValueError(f"window {window} needs at least {2 * window + 1} bins; have {bins}")

    means = data.mean(axis=0)
    prefix = np.concatenate(([0.0], np.cumsum(means)))
    smoothed = np.full(bins, np.nan)
    for i in range(bins - window):
        half = min(i, window)
        smoothed[i] = (prefix[i + half + 1] - prefix[i - half]) / (2 * half + 1)

    tail = slice(bins // 2, bins)
    level = float(means[tail].mean())
    if replications > 1:
        se = math.sqrt(float((data[:, tail].var(axis=0, ddof=1) / replications).mean()))
    else:
        tail_means = means[tail]
        se = float(tail_means.std(ddof=1)) if tail_means.size > 1 else 0.0
    tolerance = max(WELCH_Z * se, 1e-12 * max(1.0, abs(level)))

    defined = bins - window
    outside = np.flatnonzero(np.abs(smoothed[:defined] - level) > tolerance)
    if outside.size == 0:
        warmup: int | None = 0
    elif outside[-1] == defined - 1:
        warmup = None
    else:
        warmup = int(outside[-1]) + 1

    curve = pl.DataFrame(
        {
            "bin": np.arange(bins, dtype=np.int64),
            "mean": means,
            "smoothed": smoothed,
        }
    ).with_columns(pl.col("smoothed").fill_nan(None))
    return WelchWarmup(
        curve=curve,
        warmup_bin=warmup,
        level=level,
        tolerance=tolerance,
        window=window,
        replications=replications,
    )


def _exact_non_negative(values: Iterable[float]) -> list[int | Fraction]:
    """Values as exact numbers: ints stay ints, floats become the Fraction they exactly are."""
    if isinstance(values, pl.Series):
        raw: list[object] = values.to_list()
    elif isinstance(values, np.ndarray):
        raw = values.tolist()
    else:
        raw = list(values)
    exact: list[int | Fraction] = []
    for v in raw:
        if isinstance(v, numbers.Integral):
            x: int | Fraction = int(v)
        elif isinstance(v, numbers.Rational):
            x = Fraction(int(v.numerator), int(v.denominator))
        elif isinstance(v, float | numbers.Real):
            f = float(v)
            if not math.isfinite(f):
                raise ValueError(f"values must be finite, got {v!r}")
            x = Fraction(f)
        else:
            raise TypeError(f"values must be real numbers, got {v!r}")
        if x < 0:
            raise ValueError(f"values must be non-negative, got {v!r}")
        exact.append(x)
    if not exact:
        raise ValueError("values is empty")
    return exact


def gini(values: Iterable[float]) -> float:
    """Gini coefficient of non-negative values, e.g. orders handled per trader.

    G = Σ_i Σ_j |x_i − x_j| / (2 n² x̄), the mean absolute difference over twice the mean,
    evaluated on the sorted values as Σ_i (2i − n − 1)·x_(i) / (n·Σx) (i = 1..n). It is 0 when
    all values are equal (and, by convention, when all are zero) and at most (n − 1)/n < 1,
    reached when one value holds everything. The arithmetic is exact — integers stay integers
    and a float enters as the binary fraction it is — and only the result is rounded, so
    permuting the values or scaling them by an integer gives bit-identical answers.
    """
    xs = sorted(_exact_non_negative(values))
    n = len(xs)
    total = sum(xs)
    if total == 0:
        return 0.0
    weighted = sum((2 * i - n - 1) * x for i, x in enumerate(xs, start=1))
    return float(Fraction(weighted) / (n * total))


def lorenz(values: Iterable[float]) -> pl.DataFrame:
    """Lorenz curve of non-negative values: n + 1 points from (0, 0) to (1, 1).

    Row k is (k / n, share of the total held by the k smallest values). Computed exactly and
    rounded once per point, so the shares never decrease and the last one is exactly 1. When
    every value is zero the total has no shares; all values are equal, so the curve is the line
    of equality. Twice the area between the diagonal and the curve (trapezoid rule) is ``gini``.
    """
    xs = sorted(_exact_non_negative(values))
    n = len(xs)
    total = sum(xs)
    population = [k / n for k in range(n + 1)]
    if total == 0:
        shares = list(population)
    else:
        shares = [0.0]
        running: int | Fraction = 0
        for x in xs:
            running += x
            shares.append(float(Fraction(running) / total))
    return pl.DataFrame(
        {"share_of_population": population, "share_of_total": shares},
        schema={"share_of_population": pl.Float64, "share_of_total": pl.Float64},
    )


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0 ≤ q ≤ 100) by linear interpolation between order statistics.

    Method: Hyndman & Fan's type 7, numpy's default ``method="linear"``: with the values
    sorted as x_0 ≤ … ≤ x_{n−1}, h = (n − 1)·q / 100 and the result is
    x_⌊h⌋ + (h − ⌊h⌋)·(x_⌊h⌋+1 − x_⌊h⌋). q = 0 is the minimum and q = 100 the maximum.
    """
    if not (math.isfinite(q) and 0.0 <= q <= 100.0):
        raise ValueError(f"q must be a percentage in [0, 100], got {q!r}")
    x = np.sort(_as_float_array(values, "values"))
    h = (x.size - 1) * q / 100.0
    lo = math.floor(h)
    if lo >= x.size - 1:
        return float(x[-1])
    return float(x[lo] + (h - lo) * (x[lo + 1] - x[lo]))
