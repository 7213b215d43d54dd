"""Calibrate the rest of the platform from a replayed database: client cancellations,
withdrawals and disputes (:class:`~.config.SimConfig`'s ``cancel_rate``, ``withdrawals`` and
``disputes``). Kept apart from the traders (:mod:`.traders`) and the demand (:mod:`.demand`);
:func:`~.calibration.calibrate` calls :func:`platform_fit` and adds its report rows to
``Calibration.report``.

* **Cancellation rate** θ: the maximum-likelihood rate of an exponential patience with
  censoring, θ = (orders the client cancelled before any assignment) / (the time orders waited
  for their first assignment: creation to the first assignment, the cancellation or the expiry,
  whichever came first). The model lets clients cancel only orders waiting for a trader, so
  cancellations of orders a trader held are not counted (the report says how many there were).
* **Withdrawals**: per day per owner, the payouts clients (traders) asked for over the
  owners registered and the days of data; the fee (median), the smallest amount (the minimum),
  the share that failed, and the delays created → paid and paid → confirmed (fitted like the
  traders' delays, :func:`.fit.fit_dist`). The share of the available amount each
  withdrawal takes is not in the data (the projection keeps no balance history per payout),
  so it keeps :class:`~.config.Withdrawals`' default.
* **Disputes**: the share of completed orders disputed, the share of resolutions reversed,
  the delays completion → dispute and dispute → resolution.

With nothing observed a part is off (rate 0 or None), so a database without payouts or
disputes calibrates the model without them.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np

from ..config import Disputes, Withdrawals
from .fit import Row, _row, fit_dist

_WAITS = """
SELECT o.order_id, o.cancel_reason,
       epoch_us(o.created_at) / 1e6 AS created,
       epoch_us(a.first_assigned) / 1e6 AS first_assigned,
       epoch_us(o.cancelled_at) / 1e6 AS cancelled,
       epoch_us(o.expires_at) / 1e6 AS expires
FROM payment_orders o
LEFT JOIN (SELECT order_id, min(assigned_at) AS first_assigned FROM order_attempts
           GROUP BY order_id) a USING (order_id)
WHERE o.created_at IS NOT NULL
ORDER BY o.order_id
"""

_PAYOUTS = """
SELECT split_part(owner, ':', 1) AS kind, amount, fee, status,
       epoch_us(created_at) / 1e6 AS created, epoch_us(paid_at) / 1e6 AS paid,
       epoch_us(confirmed_at) / 1e6 AS confirmed
FROM payouts WHERE owner IS NOT NULL AND created_at IS NOT NULL
ORDER BY payout_id
"""

_DISPUTES = """
SELECT epoch_us(completed_at) / 1e6 AS completed, epoch_us(disputed_at) / 1e6 AS disputed,
       epoch_us(resolved_at) / 1e6 AS resolved, dispute_outcome
FROM payment_orders WHERE completed_at IS NOT NULL
ORDER BY order_id
"""


def cancel_rate(con: duckdb.DuckDBPyConnection, rows: list[Row]) -> float:
    """θ per second (0 when no client cancelled a waiting order)."""
    w = con.sql(_WAITS).fetchall()
    exposure, events, held = 0.0, 0, 0
    for _oid, reason, created, first, cancelled, expires in w:
        ends = [x for x in (first, cancelled, expires) if x is not None]
        if not ends:
            continue
        exposure += max(0.0, min(ends) - created)
        if reason == "client_request":
            if first is None or (cancelled is not None and cancelled < first):
                events += 1
            else:
                held += 1
    theta = events / exposure if exposure > 0 else 0.0
    rows.append(
        _row(
            "pooled",
            "cancel_rate",
            events,
            "rate",
            param_a=theta,
            param_b=float(held),
            obs_mean=exposure / len(w) if w else None,
            fit_mean=1 / theta if theta > 0 else None,
        )
    )
    return theta


def withdrawals(
    con: duckdb.DuckDBPyConnection, clients: int, traders: int, days: float, rows: list[Row]
) -> Withdrawals | None:
    """The payout desk as observed (None when no payout was asked for)."""
    p = con.sql(_PAYOUTS).pl()
    if p.is_empty() or days <= 0:
        return None
    per = {
        k: p.filter(p["kind"] == k).height / (n * days) if n else 0.0
        for k, n in (("client", clients), ("trader", traders))
    }
    failed = int((p["status"] == "failed").sum())
    kw: dict[str, Any] = {
        "client_per_day": per["client"],
        "trader_per_day": per["trader"],
        "fee": int(np.median(p["fee"].to_numpy())),
        "minimum": int(p["amount"].min()),
        "fail": failed / p.height,
    }
    for k in ("client", "trader"):
        n = p.filter(p["kind"] == k).height
        rows.append(_row("pooled", f"{k}_withdrawals_per_day", n, "rate", param_a=per[k]))
    rows.append(_row("pooled", "payout_fail", p.height, "share", param_a=kw["fail"]))
    paid = (p["paid"] - p["created"]).drop_nulls().to_numpy()
    confirm = (p["confirmed"] - p["paid"]).drop_nulls().to_numpy()
    _fit_delays(kw, rows, "payout", {"pay_delay": paid, "confirm_delay": confirm})
    return Withdrawals(**kw)


def disputes(con: duckdb.DuckDBPyConnection, rows: list[Row]) -> Disputes | None:
    """Disputes as observed (None when no completed order was disputed)."""
    d = con.sql(_DISPUTES).pl()
    opened = d.filter(d["disputed"].is_not_null())
    if opened.is_empty():
        return None
    resolved = opened.filter(opened["dispute_outcome"].is_not_null())
    rev = int((resolved["dispute_outcome"] == "reversed").sum())
    kw: dict[str, Any] = {
        "share": opened.height / d.height,
        "reversed": rev / resolved.height if resolved.height else Disputes().reversed,
    }
    rows.append(_row("pooled", "dispute_share", opened.height, "share", param_a=kw["share"]))
    rows.append(
        _row("pooled", "dispute_reversed", resolved.height, "share", param_a=kw["reversed"])
    )
    delay = (opened["disputed"] - opened["completed"]).to_numpy()
    resolve = (resolved["resolved"] - resolved["disputed"]).to_numpy()
    _fit_delays(kw, rows, "dispute", {"delay": delay, "resolve": resolve})
    return Disputes(**kw)


def _fit_delays(
    kw: dict[str, Any], rows: list[Row], prefix: str, delays: dict[str, np.ndarray]
) -> None:
    """Each of ``delays`` (seconds) fitted into ``kw`` under its name, its report row added as
    ``{prefix}_{name}``; left to the default where fewer than two positive delays were seen."""
    for name, x in delays.items():
        x = x[x > 0]
        if x.size >= 2:
            kw[name], row = fit_dist(x, "pooled", f"{prefix}_{name}")
            rows.append(row)


def platform_fit(
    con: duckdb.DuckDBPyConnection, clients: int, traders: int, days: float, rows: list[Row]
) -> dict[str, Any]:
    """``cancel_rate``, ``withdrawals`` and ``disputes`` as :class:`~.config.SimConfig` takes them."""
    return {
        "cancel_rate": cancel_rate(con, rows),
        "withdrawals": withdrawals(con, clients, traders, days, rows),
        "disputes": disputes(con, rows),
    }
