"""The backtest: the last days' real orders run again in the model under a policy, and the
figures of both compared.

Why apart: it is the calibration's validation, a consumer of :class:`.calibration.Calibration`
(and the only part that runs the model).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .calibration import Calibration, calibrate

#: The backtest compares orders created at least this long before the end of the trace.
SETTLE = 2 * 3600.0


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
    from ..model import Simulation

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
