"""Ratings recomputed: every published rating beside the figures the catalog's formula gives.

The window counts (catalog 3.7) are taken in SQL from running counts per trader, looked up at both
ends of each window with ``ASOF`` joins (a pair of lookups per rating instead of a scan of the
window); the score is the domain's :func:`workbench.domain.rating.score`, in exact arithmetic,
computed once per distinct set of counts.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

import duckdb
import polars as pl

from ..domain.rating import RatingCounts, score
from ..models import tables_read
from ..models.macros import events_of
from . import shared

#: The check this module computes (the only one in Python: the score needs exact decimals), and
#: its severity; :func:`workbench.models.severity` reads them beside the SQL checks' headers.
CHECK = "RATING_MISMATCH"
SEVERITY = "low"

#: Timestamps the formula counts, per trader: assignments, completions, on-time completions,
#: disputes (of orders the trader completed). A completion is on time if it came by the
#: ``complete_by`` of the acceptance it completed: that of the trader's latest attempt before it.
#: That attempt is almost always the one the completion ended: an attempt ends at the first
#: assignment or ender after it, so one ending at the completion's position (and assigned before
#: it) is the order's latest attempt before the completion, hence the trader's if it is theirs.
#: The search among the trader's earlier attempts is left for the few others.
_STAMPS = f"""
WITH c AS (
    SELECT row, aggregate_id AS order_id, a AS trader_id, pos, occurred_at
    FROM audit_order_payloads WHERE what = 'completed'
),
ended AS (  -- the attempt ending where the completion is, when it is the trader's own
    SELECT c.*, a.complete_by
    FROM c JOIN audit_attempts a
      ON a.order_id = c.order_id AND a.end_pos = c.pos AND a.trader_id = c.trader_id
     AND a.assigned_pos < c.pos
),
searched AS (  -- the others: the trader's latest attempt on the order before the completion
    SELECT c.*, a.complete_by
    FROM (SELECT * FROM c ANTI JOIN ended USING (row)) c
    LEFT JOIN audit_attempts a ON a.order_id = c.order_id AND a.trader_id = c.trader_id AND a.assigned_pos < c.pos
    QUALIFY row_number() OVER (PARTITION BY c.row ORDER BY a.assigned_pos DESC NULLS LAST) = 1
),
c_on_time AS (
    SELECT *, occurred_at <= complete_by AS on_time
    FROM (SELECT * FROM ended UNION ALL SELECT * FROM searched)
),
d AS (
    SELECT o.completed_by AS trader_id, e.occurred_at
    FROM {events_of("payment_order.disputed")} e JOIN payment_orders o ON o.order_id = e.aggregate_id
    WHERE o.completed_by IS NOT NULL
)
SELECT trader_id, assigned_at AS ts, 'a' AS what FROM audit_attempts  -- one row per assignment
UNION ALL SELECT trader_id, occurred_at, 'c' FROM c_on_time
UNION ALL SELECT trader_id, occurred_at, 'o' FROM c_on_time WHERE on_time
UNION ALL SELECT trader_id, occurred_at, 'd' FROM d
"""

RECOMPUTED_COUNTS = f"""
WITH s AS ({_STAMPS}),
running AS (  -- how many of each by each instant: the row number of the last stamp at that instant
    SELECT trader_id, what, ts, row_number() OVER w AS upto
    FROM s
    WINDOW w AS (PARTITION BY trader_id, what ORDER BY ts)
    QUALIFY lead(ts) OVER w IS DISTINCT FROM ts
),
r AS (
    SELECT *, as_of - to_days(window_days) AS since FROM trader_ratings
),
k AS (  -- both ends of each window, for each count, as rows: one lookup does them all
    SELECT r.event_id, r.trader_id, w.what, e.sign, CASE WHEN e.sign = 1 THEN r.as_of ELSE r.since END AS at
    FROM r CROSS JOIN (VALUES ('a'), ('c'), ('o'), ('d')) w(what) CROSS JOIN (VALUES (1), (-1)) e(sign)
),
counted AS (  -- the count at the window's end less the count at its start
    SELECT k.event_id, k.what, sum(k.sign * coalesce(u.upto, 0)) AS n
    FROM k ASOF LEFT JOIN running u ON u.trader_id = k.trader_id AND u.what = k.what AND k.at >= u.ts
    GROUP BY ALL
)
SELECT r.trader_id, r.seq, r.as_of, r.window_days, r.event_id,
       r.assignments, r.completed, r.on_time, r.disputed, r.score,
       sum(n) FILTER (WHERE what = 'a')::INTEGER AS assignments_recomputed,
       sum(n) FILTER (WHERE what = 'c')::INTEGER AS completed_recomputed,
       sum(n) FILTER (WHERE what = 'o')::INTEGER AS on_time_recomputed,
       sum(n) FILTER (WHERE what = 'd')::INTEGER AS disputed_recomputed
FROM r JOIN counted USING (event_id)
GROUP BY ALL
ORDER BY r.trader_id, r.seq
"""


@functools.cache
def reads() -> frozenset[str]:
    """The tables the check reads (derived from its SQL, as the models' are): the audit builds
    the shared ones before it."""
    return tables_read(RECOMPUTED_COUNTS)


def recompute(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every published rating with its recomputed counts and score side by side, and ``matches``.

    Columns: trader_id, seq, as_of, window_days, event_id, the published ``assignments``,
    ``completed``, ``on_time``, ``disputed``, ``score``, the same with ``_recomputed``, and
    ``matches`` (every figure equal)."""
    shared.prepare(con, reads())  # unless the audit has them
    frame = pl.from_arrow(con.sql(RECOMPUTED_COUNTS).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    cache: dict[tuple[Any, ...], Decimal] = {}  # counts repeat: score each set once
    scores = [
        cache[k] if k in cache else cache.setdefault(k, _score(*k))
        for k in zip(
            frame["assignments_recomputed"],
            frame["completed_recomputed"],
            frame["on_time_recomputed"],
            frame["disputed_recomputed"],
            strict=True,
        )
    ]
    frame = frame.with_columns(
        pl.Series("score_recomputed", scores, dtype=pl.Decimal(18, 6)),
    )
    same = [
        pl.col(f) == pl.col(f"{f}_recomputed")
        for f in ("assignments", "completed", "on_time", "disputed", "score")
    ]
    return frame.with_columns(pl.all_horizontal(same).alias("matches"))


def _score(a: Any, c: Any, o: Any, d: Any) -> Decimal:
    return score(RatingCounts(int(a or 0), int(c or 0), int(o or 0), int(d or 0)))


def findings(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """RATING_MISMATCH rows (the audit's columns) for every rating that does not match."""
    out = []
    for r in recompute(con).filter(~pl.col("matches")).iter_rows(named=True):
        figures = ", ".join(
            f"{f} {r[f]} (formula {r[f + '_recomputed']})"
            for f in ("assignments", "completed", "on_time", "disputed", "score")
            if r[f] != r[f + "_recomputed"]
        )
        out.append(
            {
                "check": CHECK,
                "subject": f"trader_rating:{r['trader_id']}",
                "event_id": r["event_id"],
                "evidence": [r["event_id"]],
                "amount_delta": None,
                "currency": None,
                "detail": f"rating seq {r['seq']} as of {r['as_of']}: {figures}",
            }
        )
    return out
