"""Calibrate the simulator from a replayed database, and say how well it fits.

``calibrate(db)`` reads a replay database (read-only) and fits what a :class:`~.config.SimConfig`
needs:

* **Trader behaviour** (:class:`~.config.Behaviour`), per trader when the trader has at least
  :data:`MIN_N` observations of the quantity, pooled over all traders otherwise. A *decision* is
  an attempt whose response is known: declined, expired (the trader let the accept window pass:
  an ignore) or accepted; attempts cancelled or superseded before any response are censored and
  left out. ``decline`` and ``ignore`` are shares of decisions; ``accept_delay`` is assigned →
  accepted, ``decline_delay`` assigned → declined, ``complete`` accepted → completed for a payin
  and accepted → the attempt's first receipt upload for a payout; ``low_confidence`` is the share
  of analysed receipts with confidence below 0.8. The analyser and the reviewers are the
  platform's, not the trader's, so ``analyse_delay`` (upload → analysed) and ``review``
  (review start, or the analysis if later, → approval by a reviewer) are always pooled.
* **Delays and amounts** are fitted by a lognormal from the log-moments; the fit is kept when the
  Kolmogorov–Smirnov test does not reject it (p ≥ :data:`KS_P`) or its statistic is negligible
  anyway (D ≤ :data:`KS_D`, for samples so large that any misfit is significant); otherwise the
  distribution is the empirical one (up to :data:`QUANTILES` quantiles, sampled by inverse CDF).
  An accepted delay is only ever seen below the accept window, so when a lognormal puts mass
  beyond it the ignore share is corrected for the accepts the simulator would turn into expiries.
* **Traders** as registered now (currency, limits, cap, reward), the deposit level top-ups bring
  the available deposit to (the median of the available amount right after each top-up), and
  their online time: intervals where the trader was online and not blocked, from the presence
  and blocking events. A trace uses the real intervals; a synthetic run tiles a daily pattern (the
  quarter-hours the trader was most often online, as many as its average online time fills).
* **Clients**: fee as now, and the highest level a top-up brought the ledger balance to.
* **Demand**: orders per day, the hourly profile (orders per clock hour, UTC, per day: the 24
  weights sum to the orders per day), currency mix, payin share, amounts per currency, rates
  (from the assignments: hourly step series for a trace, the median for a synthetic run), the
  platform's deadlines and rating cadence as observed.

``Calibration.report`` is a Polars frame with one row per fitted quantity: who (a trader id or
``"pooled"``), what, ``n``, the parameters, the Kolmogorov–Smirnov statistic of the distribution
used against the data (and of the lognormal, to show why it was or was not used), for shares a
test against the pooled share (per trader) or of homogeneity over traders (pooled), and observed
vs fitted mean, p50 and p95. ``Calibration.summary()`` says the essentials in a few lines.

``Calibration.config()`` builds a synthetic configuration from the fitted profile;
``Calibration.trace_config()`` replays the real orders of the last days (real ids, times, amounts,
clients) with the real shifts and rates: the "last week's orders under another policy" study.
``backtest(db)`` runs that trace under the production policy and sets simulated against real.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
from scipy import stats as sps

from ..domain.receipt import REVIEW_CONFIDENCE
from ..domain.scheduler import Deadlines
from ..progress import no_progress_bar
from ..replay import store
from .calibrate_platform import platform_fit
from .config import (
    NEVER,
    Arrivals,
    Behaviour,
    ClientSpec,
    Dist,
    OrderSpec,
    Rates,
    SimConfig,
    TraderSpec,
)

#: Observations of a quantity a trader needs for its own fit (fewer: the pooled fit).
MIN_N = 30
#: The catalog's review threshold: a receipt analysed below this confidence goes to review.
#: The catalog's review threshold (section 4), defined once in the domain.
LOW_CONFIDENCE = float(REVIEW_CONFIDENCE)
#: A lognormal is kept when the KS test does not reject it at this level ...
KS_P = 0.01
#: ... or when its KS statistic is at most this (a misfit too small to matter).
KS_D = 0.03
#: Points kept of an empirical distribution (its quantiles at (i + 0.5) / QUANTILES).
QUANTILES = 200
#: Resolution of a trader's daily online pattern (seconds).
BIN = 900.0
#: The backtest compares orders created at least this long before the end of the trace.
SETTLE = 2 * 3600.0
DAY = 86_400.0
_US = 1_000_000
NEVER_ONLINE: tuple[tuple[float, float], ...] = ((NEVER, NEVER),)

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
        ks = sps.kstest(x, lambda v: _cdf(dist, np.asarray(v)))
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


# --------------------------------------------------------------------------- reading
def _read(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    frame: pl.DataFrame = con.sql(sql).pl()
    return frame


_ORDERS = """
SELECT order_id, client_id, direction, amount, currency,
       epoch_us(created_at) AS created_us, epoch_us(created_at) / 1e6 AS created,
       (epoch_us(expires_at) - epoch_us(created_at)) / 1e6 AS expiry_window,
       status, cancel_reason
FROM payment_orders
WHERE created_at IS NOT NULL AND amount IS NOT NULL AND currency IS NOT NULL
  AND direction IS NOT NULL AND client_id IS NOT NULL
ORDER BY created_us, order_id
"""

_ATTEMPTS = """
SELECT a.order_id, a.attempt, a.trader_id, a.rate, o.currency, o.direction, a.outcome,
       epoch_us(a.assigned_at) / 1e6 AS assigned,
       epoch_us(a.accepted_at) / 1e6 AS accepted,
       epoch_us(a.ended_at) / 1e6 AS ended,
       (epoch_us(a.accept_by) - epoch_us(a.assigned_at)) / 1e6 AS accept_window,
       (epoch_us(a.complete_by) - epoch_us(a.accepted_at)) / 1e6 AS complete_window,
       (SELECT min(epoch_us(r.uploaded_at)) / 1e6 FROM receipts r
         WHERE r.order_id = a.order_id AND r.trader_id = a.trader_id
           AND r.uploaded_at >= a.accepted_at
           AND (a.ended_at IS NULL OR r.uploaded_at <= a.ended_at)) AS uploaded
FROM order_attempts a JOIN payment_orders o USING (order_id)
WHERE a.assigned_at IS NOT NULL AND a.trader_id IS NOT NULL
"""

_RECEIPTS = """
SELECT r.trader_id,
       epoch_us(r.uploaded_at) / 1e6 AS uploaded,
       epoch_us(r.analyzed_at) / 1e6 AS analyzed,
       CAST(r.confidence AS DOUBLE) AS confidence,
       r.approved_by,
       epoch_us(r.decided_at) / 1e6 AS decided,
       epoch_us(o.review_started_at) / 1e6 AS review_started
FROM receipts r LEFT JOIN payment_orders o USING (order_id)
WHERE r.trader_id IS NOT NULL
"""

_PRESENCE = """
SELECT aggregate_id AS trader_id, kind, epoch_us(occurred_at) / 1e6 AS t
FROM events
WHERE kind IN ('trader.went_online', 'trader.went_offline', 'trader.blocked', 'trader.unblocked')
ORDER BY aggregate_id, occurred_at, seq
"""

#: The trader service's available deposit after each top-up (catalog 3.2).
_TOP_UPS = """
WITH d AS (
  SELECT aggregate_id AS trader_id, kind, seq, occurred_at,
         CAST(json_extract_string(payload, '$.amount') AS BIGINT) AS amount
  FROM events
  WHERE stream = 'trader' AND kind IN ('trader.deposit_topped_up', 'trader.deposit_credited',
        'trader.deposit_debited', 'trader.hold_placed', 'trader.hold_released')
), r AS (
  SELECT *, sum(CASE WHEN kind IN ('trader.deposit_topped_up', 'trader.deposit_credited',
                                   'trader.hold_released') THEN amount ELSE -amount END)
            OVER (PARTITION BY trader_id ORDER BY occurred_at, seq
                  ROWS UNBOUNDED PRECEDING) AS available
  FROM d
)
SELECT trader_id, CAST(available AS BIGINT) AS after, CAST(available - amount AS BIGINT) AS before,
       row_number() OVER (PARTITION BY trader_id ORDER BY occurred_at, seq) AS k
FROM r WHERE kind = 'trader.deposit_topped_up'
ORDER BY trader_id, k
"""

#: A client's committed ledger balance after every plan, and whether the plan was a top-up.
_CLIENT_LEDGER = """
WITH p AS (
  SELECT lp.plan_id, pl.ended_at AS t, lp.from_account, lp.to_account, lp.amount
  FROM ledger_postings lp JOIN ledger_plans pl USING (plan_id)
  WHERE lp.batch_status = 'committed'
), m AS (
  SELECT to_account AS account, plan_id, t, amount AS delta FROM p
  WHERE to_account LIKE 'client:%'
  UNION ALL
  SELECT from_account, plan_id, t, -amount FROM p WHERE from_account LIKE 'client:%'
), per_plan AS (
  SELECT account, plan_id, any_value(t) AS t, sum(delta) AS delta FROM m GROUP BY account, plan_id
), r AS (
  SELECT *, sum(delta) OVER (PARTITION BY account ORDER BY t, plan_id
                             ROWS UNBOUNDED PRECEDING) AS own
  FROM per_plan
)
SELECT substr(account, 8) AS client_id, plan_id LIKE 'topup:%' AS top_up,
       CAST(own AS BIGINT) AS own, CAST(own - delta AS BIGINT) AS before
FROM r ORDER BY client_id, t, plan_id
"""


def _epoch(d: datetime) -> float:
    if d.tzinfo is None:
        raise ValueError("give an aware (UTC) datetime")
    return d.timestamp()


def _when(t: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=round(t * _US))


def _median(x: Iterable[float], default: float) -> float:
    a = np.asarray([v for v in x if v is not None and math.isfinite(v)], dtype=float)
    return float(np.median(a)) if a.size else default


def _lower_median_rates(df: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """The lower median rate string per group (a rate that was really quoted)."""
    return (
        df.with_columns(pl.col("rate").cast(pl.Float64, strict=False).alias("_v"))
        .drop_nulls("_v")
        .sort([*by, "_v", "rate"])
        .group_by(by, maintain_order=True)
        .agg(pl.col("rate").get((pl.len() - 1) // 2), pl.len().alias("n"))
    )


def _online_intervals(presence: pl.DataFrame) -> pl.DataFrame:
    """Intervals each trader was online and not blocked (``off`` infinite if still on)."""
    rows: list[tuple[str, float, float]] = []
    for (tid,), g in presence.group_by("trader_id", maintain_order=True):
        online = blocked = False
        since: float | None = None
        for kind, t in zip(g["kind"], g["t"], strict=True):
            was = online and not blocked
            if kind == "trader.went_online":
                online = True
            elif kind == "trader.went_offline":
                online = False
            elif kind == "trader.blocked":
                blocked = True
            elif kind == "trader.unblocked":
                blocked = False
            now = online and not blocked
            if now and not was:
                since = t
            elif was and not now and since is not None:
                if t > since:
                    rows.append((str(tid), since, t))
                since = None
        if since is not None:
            rows.append((str(tid), since, math.inf))
    return pl.DataFrame(
        rows, schema={"trader_id": pl.String, "on": pl.Float64, "off": pl.Float64}, orient="row"
    ).sort("trader_id", "on")


def _clip(iv: Iterable[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    """Intervals cut to ``[lo, hi]`` and shifted to start at ``lo``, touching ones merged."""
    out: list[tuple[float, float]] = []
    for on, off in sorted(iv):
        a, b = max(on, lo), min(off, hi)
        if b <= a:
            continue
        a, b = a - lo, b - lo
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


# ----------------------------------------------------------------------- calibration
@dataclass
class Calibration:
    """What :func:`calibrate` fitted; build configurations with :meth:`config` and
    :meth:`trace_config`. Times in the frames are Unix epoch seconds."""

    source: str
    #: Whole UTC days the orders span: ``[data_start, data_end)``.
    data_start: datetime
    data_end: datetime
    #: The default end of a trace: the last event, up to the next whole hour.
    last_event: datetime
    min_n: int
    #: Traders as fitted (their behaviour in ``behaviour``); shifts are added per configuration.
    traders: dict[str, TraderSpec]
    pooled: Behaviour
    clients: dict[str, ClientSpec]
    arrivals: Arrivals
    rates: Rates
    deadlines: Deadlines
    rating_every: float
    rating_window_days: int
    report: pl.DataFrame = field(repr=False)
    orders: pl.DataFrame = field(repr=False)
    attempts: pl.DataFrame = field(repr=False)
    online: pl.DataFrame = field(repr=False)
    #: The rest of the platform (:mod:`.calibrate_platform`): SimConfig's ``cancel_rate``,
    #: ``withdrawals`` and ``disputes`` as observed (off where nothing was).
    platform: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def days(self) -> float:
        return (self.data_end - self.data_start).total_seconds() / DAY

    def behaviour(self, trader_id: str) -> Behaviour:
        spec = self.traders.get(trader_id)
        return spec.behaviour if spec is not None else self.pooled

    def own_fits(self, quantity: str) -> list[str]:
        """Traders with their own fit of ``quantity`` (the others use the pooled one)."""
        r = self.report.filter((pl.col("quantity") == quantity) & (pl.col("trader") != "pooled"))
        return r["trader"].to_list()

    # ------------------------------------------------------------------ summary
    def summary(self) -> str:
        rep = self.report

        def pooled(q: str) -> dict[str, Any]:
            r = rep.filter((pl.col("trader") == "pooled") & (pl.col("quantity") == q))
            return r.row(0, named=True) if r.height else dict.fromkeys(REPORT_COLUMNS)

        def dist(q: str) -> str:
            r = pooled(q)
            if r["kind"] == "lognormal":
                s = f"lognormal(median {r['param_a']:.0f} s, σ {r['param_b']:.2f})"
            elif r["kind"] is None or r["n"] == 0:
                return f"{q}: no data (default)"
            else:
                s = f"{r['kind']} (lognormal KS {_f(r['ks_lognormal'])})"
            return (
                f"{q}: {s}, n={r['n']}, KS {r['ks']:.3f}; p50 {r['obs_p50']:.0f}/"
                f"{r['fit_p50']:.0f} s, p95 {r['obs_p95']:.0f}/{r['fit_p95']:.0f} s (obs/fit); "
                f"{len(self.own_fits(q))} traders own"
            )

        a = self.arrivals
        arr = pooled("arrivals")
        mix = ", ".join(f"{c} {w:.0%}" for c, w in a.currencies)
        lines = [
            f"calibrated from {self.source}: {self.data_start:%Y-%m-%d} .. {self.data_end:%Y-%m-%d}"
            f" ({self.days:g} days), {len(self.traders)} traders, {len(self.clients)} clients; "
            f"own fits need ≥ {self.min_n} observations",
            f"demand: {a.orders_per_day:.0f} orders/day, payin {a.payin_share:.0%}, {mix}; "
            f"peak hour {int(np.argmax(a.hourly)):02d}h ({max(a.hourly):.1f}/h), "
            f"time-rescaled gaps KS {_f(arr['ks'])}",
        ]
        for q in ("decline", "ignore", "low_confidence"):
            r = pooled(q)
            if r["n"]:
                lines.append(
                    f"{q}: {r['param_a']:.3f} (n={r['n']}, homogeneity p {_f(r['test_p'])}); "
                    f"{len(self.own_fits(q))} traders own"
                )
        for q in ("accept_delay", "decline_delay", "complete", "analyse_delay", "review"):
            lines.append(dist(q))
        amounts = rep.filter(pl.col("quantity").str.starts_with("amount "))
        lines.append(
            "amounts: "
            + "; ".join(
                f"{r['quantity'][7:]} {r['kind']} median {r['fit_p50']:,.0f} KS {r['ks']:.3f}"
                for r in amounts.iter_rows(named=True)
            )
        )
        worst = rep.filter(pl.col("ks").is_not_null()).sort("ks", descending=True).head(3)
        lines.append(
            "worst KS: "
            + ", ".join(
                f"{r['quantity']} {r['trader']} {r['ks']:.3f}" for r in worst.iter_rows(named=True)
            )
        )
        return "\n".join(lines)

    # -------------------------------------------------------------- configurations
    def _settings(self) -> dict[str, Any]:
        return {
            "deadlines": self.deadlines,
            "rating_every": self.rating_every,
            "rating_window_days": self.rating_window_days,
            **self.platform,
        }

    def shifts_between(
        self, start: float, end: float
    ) -> dict[str, tuple[tuple[float, float], ...]]:
        """Each trader's real online intervals within ``[start, end]`` (epoch seconds), as seconds
        from ``start``; a trader never online then gets a shift that never comes."""
        out: dict[str, tuple[tuple[float, float], ...]] = {}
        by = {
            str(tid): list(zip(g["on"], g["off"], strict=True))
            for (tid,), g in self.online.group_by("trader_id")
        }
        for tid in self.traders:
            iv = _clip(by.get(tid, ()), start, end)
            out[tid] = tuple(iv) if iv else NEVER_ONLINE
        return out

    def daily_pattern(self) -> dict[str, tuple[tuple[float, float], ...]]:
        """Each trader's typical day as ``(on, off)`` seconds after midnight: the quarter-hours it
        was most often online over the observed days, as many as its average online time fills."""
        lo, hi = _epoch(self.data_start), _epoch(self.data_end)
        days = (hi - lo) / DAY
        nbins = int(DAY // BIN)
        by = {
            str(tid): _clip(zip(g["on"], g["off"], strict=True), lo, hi)
            for (tid,), g in self.online.group_by("trader_id")
        }
        out: dict[str, tuple[tuple[float, float], ...]] = {}
        for tid in self.traders:
            occ = np.zeros(nbins)
            total = 0.0
            for a, b in by.get(tid, ()):
                total += b - a
                # time online in each quarter-hour of the day, summed over days
                k0, k1 = int(a // BIN), math.ceil(b / BIN)
                for k in range(k0, k1):
                    s, e = max(a, k * BIN), min(b, (k + 1) * BIN)
                    if e > s:
                        occ[k % nbins] += e - s
            keep = round(total / (days * BIN))
            if keep <= 0:
                out[tid] = ()
                continue
            order = np.argsort(-occ, kind="stable")[:keep]
            mask = np.zeros(nbins, dtype=bool)
            mask[order] = True
            iv: list[tuple[float, float]] = []
            for k in range(nbins):
                if mask[k]:
                    if iv and iv[-1][1] == k * BIN:
                        iv[-1] = (iv[-1][0], (k + 1) * BIN)
                    else:
                        iv.append((k * BIN, (k + 1) * BIN))
            out[tid] = tuple(iv)
        return out

    def tiled_shifts(self, days: float) -> dict[str, tuple[tuple[float, float], ...]]:
        """The daily pattern repeated over ``days`` (an all-day pattern: always online, ``()``)."""
        out: dict[str, tuple[tuple[float, float], ...]] = {}
        horizon = days * DAY
        for tid, pattern in self.daily_pattern().items():
            if not pattern:
                out[tid] = NEVER_ONLINE
            elif pattern == ((0.0, DAY),):
                out[tid] = ()
            else:
                iv = [
                    (d * DAY + a, d * DAY + b)
                    for d in range(math.ceil(days) + 1)
                    for a, b in pattern
                ]
                out[tid] = tuple(_clip(iv, 0.0, horizon)) or NEVER_ONLINE
        return out

    def config(
        self,
        days: float = 7.0,
        warmup: float = 6 * 3600.0,
        orders_per_day: float | None = None,
        *,
        start: datetime | None = None,
    ) -> SimConfig:
        """Synthetic demand from the fitted profile, served by the fitted traders on their tiled
        daily shifts. ``start`` (a midnight: the hourly profile is by clock hour) defaults to the
        end of the data, as if simulating the next days."""
        shifts = self.tiled_shifts(days)
        traders = tuple(dataclasses.replace(s, shifts=shifts[t]) for t, s in self.traders.items())
        active = set(self.orders["client_id"].unique().to_list())
        clients = tuple(c for cid, c in self.clients.items() if cid in active) or tuple(
            self.clients.values()
        )
        arrivals = self.arrivals
        if orders_per_day is not None:
            arrivals = dataclasses.replace(arrivals, orders_per_day=float(orders_per_day))
        return SimConfig(
            traders=traders,
            clients=clients,
            arrivals=arrivals,
            rates=self.rates,
            days=days,
            start=start or self.data_end,
            warmup=warmup,
            **self._settings(),
        )

    def trace_window(self, days: float = 7.0, end: datetime | None = None) -> tuple[float, float]:
        hi = _epoch(end) if end is not None else _epoch(self.last_event)
        return hi - days * DAY, hi

    def trace_config(
        self, days: float = 7.0, warmup: float = 0.0, end: datetime | None = None
    ) -> SimConfig:
        """The real orders created in the last ``days`` days up to ``end`` (default: the last
        event, up to the next whole hour), with their ids, times, clients, directions, amounts and
        currencies, the traders' real online intervals and the hourly rates of the period."""
        lo, hi = self.trace_window(days, end)
        lo_us, hi_us = round(lo * _US), round(hi * _US)
        orders = self.orders.filter(
            (pl.col("created_us") >= lo_us) & (pl.col("created_us") < hi_us)
        )
        trace = tuple(
            OrderSpec(
                at=(r["created_us"] - lo_us) / _US,
                client_id=r["client_id"],
                direction=r["direction"],
                amount=int(r["amount"]),
                currency=r["currency"],
                order_id=r["order_id"],
            )
            for r in orders.iter_rows(named=True)
        )
        if not trace:
            raise ValueError(f"no orders between {_when(lo)} and {_when(hi)}")
        shifts = self.shifts_between(lo, hi)
        traders = tuple(dataclasses.replace(s, shifts=shifts[t]) for t, s in self.traders.items())
        clients = dict(self.clients)
        fee = round(_median((c.fee_bps for c in clients.values()), 200.0))
        balance = round(_median((c.balance for c in clients.values()), 0.0))
        for cid in sorted(set(orders["client_id"].to_list()) - set(clients)):
            clients[cid] = ClientSpec(cid, fee, balance)
        return SimConfig(
            traders=traders,
            clients=tuple(clients.values()),
            trace=trace,
            rates=self._trace_rates(lo, hi),
            days=days,
            start=_when(lo),
            warmup=warmup,
            **self._settings(),
        )

    def _trace_rates(self, lo: float, hi: float) -> Rates:
        """Hourly (lower-median) rates per currency from the assignments, as steps from ``lo``;
        the rate in force at ``lo`` is the last hour's before it (or the first one's after)."""
        a = self.attempts.filter(pl.col("rate").is_not_null() & (pl.col("assigned") < hi))
        a = a.with_columns(((pl.col("assigned") // 3600) * 3600).alias("hour"))
        hourly = _lower_median_rates(a, ["currency", "hour"])
        steps = []
        for cur, typical in self.rates.steps:
            h = hourly.filter(pl.col("currency") == cur).sort("hour")
            before = h.filter(pl.col("hour") <= lo)
            inside = h.filter(pl.col("hour") > lo)
            first = (
                before["rate"][-1]
                if before.height
                else (inside["rate"][0] if inside.height else typical[0][1])
            )
            series = [(0.0, first)] + [
                (float(t - lo), r) for t, r in zip(inside["hour"], inside["rate"], strict=True)
            ]
            steps.append((cur, tuple(series)))
        return Rates(tuple(steps))


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


# ----------------------------------------------------------------------- calibrate
def calibrate(db: str | Path, *, min_n: int = MIN_N) -> Calibration:
    """Fit a simulation configuration to a replayed database (opened read-only)."""
    con = store.connect(db, read_only=True)
    try:
        no_progress_bar(con)
        orders = _read(con, _ORDERS)
        attempts = _read(con, _ATTEMPTS)
        receipts = _read(con, _RECEIPTS)
        presence = _read(con, _PRESENCE)
        top_ups = _read(con, _TOP_UPS)
        ledger = _read(con, _CLIENT_LEDGER)
        traders_t = _read(
            con,
            "SELECT trader_id, fiat_currency, settlement_currency, min_amount, max_amount, "
            "max_active_orders, reward_bps, deposit_balance FROM traders "
            "WHERE registered AND fiat_currency IS NOT NULL ORDER BY trader_id",
        )
        clients_t = _read(
            con,
            "SELECT client_id, fee_bps, settlement_currency FROM clients "
            "WHERE registered ORDER BY client_id",
        )
        ratings = _read(
            con,
            "SELECT DISTINCT window_days, epoch_us(as_of) / 1e6 AS as_of FROM trader_ratings",
        )
        last_event = con.execute("SELECT epoch_us(max(occurred_at)) FROM events").fetchall()[0][0]
        rest: list[dict[str, Any]] = []
        span = _span_days(orders)
        platform = platform_fit(con, clients_t.height, traders_t.height, span, rest)
    finally:
        con.close()
    if orders.is_empty():
        raise ValueError(f"{db}: no payment orders to calibrate from")

    rows: list[dict[str, Any]] = []
    deadlines = _deadlines(orders, attempts, rows)
    behaviours, pooled = _behaviour(attempts, receipts, deadlines, min_n, rows)
    traders = _traders(traders_t, top_ups, behaviours, pooled, rows)
    clients = _clients(clients_t, ledger, rows)
    created = orders["created"].to_numpy()
    start = _epoch(_midnight(float(created.min())))
    end = _epoch(_midnight(float(created.max()))) + DAY
    arrivals = _arrivals(orders, start, end, rows)
    rates = _rates(attempts, arrivals, rows)
    every, window = _rating_cadence(ratings)
    last = math.ceil(last_event / _US / 3600) * 3600 if last_event is not None else end
    return Calibration(
        source=str(db),
        data_start=_when(start),
        data_end=_when(end),
        last_event=_when(last),
        min_n=min_n,
        traders=traders,
        pooled=pooled,
        clients=clients,
        arrivals=arrivals,
        rates=rates,
        deadlines=deadlines,
        rating_every=every,
        rating_window_days=window,
        report=pl.DataFrame(rows + rest, schema=REPORT_SCHEMA),
        orders=orders,
        attempts=attempts,
        online=_online_intervals(presence),
        platform=platform,
    )


def _span_days(orders: pl.DataFrame) -> float:
    """Whole UTC days the orders span (as ``Calibration.days``), 0 without orders."""
    if orders.is_empty():
        return 0.0
    created = orders["created"].to_numpy()
    start = _epoch(_midnight(float(created.min())))
    return (_epoch(_midnight(float(created.max()))) + DAY - start) / DAY


def _midnight(t: float) -> datetime:
    d = _when(t)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _deadlines(orders: pl.DataFrame, attempts: pl.DataFrame, rows: list[Row]) -> Deadlines:
    """The platform's windows as observed (median, whole seconds), the defaults where unseen."""
    base = Deadlines()
    out = {}
    for name, col, frame, default in (
        ("accept", "accept_window", attempts, base.accept),
        ("complete", "complete_window", attempts, base.complete),
        ("expire", "expiry_window", orders, base.expire),
    ):
        x = frame[col].drop_nulls().to_numpy()
        v = round(float(np.median(x))) if x.size else default.total_seconds()
        out[name] = timedelta(seconds=v)
        rows.append(
            _row(
                "pooled",
                f"{name}_window",
                int(x.size),
                "const",
                param_a=v,
                obs_mean=float(x.mean()) if x.size else None,
                fit_mean=v,
                obs_p50=float(np.median(x)) if x.size else None,
                fit_p50=v,
            )
        )
    return Deadlines(out["accept"], out["complete"], out["expire"])


def _behaviour(
    attempts: pl.DataFrame,
    receipts: pl.DataFrame,
    deadlines: Deadlines,
    min_n: int,
    rows: list[Row],
) -> tuple[dict[str, Behaviour], Behaviour]:
    default = Behaviour()
    a = attempts.with_columns(
        pl.when(pl.col("outcome") == "declined")
        .then(pl.lit("decline"))
        .when((pl.col("outcome") == "expired") & pl.col("accepted").is_null())
        .then(pl.lit("ignore"))
        .when(pl.col("accepted").is_not_null())
        .then(pl.lit("accept"))
        .otherwise(None)
        .alias("decision")
    )
    decided = a.filter(pl.col("decision").is_not_null())
    counts = decided.group_by("trader_id").agg(
        pl.len().alias("n"),
        (pl.col("decision") == "decline").sum().alias("declined"),
        (pl.col("decision") == "ignore").sum().alias("ignored"),
    )
    dec = {r["trader_id"]: (r["declined"], r["n"]) for r in counts.iter_rows(named=True)}
    ign = {r["trader_id"]: (r["ignored"], r["n"]) for r in counts.iter_rows(named=True)}
    p_dec, own_dec = _shares(dict(sorted(dec.items())), "decline", min_n, rows)
    p_ign, own_ign = _shares(dict(sorted(ign.items())), "ignore", min_n, rows)

    acc = a.filter(pl.col("accepted").is_not_null()).with_columns(
        (pl.col("accepted") - pl.col("assigned")).alias("x")
    )
    d_acc, own_acc = _fit_by_trader(_groups(acc, "x"), "accept_delay", min_n, rows)
    dcl = a.filter(pl.col("decision") == "decline").with_columns(
        (pl.col("ended") - pl.col("assigned")).alias("x")
    )
    d_dcl, own_dcl = _fit_by_trader(_groups(dcl, "x"), "decline_delay", min_n, rows)
    work = acc.with_columns(
        pl.when(pl.col("direction") == "payin")
        .then(pl.when(pl.col("outcome") == "completed").then(pl.col("ended")))
        .otherwise(pl.col("uploaded"))
        .sub(pl.col("accepted"))
        .alias("x")
    ).filter(pl.col("x").is_not_null())
    d_work, own_work = _fit_by_trader(_groups(work, "x"), "complete", min_n, rows)
    for direction, q in (("payin", "complete_payin"), ("payout", "upload_payout")):
        # Shown, not used: the two halves of ``complete``, pooled.
        _fit_by_trader(
            _groups(work.filter(pl.col("direction") == direction), "x"),
            q,
            min_n,
            rows,
            pooled_only=True,
        )

    rc = receipts.filter(pl.col("confidence").is_not_null())
    low = rc.group_by("trader_id").agg(
        (pl.col("confidence") < LOW_CONFIDENCE).sum().alias("k"), pl.len().alias("n")
    )
    p_low, own_low = _shares(
        dict(sorted((r["trader_id"], (r["k"], r["n"])) for r in low.iter_rows(named=True))),
        "low_confidence",
        min_n,
        rows,
    )
    ana = receipts.with_columns((pl.col("analyzed") - pl.col("uploaded")).alias("x"))
    d_ana, _ = _fit_by_trader(_groups(ana, "x"), "analyse_delay", min_n, rows, pooled_only=True)
    rev = receipts.filter(pl.col("approved_by") == "reviewer").with_columns(
        (
            pl.col("decided")
            - pl.max_horizontal(pl.col("analyzed"), pl.col("review_started").fill_null(0.0))
        ).alias("x")
    )
    d_rev, _ = _fit_by_trader(_groups(rev, "x"), "review", min_n, rows, pooled_only=True)

    window = deadlines.accept.total_seconds()

    def build(tid: str | None) -> Behaviour:
        def pick(own: dict[str, Any], pooled: Any, dflt: Any) -> Any:
            if tid is not None and tid in own:
                return own[tid]
            return pooled if pooled is not None else dflt

        decline = pick(own_dec, p_dec, default.decline)
        ignored = pick(own_ign, p_ign, default.ignore)
        accept = pick(own_acc, d_acc, default.accept_delay)
        # Accepts slower than the window are never seen as accepts but the simulator turns them
        # into expiries: take them out of the ignore share so expiries come out as observed.
        q = 1.0 - float(_cdf(accept, np.array([window]))[0]) if accept.kind == "lognormal" else 0
        if q > 0:
            ignored = (ignored - (1 - decline) * q) / (1 - q)
        ignored = min(max(ignored, 0.0), 1.0 - decline)
        return Behaviour(
            decline=decline,
            ignore=ignored,
            accept_delay=accept,
            decline_delay=pick(own_dcl, d_dcl, default.decline_delay),
            complete=pick(own_work, d_work, default.complete),
            low_confidence=pick(own_low, p_low, default.low_confidence),
            analyse_delay=d_ana if d_ana is not None else default.analyse_delay,
            review=d_rev if d_rev is not None else default.review,
        )

    pooled_b = build(None)
    tids = set(attempts["trader_id"].to_list()) | set(receipts["trader_id"].to_list())
    behaviours = {str(t): build(str(t)) for t in sorted(tids)}
    # The ignore share used after the censoring correction.
    for r in rows:
        if r["quantity"] == "ignore" and r["kind"] == "share":
            b = pooled_b if r["trader"] == "pooled" else behaviours[r["trader"]]
            r["param_b"] = r["fit_mean"] = b.ignore
    return behaviours, pooled_b


def _traders(
    t: pl.DataFrame,
    top_ups: pl.DataFrame,
    behaviours: dict[str, Behaviour],
    pooled: Behaviour,
    rows: list[Row],
) -> dict[str, TraderSpec]:
    """Traders as registered now. The deposit is the level top-ups bring the available deposit
    to (their median); the top-up threshold is the platform's, pooled over traders: the largest
    share of that level still available when a restoring top-up (one that adds at least a tenth
    of the level and ends within a tenth of it, not the first funding) was made."""
    levels = top_ups.group_by("trader_id").agg(pl.col("after").median().alias("level"))
    lv = {r["trader_id"]: r["level"] for r in levels.iter_rows(named=True)}
    restoring = (
        top_ups.join(levels, on="trader_id")
        .filter(
            (pl.col("k") > 1)
            & (pl.col("level") > 0)
            & (pl.col("after") - pl.col("before") >= 0.1 * pl.col("level"))
            & (pl.col("after") >= 0.9 * pl.col("level"))
        )
        .with_columns((pl.col("before") / pl.col("level")).alias("r"))
    )
    ratios = restoring["r"].to_numpy()
    below = float(ratios.max()) if ratios.size else 0.4
    below = min(max(below, 0.05), 0.95)
    rows.append(
        _row(
            "pooled",
            "deposit_top_up_below",
            restoring.height,
            "level",
            param_a=below,
            obs_mean=float(ratios.mean()) if ratios.size else None,
            fit_mean=below,
        )
    )
    out = {}
    for r in t.iter_rows(named=True):
        tid = r["trader_id"]
        level = lv.get(tid)
        deposit = (
            int(level)
            if level is not None and level > 0
            else max(int(r["deposit_balance"] or 0), 0)
        )
        n = int((top_ups["trader_id"] == tid).sum())
        rows.append(_row(tid, "deposit", n, "level", param_a=deposit, fit_mean=deposit))
        out[tid] = TraderSpec(
            trader_id=tid,
            fiat_currency=r["fiat_currency"],
            min_amount=int(r["min_amount"] or 0),
            max_amount=int(r["max_amount"] or 0),
            max_active_orders=int(r["max_active_orders"] or 1),
            reward_bps=int(r["reward_bps"] or 0),
            deposit=deposit,
            settlement_currency=r["settlement_currency"] or "USDT",
            behaviour=behaviours.get(tid, pooled),
            top_up_below=below,
        )
    return out


def _clients(c: pl.DataFrame, ledger: pl.DataFrame, rows: list[Row]) -> dict[str, ClientSpec]:
    """Clients with their fee as now; the balance is the typical (median) level a top-up brought
    the committed ledger balance to, and the top-up threshold the typical share of it left when
    a later top-up was made (pooled over clients; with fewer than three, the model's default).
    Payins credit the clients, so their balances seldom need a top-up."""
    ups = ledger.filter(pl.col("top_up") & (pl.col("own") > 0))
    later = ups.filter(pl.int_range(pl.len()).over("client_id") > 0)
    below = (
        float((later["before"] / later["own"]).median())  # type: ignore[arg-type]
        if later.height >= 3
        else 0.25  # the model's default: too few top-ups to say
    )
    below = min(max(below, 0.05), 0.95)
    rows.append(
        _row("pooled", "client_top_up_below", later.height, "level", param_a=below, fit_mean=below)
    )
    out = {}
    for r in c.iter_rows(named=True):
        cid = r["client_id"]
        mine = ups.filter(pl.col("client_id") == cid)
        if mine.height:
            balance = int(mine["own"].median())  # type: ignore[arg-type]
        else:
            g = ledger.filter(pl.col("client_id") == cid)
            balance = int(g["own"].median()) if g.height else 0  # type: ignore[arg-type]
        rows.append(
            _row(cid, "client_balance", mine.height, "level", param_a=balance, fit_mean=balance)
        )
        out[cid] = ClientSpec(
            client_id=cid,
            fee_bps=int(r["fee_bps"] or 0),
            balance=max(balance, 0),
            settlement_currency=r["settlement_currency"] or "USDT",
            top_up_below=below,
        )
    return out


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


# -------------------------------------------------------------------------- backtest
def _p(x: Iterable[float], q: float) -> float:
    a = np.asarray(list(x), dtype=float)
    return float(np.quantile(a, q)) if a.size else math.nan


def _gini(x: Iterable[float]) -> float:
    a = np.sort(np.asarray(list(x), dtype=float))
    if a.size == 0 or a.sum() == 0:
        return math.nan
    i = np.arange(1, a.size + 1)
    return float((2 * i - a.size - 1) @ a / (a.size * a.sum()))


def _metrics(
    orders: list[dict[str, Any]],
    attempts: list[dict[str, Any]],
    traders: list[str],
) -> dict[str, float]:
    """The compared figures from plain records: orders (``outcome`` completed / expired /
    other / None, ``created``, ``first_assigned``, ``accepted``, ``completed``, ``trader``) and
    attempts (``assigned``, ``accepted``, ``result``: accepted / declined / expired / other)."""
    n = len(orders)
    done = [o for o in orders if o["outcome"] == "completed"]
    per_trader = Counter(o["trader"] for o in done)
    counts = [per_trader.get(t, 0) for t in traders]
    res = Counter(a["result"] for a in attempts)
    decided = res["accepted"] + res["declined"] + res["expired"]
    acc = [a["accepted"] - a["assigned"] for a in attempts if a["accepted"] is not None]
    comp = [o["completed"] - o["accepted"] for o in done if o["accepted"] is not None]
    wait = [o["first_assigned"] - o["created"] for o in orders if o["first_assigned"] is not None]
    e2e = [o["completed"] - o["created"] for o in done]
    return {
        "orders": float(n),
        "fill rate": len(done) / n if n else math.nan,
        "expiry rate": sum(o["outcome"] == "expired" for o in orders) / n if n else math.nan,
        "other cancel rate": sum(o["outcome"] == "other" for o in orders) / n if n else math.nan,
        "open at end": sum(o["outcome"] is None for o in orders) / n if n else math.nan,
        "attempts per order": len(attempts) / n if n else math.nan,
        "decline share": res["declined"] / decided if decided else math.nan,
        "assignment expiry share": res["expired"] / decided if decided else math.nan,
        "first assignment wait p50 s": _p(wait, 0.5),
        "first assignment wait p95 s": _p(wait, 0.95),
        "accept p50 s": _p(acc, 0.5),
        "accept p95 s": _p(acc, 0.95),
        "complete p50 s": _p(comp, 0.5),
        "complete p95 s": _p(comp, 0.95),
        "created to completed p50 s": _p(e2e, 0.5),
        "created to completed p95 s": _p(e2e, 0.95),
        "orders per trader p10": _p(counts, 0.1),
        "orders per trader p50": _p(counts, 0.5),
        "orders per trader p90": _p(counts, 0.9),
        "orders per trader max": float(max(counts)) if counts else math.nan,
        "orders per trader gini": _gini(counts),
        "_shares": per_trader,  # type: ignore[dict-item]
    }


def _real_records(
    cal: Calibration, ids: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    o = cal.orders.filter(pl.col("order_id").is_in(list(ids)))
    a = cal.attempts.filter(pl.col("order_id").is_in(list(ids))).sort("order_id", "attempt")
    by: dict[str, list[dict[str, Any]]] = {}
    for r in a.iter_rows(named=True):
        by.setdefault(r["order_id"], []).append(r)
    orders, attempts = [], []
    for r in o.iter_rows(named=True):
        atts = by.get(r["order_id"], [])
        done = next((x for x in atts if x["outcome"] == "completed"), None)
        if done is not None:
            outcome = "completed"
        elif r["status"] == "cancelled":
            outcome = "expired" if r["cancel_reason"] == "expired" else "other"
        else:
            outcome = None
        orders.append(
            {
                "outcome": outcome,
                "created": r["created"],
                "first_assigned": min((x["assigned"] for x in atts), default=None),
                "accepted": done["accepted"] if done else None,
                "completed": done["ended"] if done else None,
                "trader": done["trader_id"] if done else None,
            }
        )
        for x in atts:
            result = (
                "declined"
                if x["outcome"] == "declined"
                else "expired"
                if x["outcome"] == "expired" and x["accepted"] is None
                else "accepted"
                if x["accepted"] is not None
                else "other"
            )
            attempts.append(
                {"assigned": x["assigned"], "accepted": x["accepted"], "result": result}
            )
    return orders, attempts


def _sim_records(sim: Any, ids: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    orders = [
        {
            "outcome": o.outcome,
            "created": o.created,
            "first_assigned": o.first_assigned,
            "accepted": o.accepted_at,
            "completed": o.ended if o.outcome == "completed" else None,
            "trader": o.trader_id if o.outcome == "completed" else None,
        }
        for oid, o in sim.orders.items()
        if oid in ids
    ]
    attempts: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    ends = {"declined": "declined", "assignment_expired": "expired", "cancelled": "other"}
    for t, kind, oid, _tid in sim.log:
        if oid not in ids:
            continue
        if kind == "assigned":
            open_[oid] = {"assigned": t, "accepted": None, "result": "other"}
            attempts.append(open_[oid])
        elif kind == "accepted" and oid in open_:
            open_[oid]["accepted"], open_[oid]["result"] = t, "accepted"
        elif kind in ends and oid in open_:
            if open_[oid]["accepted"] is None:
                open_[oid]["result"] = ends[kind]
            del open_[oid]
    return orders, attempts


def backtest(
    db: str | Path | Calibration,
    days: float = 7.0,
    seed: int = 0,
    *,
    end: datetime | None = None,
    policy: str = "production",
) -> pl.DataFrame:
    """Run the last ``days`` days' real orders (:meth:`Calibration.trace_config`) under the
    production policy and compare with what really happened: one row per metric (real,
    simulated, difference = simulated − real). Both sides count the same orders: those created
    at least :data:`SETTLE` seconds before the end, so each had time to finish in the model.
    ``orders per trader`` counts completed orders over every trader of the configuration;
    ``orders per trader TV`` is the total variation distance between the real and simulated
    shares of completed orders by trader (0 = the same split)."""
    from .model import Simulation

    cal = db if isinstance(db, Calibration) else calibrate(db)
    cfg = cal.trace_config(days=days, end=end)
    sim = Simulation(cfg, policy, seed).run()
    cut = cfg.horizon - SETTLE
    ids = {s.order_id for s in cfg.trace if s.at < cut}
    traders = [t.trader_id for t in cfg.traders]
    real = _metrics(*_real_records(cal, ids), traders)
    simd = _metrics(*_sim_records(sim, ids), traders)
    rs, ss = real.pop("_shares"), simd.pop("_shares")
    rt, st = sum(rs.values()) or 1, sum(ss.values()) or 1  # type: ignore[attr-defined]
    tv = 0.5 * sum(abs(rs.get(t, 0) / rt - ss.get(t, 0) / st) for t in traders)  # type: ignore[attr-defined]
    real["orders per trader TV"], simd["orders per trader TV"] = 0.0, tv
    return pl.DataFrame(
        {
            "metric": list(real),
            "real": [real[k] for k in real],
            "simulated": [simd[k] for k in real],
            "difference": [simd[k] - real[k] for k in real],
        },
        schema={
            "metric": pl.String,
            "real": pl.Float64,
            "simulated": pl.Float64,
            "difference": pl.Float64,
        },
    )
