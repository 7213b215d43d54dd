"""The demand side of a calibration: orders per day and their hourly profile, currency mix,
payin share and amounts, the rates quoted, and the platform's rating cadence.

Why apart: these are fitted from the orders and the assignments pooled over all traders, and
checked as a whole (the time-rescaled gaps of a non-homogeneous Poisson process).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import polars as pl
from scipy import stats as sps

from ..config import Arrivals, Rates
from .fit import Row, _row, fit_dist
from .read import DAY, _lower_median_rates


def _cumulative(hourly: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The fitted intensity integrated from the period start (a midnight) to ``t`` seconds."""
    cum = np.concatenate([[0.0], np.cumsum(hourly)])
    day, rem = np.divmod(t, DAY)
    k = np.minimum((rem // 3600).astype(int), 23)
    out: np.ndarray = day * cum[-1] + cum[k] + hourly[k] * (rem - 3600 * k) / 3600
    return out


def _arrivals(orders: pl.DataFrame, start: float, end: float, rows: list[Row]) -> Arrivals:
    days = (end - start) / DAY
    t = orders["created"].to_numpy() - start
    n = t.size
    hour = ((t % DAY) // 3600).astype(int)
    hourly = np.bincount(hour, minlength=24)[:24] / days
    per_day = np.bincount((t // DAY).astype(int), minlength=round(days))
    disp = float(per_day.var(ddof=1) / per_day.mean()) if per_day.size > 1 else None
    rows.append(
        _row(
            "pooled",
            "orders_per_day",
            int(per_day.size),
            "poisson",
            param_a=n / days,
            param_b=disp,
            obs_mean=float(per_day.mean()),
            fit_mean=n / days,
            obs_p50=float(np.median(per_day)),
            test_p=None
            if disp is None
            else float(sps.chi2.sf(disp * (per_day.size - 1), per_day.size - 1)),
        )
    )
    # Time rescaling: under the fitted profile the rescaled gaps are Exp(1).
    gaps = np.diff(_cumulative(hourly, np.sort(t)))
    if gaps.size >= 2:
        ks = sps.kstest(gaps, "expon")
        rows.append(
            _row(
                "pooled",
                "arrivals",
                int(gaps.size),
                "nhpp",
                ks=float(ks.statistic),
                ks_p=float(ks.pvalue),
                obs_mean=float(gaps.mean()),
                fit_mean=1.0,
                obs_p50=float(np.median(gaps)),
                fit_p50=math.log(2),
                obs_p95=float(np.quantile(gaps, 0.95)),
                fit_p95=-math.log(0.05),
            )
        )
    for h in range(24):
        rows.append(
            _row(
                "pooled",
                f"hourly {h:02d}",
                int((hour == h).sum()),
                "rate",
                param_a=float(hourly[h]),
                obs_mean=float(hourly[h]),
                fit_mean=float(hourly[h]),
            )
        )
    mix = orders.group_by("currency").len().sort(["len", "currency"], descending=[True, False])
    currencies = tuple((r["currency"], r["len"] / n) for r in mix.iter_rows(named=True))
    for cur, share in currencies:
        rows.append(
            _row(
                "pooled",
                f"currency {cur}",
                n,
                "share",
                param_a=share,
                param_b=share,
                obs_mean=share,
                fit_mean=share,
            )
        )
    payin = float((orders["direction"] == "payin").mean())  # type: ignore[arg-type]
    rows.append(
        _row(
            "pooled",
            "payin_share",
            n,
            "share",
            param_a=payin,
            param_b=payin,
            obs_mean=payin,
            fit_mean=payin,
        )
    )
    amounts = []
    for cur, _ in currencies:
        x = orders.filter(pl.col("currency") == cur)["amount"].to_numpy().astype(float)
        d, row = fit_dist(x, "pooled", f"amount {cur}")
        rows.append(row)
        amounts.append((cur, d))
    return Arrivals(
        orders_per_day=n / days,
        hourly=tuple(float(h) for h in hourly),
        currencies=currencies,
        payin_share=payin,
        amounts=tuple(amounts),
    )


def _rates(attempts: pl.DataFrame, arrivals: Arrivals, rows: list[Row]) -> Rates:
    a = attempts.filter(pl.col("rate").is_not_null())
    med = _lower_median_rates(a, ["currency"])
    typical = {r["currency"]: r["rate"] for r in med.iter_rows(named=True)}
    steps = []
    for cur in sorted(
        typical,
        key=lambda c: (
            [x for x, _ in arrivals.currencies].index(c) if c in dict(arrivals.currencies) else 99
        ),
    ):
        v = (
            a.filter(pl.col("currency") == cur)["rate"]
            .cast(pl.Float64, strict=False)
            .drop_nulls()
            .to_numpy()
        )
        r = float(typical[cur])
        rows.append(
            _row(
                "pooled",
                f"rate {cur}",
                int(v.size),
                "typical",
                param_a=r,
                obs_mean=float(v.mean()),
                fit_mean=r,
                obs_p50=float(np.median(v)),
                fit_p50=r,
                obs_p95=float(np.quantile(v, 0.95)),
                fit_p95=r,
            )
        )
        steps.append((cur, ((0.0, typical[cur]),)))
    return Rates(tuple(steps))


def _rating_cadence(ratings: pl.DataFrame) -> tuple[float, int]:
    if ratings.height < 2:
        return 12 * 3600.0, 1
    as_of = np.unique(ratings["as_of"].to_numpy())
    every = float(np.median(np.diff(as_of))) if as_of.size >= 2 else 12 * 3600.0
    window = Counter(ratings["window_days"].to_list()).most_common(1)[0][0]
    return every, int(window)
