"""What the calibration reads from a replay database, and the time helpers it reads with.

Why apart: the SQL over the replay's tables (catalog sections 3 and 4) is the one place the
calibration depends on the projection's schema; everything after works on Polars frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import polars as pl

DAY = 86_400.0
_US = 1_000_000


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
ORDER BY a.order_id, a.attempt
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
ORDER BY r.receipt_id
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


def _midnight(t: float) -> datetime:
    d = _when(t)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
