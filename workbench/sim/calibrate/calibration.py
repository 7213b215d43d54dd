""":func:`calibrate` (read a replay database, fit every part) and what it returns,
:class:`Calibration`: the fits, their report and summary, and the configurations built from
them (synthetic on tiled daily shifts, or a trace of the real orders).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ...domain.scheduler import Deadlines
from ...progress import no_progress_bar
from ...replay import store
from ..config import NEVER, Arrivals, Behaviour, ClientSpec, OrderSpec, Rates, SimConfig, TraderSpec
from .demand import _arrivals, _rates, _rating_cadence
from .fit import MIN_N, REPORT_COLUMNS, REPORT_SCHEMA
from .platform import platform_fit
from .read import (
    _ATTEMPTS,
    _CLIENT_LEDGER,
    _ORDERS,
    _PRESENCE,
    _RECEIPTS,
    _TOP_UPS,
    _US,
    DAY,
    _clip,
    _epoch,
    _lower_median_rates,
    _median,
    _midnight,
    _online_intervals,
    _read,
    _when,
)
from .traders import _behaviour, _clients, _deadlines, _traders

#: Resolution of a trader's daily online pattern (seconds).
BIN = 900.0
NEVER_ONLINE: tuple[tuple[float, float], ...] = ((NEVER, NEVER),)


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
    #: The rest of the platform (:mod:`.platform`): SimConfig's ``cancel_rate``,
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
            "SELECT DISTINCT window_days, epoch_us(as_of) / 1e6 AS as_of FROM trader_ratings "
            "ORDER BY as_of, window_days",
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
