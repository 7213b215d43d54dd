"""Honest ranking of policies: multiple comparisons with a stated error, and selection of the best.

Comparing seven policies on six metrics is 126 pairwise intervals; at 95 % each, about six of
them "exclude zero" by chance alone. Two tools answer the product team's real questions:

* **Which differences are real?** :func:`pairwise` tests every pair of policies on every metric
  with a paired t-test over replications (common random numbers pair replication *r* of two
  policies) and adjusts the p-values by **Holm's step-down procedure** (Holm 1979): the chance
  of declaring *any* difference in the whole table when there is none (the family-wise error)
  is at most ``alpha``, whatever the dependence between the tests. The intervals beside them
  are Bonferroni's (each at level ``1 - alpha/m``), so all ``m`` of them cover their true
  differences together with probability at least ``1 - alpha``. :func:`best_groups` reads off,
  per metric, the best policy and those not shown to differ from it.
* **Which policy should we pick, and how many replications does that take?** An
  indifference-zone ranking-and-selection procedure: with probability at least ``pstar`` it
  selects the truly best policy whenever the best is better than the second by at least
  ``delta`` (when it is not, anything within ``delta`` of the best is as good). Two two-stage
  procedures, both from a first stage of ``n0`` replications per policy:

  - :func:`rinott_sizes`, **Rinott (1978)**, for policies simulated on *independent* streams:
    ``N_i = max(n0, ceil((h S_i / delta)^2))`` with Rinott's constant ``h`` (:func:`rinott_h`,
    computed by numerical integration and tested against Bechhofer, Santner and Goldsman's
    table 2.13);
  - :func:`crn_sizes`, the **Bonferroni procedure for common random numbers** (Nelson and
    Matejcik 1995; Kim and Nelson 2006, section 3.2): Rinott's ``h`` assumes independent
    systems, which common random numbers deliberately break, so the variance of each *paired
    difference* ``S_il^2`` is used with ``t = t_{1 - (1 - pstar)/(k - 1), n0 - 1}`` and every
    policy runs ``N = max(n0, max_{i != l} ceil((t S_il / delta)^2))`` replications.

  Then the policy with the best overall mean is selected. The sentence
  :meth:`Selection.sentence` says exactly that: "pick X; P(correct selection) >= 0.95 when the
  best is better by >= delta; N replications needed".

Everything here is pure (numbers in, numbers out); :mod:`.selection` runs the simulations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from typing import Any

import numpy as np
import polars as pl

#: For each metric a policy can be ranked on: +1 if more is better, -1 if less is better.
#: (``utilisation`` and the counts are consequences of demand, not goals: not ranked.)
BETTER: dict[str, int] = {
    "fill_rate": 1,
    "expiry_rate": -1,
    "cancelled_share": -1,
    "accept_p50": -1,
    "accept_p95": -1,
    "complete_p50": -1,
    "complete_p95": -1,
    "gini_orders": -1,
    "gini_earnings": -1,
    "hold_mean": -1,
    "hold_p95": -1,
    "revenue": 1,
}

#: The metrics :func:`pairwise` tests by default: the service level, the waits, fairness, money.
RANKED: tuple[str, ...] = (
    "fill_rate",
    "accept_p50",
    "complete_p95",
    "gini_orders",
    "gini_earnings",
    "revenue",
)


def direction(metric: str) -> int:
    """+1 when more of ``metric`` is better, -1 when less is; an error for unranked metrics."""
    try:
        return BETTER[metric]
    except KeyError:
        raise ValueError(
            f"{metric!r} has no better direction; rankable metrics: {', '.join(BETTER)}"
        ) from None


# ------------------------------------------------------------------------- multiple comparisons
def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    With the p-values sorted p_(1) <= ... <= p_(m), the adjusted value of the j-th is
    ``max_{i <= j} min(1, (m - i + 1) p_(i))``; rejecting every hypothesis whose adjusted
    p-value is at most alpha keeps the family-wise error at most alpha (Holm 1979)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out


def paired_t(differences: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """Mean, standard deviation (ddof 1) and two-sided p-value of the paired t-test that the
    mean difference is zero. Differences that are all equal have no noise: p is 1 when they are
    all zero and 0 otherwise (common random numbers make identical runs exactly equal)."""
    d = np.asarray(differences, dtype=float)
    n = d.size
    if n < 2:
        raise ValueError(f"a paired test needs at least 2 replications, got {n}")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(mean)) or not math.isfinite(sd):  # float noise of equal runs
        return mean, 0.0, 1.0 if mean == 0.0 else 0.0
    from scipy import stats as sps

    t = mean / (sd / math.sqrt(n))
    return mean, sd, float(2 * sps.t.sf(abs(t), n - 1))


PAIRWISE_SCHEMA: dict[str, type[pl.DataType]] = {
    "metric": pl.String,
    "policy": pl.String,
    "other": pl.String,
    "n": pl.Int64,
    "difference": pl.Float64,
    "low": pl.Float64,
    "high": pl.Float64,
    "p_value": pl.Float64,
    "p_holm": pl.Float64,
    "significant": pl.Boolean,
    "family": pl.Int64,
    "alpha": pl.Float64,
}


def _paired_values(
    replications: pl.DataFrame, metric: str, a: str, b: str
) -> tuple[np.ndarray, np.ndarray]:
    left = replications.filter(pl.col("policy") == a).select("replication", metric)
    right = replications.filter(pl.col("policy") == b).select("replication", metric)
    both = left.join(right, on="replication", suffix="__b").drop_nulls()
    x = both[metric].cast(pl.Float64).to_numpy()
    y = both[f"{metric}__b"].cast(pl.Float64).to_numpy()
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def pairwise(
    replications: pl.DataFrame,
    metrics: Sequence[str] = RANKED,
    *,
    alpha: float = 0.05,
) -> pl.DataFrame:
    """Every pair of policies on every metric: the mean paired difference (``policy − other``,
    replications paired by index), its Bonferroni interval at level ``1 − alpha/m``, the
    paired t-test's p-value and Holm's adjusted p-value over the whole family of ``m`` =
    pairs × metrics tests; ``significant`` is ``p_holm <= alpha``. The family-wise error of
    the whole table, the chance of any false "significant", is at most ``alpha``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    policies = [str(p) for p in replications["policy"].unique(maintain_order=True).to_list()]
    if len(policies) < 2:
        raise ValueError("pairwise comparisons need at least two policies")
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        for a, b in combinations(policies, 2):
            x, y = _paired_values(replications, metric, a, b)
            row: dict[str, Any] = {"metric": metric, "policy": a, "other": b, "n": len(x)}
            if len(x) >= 2:
                mean, sd, p = paired_t(x - y)
                row.update(difference=mean, p_value=p, _sd=sd)
            rows.append(row)
    tested = [r for r in rows if "p_value" in r]
    m = len(tested)
    from scipy import stats as sps

    for r, adj in zip(tested, holm([r["p_value"] for r in tested]), strict=True):
        t = float(sps.t.ppf(1 - alpha / (2 * m), r["n"] - 1))
        half = t * r.pop("_sd") / math.sqrt(r["n"])
        r.update(
            p_holm=adj,
            significant=adj <= alpha,
            low=r["difference"] - half,
            high=r["difference"] + half,
        )
    for r in rows:
        r.update(family=m, alpha=alpha)
    return pl.DataFrame(rows, schema=PAIRWISE_SCHEMA, orient="row")


BEST_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "metric": pl.String,
    "best": pl.String,
    "mean": pl.Float64,
    "tied": pl.List(pl.String),
    "clear": pl.Boolean,
}


def best_groups(replications: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """Per metric of ``pairs`` (from :func:`pairwise`): the policy with the best mean (by
    :data:`BETTER`), the policies whose difference from it is not significant after Holm's
    correction (``tied``, best first), and ``clear`` when none is tied with it."""
    out = []
    for metric in pairs["metric"].unique(maintain_order=True).to_list():
        sign = direction(metric)
        means = (
            replications.group_by("policy", maintain_order=True)
            .agg(pl.col(metric).cast(pl.Float64).mean())
            .drop_nulls()
        )
        if means.is_empty():
            continue
        ordered = sorted(means.iter_rows(), key=lambda r: -sign * r[1])
        best, value = ordered[0]
        sub = pairs.filter(
            (pl.col("metric") == metric) & ((pl.col("policy") == best) | (pl.col("other") == best))
        )
        tied = []
        for r in sub.iter_rows(named=True):
            if not r["significant"]:
                tied.append(r["other"] if r["policy"] == best else r["policy"])
        tied_sorted = [p for p, _ in ordered if p in tied]
        out.append(
            {
                "metric": metric,
                "best": best,
                "mean": value,
                "tied": tied_sorted,
                "clear": not tied_sorted,
            }
        )
    return pl.DataFrame(out, schema=BEST_SCHEMA, orient="row")


# ------------------------------------------------------------------------ ranking and selection
@lru_cache(maxsize=256)
def rinott_h(k: int, n0: int, pstar: float = 0.95, nodes: int = 160) -> float:
    """Rinott's constant ``h`` for ``k`` systems, first-stage size ``n0`` and confidence
    ``pstar``: the root of

        ∫₀^∞ [ ∫₀^∞ Φ( h / √(ν (1/x + 1/y)) ) f_ν(x) dx ]^(k−1) f_ν(y) dy = pstar,

    ν = n0 − 1, f_ν the χ²_ν density (Bechhofer, Santner and Goldsman 1995, p. 61). Both
    integrals are Gauss–Legendre quadrature in the χ² probability scale (x = F_ν⁻¹(u)), which
    stays accurate for any ν; the root is found by Brent's method."""
    if k < 2:
        raise ValueError(f"selection needs at least 2 systems, got {k}")
    if n0 < 2:
        raise ValueError(f"the first stage needs at least 2 replications, got {n0}")
    if not 0 < pstar < 1 or pstar <= 1 / k:
        raise ValueError(f"pstar must lie in (1/k, 1), got {pstar}")
    from scipy import optimize, special, stats

    nu = n0 - 1
    u, w = np.polynomial.legendre.leggauss(nodes)
    u, w = (u + 1) / 2, w / 2
    x = stats.chi2.ppf(u, nu)
    inv = 1.0 / x
    scale = np.sqrt(nu * (inv[:, None] + inv[None, :]))  # [y, x]

    def coverage(h: float) -> float:
        inner = special.ndtr(h / scale) @ w  # over x, for each y
        return float(np.sum(w * inner ** (k - 1)))

    return float(optimize.brentq(lambda h: coverage(h) - pstar, 0.0, 50.0, xtol=1e-10))


def crn_t(k: int, n0: int, pstar: float = 0.95) -> float:
    """The Bonferroni constant of the two-stage procedure under common random numbers:
    ``t_{1 − (1 − pstar)/(k − 1), n0 − 1}`` (Nelson and Matejcik 1995)."""
    if k < 2 or n0 < 2 or not 0 < pstar < 1:
        raise ValueError(f"need k >= 2, n0 >= 2 and 0 < pstar < 1; got {k}, {n0}, {pstar}")
    from scipy import stats

    return float(stats.t.ppf(1 - (1 - pstar) / (k - 1), n0 - 1))


def rinott_sizes(stds: Sequence[float], n0: int, delta: float, h: float) -> list[int]:
    """Rinott's total replications per system: ``max(n0, ceil((h S_i / delta)^2))``."""
    if delta <= 0:
        raise ValueError(f"the indifference zone delta must be positive, got {delta}")
    return [max(n0, math.ceil((h * s / delta) ** 2 - 1e-9)) for s in stds]


def crn_sizes(first: np.ndarray, delta: float, t: float) -> int:
    """The common total of the CRN procedure from a first stage ``first`` (rows: replications,
    columns: systems): ``max(n0, max_{i != l} ceil((t S_il / delta)^2))``, ``S_il`` the standard
    deviation of the paired differences of systems i and l."""
    if delta <= 0:
        raise ValueError(f"the indifference zone delta must be positive, got {delta}")
    n0: int
    k: int
    n0, k = first.shape
    worst = 0.0
    for i, j in combinations(range(k), 2):
        worst = max(worst, float(np.std(first[:, i] - first[:, j], ddof=1)))
    return max(n0, math.ceil((t * worst / delta) ** 2 - 1e-9))


@dataclass(frozen=True)
class Selection:
    """The outcome of a two-stage selection of the best policy on one metric."""

    metric: str
    delta: float
    pstar: float
    procedure: str  # "rinott" (independent streams) or "crn-bonferroni"
    n0: int
    constant: float  # Rinott's h or the Bonferroni t
    #: Replications each policy needs in total (the first stage included).
    needed: Mapping[str, int]
    #: Replications each policy actually ran (less than needed when capped).
    ran: Mapping[str, int]
    #: Overall mean of each policy's replications run.
    means: Mapping[str, float]
    best: str
    first_stage_std: Mapping[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every policy ran the replications the procedure asked for."""
        return all(self.ran[p] >= n for p, n in self.needed.items())

    @property
    def replications_needed(self) -> int:
        return max(self.needed.values())

    def sentence(self, unit: str = "") -> str:
        """The decision in one sentence, or what is missing for it."""
        zone = f"{self.delta:g}{unit}"
        n = self.replications_needed
        where = "per policy" if len(set(self.needed.values())) == 1 else "for the noisiest policy"
        if not self.complete:
            ran = min(self.ran.values())
            return (
                f"no selection yet on {self.metric}: P(correct selection) >= {self.pstar:g} "
                f"when the best is better by >= {zone} needs {n} replications {where} "
                f"({self.procedure}, first stage {self.n0}); only {ran} run"
            )
        return (
            f"pick {self.best} on {self.metric}: P(correct selection) >= {self.pstar:g} when "
            f"the best is better by >= {zone}; {n} replications needed {where} "
            f"({self.procedure}, first stage {self.n0}, constant {self.constant:.3f})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "delta": self.delta,
            "pstar": self.pstar,
            "procedure": self.procedure,
            "n0": self.n0,
            "constant": self.constant,
            "needed": dict(self.needed),
            "ran": dict(self.ran),
            "means": dict(self.means),
            "best": self.best,
            "complete": self.complete,
            "sentence": self.sentence(),
        }


def pick(means: Mapping[str, float], metric: str) -> str:
    """The policy with the best mean on ``metric`` (ties: the first given)."""
    sign = direction(metric)
    return max(means, key=lambda p: sign * means[p])


def required(
    first: Mapping[str, Sequence[float]],
    metric: str,
    delta: float,
    *,
    pstar: float = 0.95,
    common: bool = True,
) -> tuple[str, float, dict[str, int], dict[str, float]]:
    """From a first stage (policy → its n0 values of ``metric``, replication-aligned when
    ``common``): the procedure's name, its constant, the total replications each policy needs,
    and each first-stage standard deviation."""
    direction(metric)
    names = list(first)
    lengths = {len(v) for v in first.values()}
    if len(names) < 2 or len(lengths) != 1:
        raise ValueError("selection needs at least two policies with equal first stages")
    n0 = lengths.pop()
    values = np.array([list(first[p]) for p in names], dtype=float).T  # [replication, policy]
    if not np.isfinite(values).all():
        raise ValueError(f"{metric} has missing values in the first stage; it cannot be ranked")
    stds = {p: float(values[:, i].std(ddof=1)) for i, p in enumerate(names)}
    if common:
        t = crn_t(len(names), n0, pstar)
        n = crn_sizes(values, delta, t)
        return "crn-bonferroni", t, dict.fromkeys(names, n), stds
    h = rinott_h(len(names), n0, pstar)
    sizes = rinott_sizes([stds[p] for p in names], n0, delta, h)
    return "rinott", h, dict(zip(names, sizes, strict=True)), stds
