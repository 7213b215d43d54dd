"""How long orders sit in review: one row per review, and a summary per reason (issue 13).

A review is what REVIEW_OVERDUE judges (the ``order_reviews`` projection, which the replay keeps:
``workbench/models/projections/order_reviews.sql``, and the fold's ``payment_order.Review``):
from the ``review_started`` that put the order in ``in_review`` to the order's next status
event. So the notebook's distribution and the check's findings are one definition: a review
here longer than the threshold is a REVIEW_OVERDUE finding.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from ..replay import store
from .run import _ref_time

_TIMES = """
SELECT order_id, reason, started_at,
       CASE WHEN ended_at <= ref THEN ended_at END AS ended_at,
       CASE WHEN ended_at <= ref THEN end_kind END AS ended_by,
       epoch(CASE WHEN ended_at <= ref THEN ended_at ELSE ref END - started_at) / 3600 AS hours,
       ended_at IS NULL OR ended_at > ref AS still_open,
       start_event_id, CASE WHEN ended_at <= ref THEN end_event_id END AS end_event_id
FROM order_reviews, (SELECT {ref} AS ref)
WHERE started_at <= ref
ORDER BY started_at, order_id
"""


def review_times(
    db: str | Path | duckdb.DuckDBPyConnection, as_of: datetime | None = None
) -> pl.DataFrame:
    """Every review of an order: ``order_id``, ``reason``, ``started_at``, ``ended_at`` (None
    while open), ``ended_by`` (the kind that ended it), ``hours`` in review (up to the audit's
    now while open), ``still_open``, and the two events' ids.

    "Now" is the audit's (``as_of``, else the latest ``recorded_at`` in the platform's era): a
    review that started after it is left out, one that ended after it is still open then."""
    con = db if isinstance(db, duckdb.DuckDBPyConnection) else store.connect(db, read_only=True)
    try:
        sql = _TIMES.format(ref=_ref_time(con, as_of))
        frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    finally:
        if con is not db:
            con.close()
    assert isinstance(frame, pl.DataFrame)
    return frame


def review_time_summary(times: pl.DataFrame) -> pl.DataFrame:
    """Per reason (from :func:`review_times`): ``reviews``, ``p50_hours``, ``p90_hours``,
    ``max_hours`` (open reviews counted at their age so far) and ``still_open``; sorted by
    reason. Percentiles are linear interpolations, as ``numpy.percentile``'s default."""
    return (
        times.group_by("reason")
        .agg(
            pl.len().cast(pl.Int64).alias("reviews"),
            pl.col("hours").quantile(0.5, "linear").alias("p50_hours"),
            pl.col("hours").quantile(0.9, "linear").alias("p90_hours"),
            pl.col("hours").max().alias("max_hours"),
            pl.col("still_open").sum().cast(pl.Int64).alias("still_open"),
        )
        .sort("reason", nulls_last=True)
    )
