"""What one replication measured: the service level, the load, the spread and the money.

Every order-based metric is over the *cohort* of orders created in ``[warmup, horizon)``: an
order created during the warm-up is not counted even if it ends after it, and an order still
open at the horizon counts in ``orders`` but in none of the rates. The
warm-up (seconds) is part of every result, so no number travels without it.

=================  ==========================================================================
``orders``         orders created in the window
``completed``      of those, completed by the horizon
``expired``        of those, expired (cancelled by the scheduler's expiry)
``cancelled``      of those, cancelled by their client while waiting (``SimConfig.cancel_rate``)
``open``           of those, none of these by the horizon
``fill_rate``      completed / orders
``expiry_rate``    expired / orders
``cancelled_share`` cancelled / orders (Erlang A's abandonment share with one-slot traders)
``accept_p50/p95`` seconds from creation to acceptance, over the cohort's accepted orders
``complete_p50/p95`` seconds from creation to completion, over the cohort's completed orders
``utilisation``    Σ busy slot-seconds / Σ online slot-seconds over traders, after the warm-up
                   (the model accumulates both from ``warmup`` on)
``gini_orders``    Gini of completed cohort orders per trader, over the traders present after
                   the warm-up (online at some point, or completing a cohort order): idle ones
                   count as zeros, traders whose shifts all fall outside the window do not
``gini_earnings``  Gini of the rewards those orders paid the same traders
``hold_mean/p95``  seconds money stayed held per hold of a cohort order (payin deposits from
                   assignment to release, payout client balances from assignment to capture),
                   rebuilt from the log; None when the run keeps no money
``revenue``        Σ ``platform_net`` of the completed cohort orders, integer minor units of
                   the settlement currency (exact: summed as ints, never floats)
``warmup``         the warm-up in seconds
=================  ==========================================================================

Percentiles are :func:`.stats.percentile` (type 7, linear); a metric with nothing to measure
(no accepted order, no money) is ``None``, which becomes null in a frame.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import polars as pl

from .stats import gini, percentile

if TYPE_CHECKING:
    from .model import SimOrder, Simulation

#: Every metric of :func:`metrics`, in column order, with its Polars type.
METRICS: dict[str, type[pl.DataType]] = {
    "orders": pl.Int64,
    "completed": pl.Int64,
    "expired": pl.Int64,
    "cancelled": pl.Int64,
    "open": pl.Int64,
    "fill_rate": pl.Float64,
    "expiry_rate": pl.Float64,
    "cancelled_share": pl.Float64,
    "accept_p50": pl.Float64,
    "accept_p95": pl.Float64,
    "complete_p50": pl.Float64,
    "complete_p95": pl.Float64,
    "utilisation": pl.Float64,
    "gini_orders": pl.Float64,
    "gini_earnings": pl.Float64,
    "hold_mean": pl.Float64,
    "hold_p95": pl.Float64,
    "revenue": pl.Int64,
    "warmup": pl.Float64,
}

#: The metrics a comparison puts intervals on (counts and rates, not the warm-up itself).
COMPARED: tuple[str, ...] = tuple(m for m in METRICS if m != "warmup")

#: Log kinds that close an open attempt (and release or capture what it held).
_CLOSING = frozenset({"declined", "assignment_expired", "completed", "cancelled"})


def cohort(sim: Simulation) -> list[SimOrder]:
    """The orders created in ``[warmup, horizon)``, in creation order."""
    lo, hi = sim.cfg.warmup, sim.cfg.horizon
    return [o for o in sim.orders.values() if lo <= o.created < hi]


def metrics(sim: Simulation) -> dict[str, Any]:
    """The metrics of one finished replication (see the module's table)."""
    orders = cohort(sim)
    n = len(orders)
    done = [o for o in orders if o.outcome == "completed"]
    expired = sum(1 for o in orders if o.outcome == "expired")
    cancelled = sum(1 for o in orders if o.outcome == "cancelled")
    accept = [o.accepted_at - o.created for o in orders if o.accepted_at is not None]
    complete = [o.ended - o.created for o in done if o.ended is not None]
    per_count: dict[str, int] = dict.fromkeys(sim.traders, 0)
    per_reward: dict[str, int] = dict.fromkeys(sim.traders, 0)
    revenue = 0
    for o in done:
        assert o.trader_id is not None and o.pricing is not None
        per_count[o.trader_id] += 1
        per_reward[o.trader_id] += o.pricing.trader_reward
        revenue += o.pricing.platform_net
    present = [tid for tid, t in sim.traders.items() if t.capacity_time > 0 or per_count[tid] > 0]
    busy = sum(t.busy_time for t in sim.traders.values())
    capacity = sum(t.capacity_time for t in sim.traders.values())
    holds = hold_durations(sim, {o.order_id for o in orders})
    return {
        "orders": n,
        "completed": len(done),
        "expired": expired,
        "cancelled": cancelled,
        "open": n - len(done) - expired - cancelled,
        "fill_rate": len(done) / n if n else None,
        "expiry_rate": expired / n if n else None,
        "cancelled_share": cancelled / n if n else None,
        "accept_p50": _pct(accept, 50),
        "accept_p95": _pct(accept, 95),
        "complete_p50": _pct(complete, 50),
        "complete_p95": _pct(complete, 95),
        "utilisation": busy / capacity if capacity > 0 else None,
        "gini_orders": gini([per_count[t] for t in present]) if present else None,
        "gini_earnings": gini([per_reward[t] for t in present]) if present else None,
        "hold_mean": sum(holds) / len(holds) if holds else None,
        "hold_p95": _pct(holds, 95),
        "revenue": int(revenue),
        "warmup": float(sim.cfg.warmup),
    }


def hold_durations(sim: Simulation, order_ids: set[str] | None = None) -> list[float]:
    """Seconds each hold lasted, rebuilt from the log (for ``order_ids``, or all orders).

    The model books a hold at every assignment (a payin holds the trader's deposit, a payout
    the client's balance) and records its duration when the attempt closes if the money moved
    or was held to the end: every payin attempt, and payout attempts that completed. Its own
    ``sim.hold_durations`` has no order ids (so no warm-up filter); this follows the same rule
    over the log, and over all orders gives the same multiset.
    """
    if not sim.cfg.money:
        return []
    opened: dict[str, float] = {}
    out: list[float] = []
    for t, kind, oid, _tid in sim.log:
        if not oid or (order_ids is not None and oid not in order_ids):
            continue
        if kind == "assigned":
            opened[oid] = t
        elif kind in _CLOSING and oid in opened:
            start = opened.pop(oid)
            if sim.orders[oid].direction == "payin" or kind == "completed":
                out.append(t - start)
    return out


def orders_frame(sim: Simulation) -> pl.DataFrame:
    """One row per order of the run (the warm-up's too, flagged by ``in_window``)."""
    lo, hi = sim.cfg.warmup, sim.cfg.horizon
    rows: dict[str, list[Any]] = defaultdict(list)
    for o in sim.orders.values():
        p = o.pricing
        rows["order_id"].append(o.order_id)
        rows["client_id"].append(o.client_id)
        rows["direction"].append(o.direction)
        rows["amount"].append(o.amount)
        rows["currency"].append(o.currency)
        rows["created"].append(o.created)
        rows["first_assigned"].append(o.first_assigned)
        rows["accepted_at"].append(o.accepted_at)
        rows["ended"].append(o.ended)
        rows["outcome"].append(o.outcome)
        rows["trader_id"].append(o.trader_id)
        rows["attempts"].append(o.attempt)
        rows["accept_wait"].append(None if o.accepted_at is None else o.accepted_at - o.created)
        rows["complete_time"].append(
            o.ended - o.created if o.outcome == "completed" and o.ended is not None else None
        )
        rows["settlement_amount"].append(p.settlement_amount if p else None)
        rows["platform_fee"].append(p.platform_fee if p else None)
        rows["trader_reward"].append(p.trader_reward if p else None)
        rows["platform_net"].append(p.platform_net if p else None)
        rows["in_window"].append(lo <= o.created < hi)
    return pl.DataFrame(rows, schema=ORDERS_SCHEMA)


ORDERS_SCHEMA: dict[str, type[pl.DataType]] = {
    "order_id": pl.String,
    "client_id": pl.String,
    "direction": pl.String,
    "amount": pl.Int64,
    "currency": pl.String,
    "created": pl.Float64,
    "first_assigned": pl.Float64,
    "accepted_at": pl.Float64,
    "ended": pl.Float64,
    "outcome": pl.String,
    "trader_id": pl.String,
    "attempts": pl.Int64,
    "accept_wait": pl.Float64,
    "complete_time": pl.Float64,
    "settlement_amount": pl.Int64,
    "platform_fee": pl.Int64,
    "trader_reward": pl.Int64,
    "platform_net": pl.Int64,
    "in_window": pl.Boolean,
}


def traders_frame(sim: Simulation) -> pl.DataFrame:
    """One row per trader: what it did for the cohort (``completed``, ``earnings``: over the
    rows ``in_window``, the values :func:`metrics` takes the Gini of and ``stats.lorenz``
    draws), the whole run's counters (``completed_total``, ``earnings_total``) and its
    slot-time after the warm-up."""
    count: dict[str, int] = dict.fromkeys(sim.traders, 0)
    reward: dict[str, int] = dict.fromkeys(sim.traders, 0)
    for o in cohort(sim):
        if o.outcome == "completed" and o.trader_id is not None and o.pricing is not None:
            count[o.trader_id] += 1
            reward[o.trader_id] += o.pricing.trader_reward
    ts = list(sim.traders.values())
    return pl.DataFrame(
        {
            "trader_id": [t.trader_id for t in ts],
            "fiat_currency": [t.spec.fiat_currency for t in ts],
            "max_active_orders": [t.max_active_orders for t in ts],
            "reward_bps": [t.reward_bps for t in ts],
            "completed": [count[t.trader_id] for t in ts],
            "earnings": [reward[t.trader_id] for t in ts],
            "completed_total": [t.completed for t in ts],
            "earnings_total": [t.earnings for t in ts],
            "busy_time": [t.busy_time for t in ts],
            "capacity_time": [t.capacity_time for t in ts],
            "utilisation": [
                t.busy_time / t.capacity_time if t.capacity_time > 0 else None for t in ts
            ],
            "in_window": [t.capacity_time > 0 or count[t.trader_id] > 0 for t in ts],
        },
        schema={
            "trader_id": pl.String,
            "fiat_currency": pl.String,
            "max_active_orders": pl.Int64,
            "reward_bps": pl.Int64,
            "completed": pl.Int64,
            "earnings": pl.Int64,
            "completed_total": pl.Int64,
            "earnings_total": pl.Int64,
            "busy_time": pl.Float64,
            "capacity_time": pl.Float64,
            "utilisation": pl.Float64,
            "in_window": pl.Boolean,
        },
    )


def _pct(values: list[float], q: float) -> float | None:
    return percentile(values, q) if values else None
