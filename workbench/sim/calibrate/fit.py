"""Fitting one quantity, and the report row that says how well it fits.

Why apart: every part of the calibration (traders, demand, the rest of the platform in
:mod:`.platform`) fits its quantities the same way and reports them in the same columns, so the
lognormal-or-empirical choice (:func:`fit_dist`), the per-trader pooling and the report schema
are defined once, here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import polars as pl
from scipy import stats as sps

from ..config import Dist

#: Observations of a quantity a trader needs for its own fit (fewer: the pooled fit).
MIN_N = 30
#: A lognormal is kept when the KS test does not reject it at this level ...
KS_P = 0.01
#: ... or when its KS statistic is at most this (a misfit too small to matter).
KS_D = 0.03
#: Points kept of an empirical distribution (its quantiles at (i + 0.5) / QUANTILES).
QUANTILES = 200

Row = dict[str, Any]

REPORT_SCHEMA: dict[str, Any] = {
    "trader": pl.String,
    "quantity": pl.String,
    "n": pl.Int64,
    "kind": pl.String,
    "param_a": pl.Float64,
    "param_b": pl.Float64,
    "ks": pl.Float64,
    "ks_p": pl.Float64,
    "ks_lognormal": pl.Float64,
    "test_p": pl.Float64,
    "obs_mean": pl.Float64,
    "fit_mean": pl.Float64,
    "obs_p50": pl.Float64,
    "fit_p50": pl.Float64,
    "obs_p95": pl.Float64,
    "fit_p95": pl.Float64,
}
#: Report columns, in order. ``param_a``/``param_b``: lognormal median and sigma, the share
#: observed and the share used (they differ for a censoring-corrected ignore), or a level.
REPORT_COLUMNS = tuple(REPORT_SCHEMA)


# --------------------------------------------------------------------------- fitting
def _cdf(d: Dist, x: np.ndarray) -> np.ndarray:
    if d.kind == "lognormal":
        return np.asarray(sps.lognorm.cdf(x, d.b, scale=d.a))
    if d.kind == "empirical":
        v = np.asarray(d.values)
        return np.searchsorted(v, x, side="right") / len(v)
    if d.kind == "const":
        return (x >= d.a).astype(float)
    if d.kind == "exp":
        return np.asarray(sps.expon.cdf(x, scale=d.a))
    return np.asarray(sps.uniform.cdf(x, d.a, d.b - d.a))


def _quantiles(x: np.ndarray) -> tuple[float, ...]:
    if x.size <= QUANTILES:
        return tuple(float(v) for v in np.sort(x))
    return tuple(float(v) for v in np.quantile(x, (np.arange(QUANTILES) + 0.5) / QUANTILES))


def _row(trader: str, quantity: str, n: int, kind: str, **values: float | None) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(REPORT_COLUMNS)
    row.update(trader=trader, quantity=quantity, n=n, kind=kind)
    for k, v in values.items():
        row[k] = None if v is None or not math.isfinite(v) else float(v)
    return row


def fit_dist(
    values: Iterable[float] | np.ndarray, trader: str, quantity: str, family: str | None = None
) -> tuple[Dist, Row]:
    """Fit a lognormal by the log-moments, or take the empirical distribution when the KS test
    rejects the lognormal (see :data:`KS_P`, :data:`KS_D`); ``family`` (``"lognormal"`` or
    ``"empirical"``) imposes the choice instead. Returns the distribution and its report row.
    Needs at least one finite value."""
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError(f"no values to fit {quantity} of {trader}")
    ks_ln = ln = None
    if x.size >= 2 and (x > 0).all():
        lx = np.log(x)
        sigma = float(lx.std(ddof=1))
        if sigma > 0:
            ln = Dist.lognormal(float(math.exp(lx.mean())), sigma)
            ks_ln = sps.kstest(x, "lognorm", args=(sigma, 0, ln.a))
    good = ks_ln is not None and (ks_ln.pvalue >= KS_P or ks_ln.statistic <= KS_D)
    if ln is not None and ks_ln is not None and (good if family is None else family == "lognormal"):
        dist, ks = ln, ks_ln
    else:
        dist = (
            Dist.const(float(x[0])) if np.ptp(x) == 0 else Dist("empirical", values=_quantiles(x))
        )
        # scipy-stubs type a callable cdf as float -> float, but kstest calls it once with the
        # whole sorted sample (an array) and wants the array of its values back
        ks = sps.kstest(x, lambda v: _cdf(dist, np.asarray(v)))  # type: ignore[arg-type, return-value]
    row = _row(
        trader,
        quantity,
        int(x.size),
        dist.kind,
        param_a=dist.a if dist.kind == "lognormal" else None,
        param_b=dist.b if dist.kind == "lognormal" else None,
        ks=float(ks.statistic),
        ks_p=float(ks.pvalue),
        ks_lognormal=None if ks_ln is None else float(ks_ln.statistic),
        obs_mean=float(x.mean()),
        fit_mean=dist.mean(),
        obs_p50=float(np.quantile(x, 0.5)),
        fit_p50=dist.sample(0.5),
        obs_p95=float(np.quantile(x, 0.95)),
        fit_p95=dist.sample(0.95),
    )
    return dist, row


def _groups(df: pl.DataFrame, col: str) -> dict[str, np.ndarray]:
    """``col`` per trader, as arrays (traders sorted)."""
    out: dict[str, np.ndarray] = {}
    if df.is_empty():
        return out
    for (tid,), g in sorted(df.group_by("trader_id"), key=lambda kv: str(kv[0][0])):
        out[str(tid)] = g[col].drop_nulls().to_numpy().astype(float)
    return out


def _fit_by_trader(
    by: dict[str, np.ndarray],
    quantity: str,
    min_n: int,
    rows: list[Row],
    *,
    pooled_only: bool = False,
) -> tuple[Dist | None, dict[str, Dist]]:
    """The pooled fit, and each trader's own fit where it has ``min_n`` values. The family
    (lognormal or empirical) is chosen on the pooled data, where the KS test has the most power,
    and kept for every trader: a trader's few dozen values cannot reject a lognormal that the
    pool shows to be wrong."""
    allx = np.concatenate([v for v in by.values()]) if by else np.array([])
    allx = allx[np.isfinite(allx)]
    if allx.size == 0:
        rows.append(_row("pooled", quantity, 0, "default"))
        return None, {}
    pooled, row = fit_dist(allx, "pooled", quantity)
    rows.append(row)
    own: dict[str, Dist] = {}
    if not pooled_only:
        for tid, x in by.items():
            if x.size >= min_n:
                family = "lognormal" if pooled.kind == "lognormal" else "empirical"
                own[tid], r = fit_dist(x, tid, quantity, family)
                rows.append(r)
    return pooled, own


def _shares(
    counts: dict[str, tuple[int, int]], quantity: str, min_n: int, rows: list[Row]
) -> tuple[float | None, dict[str, float]]:
    """A share pooled and per trader (``counts``: trader → (hits, trials)). Per-trader rows test
    the trader against the pooled share (two-sided binomial); the pooled row tests homogeneity
    over the traders with their own share (chi-square)."""
    k = sum(h for h, _ in counts.values())
    n = sum(t for _, t in counts.values())
    if n == 0:
        rows.append(_row("pooled", quantity, 0, "default"))
        return None, {}
    p = k / n
    own = {tid: h / t for tid, (h, t) in counts.items() if t >= min_n}
    test_p = None
    table = np.array([[h, t - h] for tid, (h, t) in counts.items() if tid in own])
    if len(own) >= 2 and (table.sum(axis=0) > 0).all():
        test_p = float(sps.chi2_contingency(table)[1])
    rows.append(
        _row(
            "pooled",
            quantity,
            n,
            "share",
            param_a=p,
            param_b=p,
            obs_mean=p,
            fit_mean=p,
            test_p=test_p,
        )
    )
    for tid, q in own.items():
        h, t = counts[tid]
        rows.append(
            _row(
                tid,
                quantity,
                t,
                "share",
                param_a=q,
                param_b=q,
                obs_mean=q,
                fit_mean=q,
                test_p=float(sps.binomtest(h, t, p).pvalue) if 0 < p < 1 else None,
            )
        )
    return p, own
