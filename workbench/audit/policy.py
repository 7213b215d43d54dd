"""How often the scheduler did not assign the production policy's pick: the share of
assignments that deviated, per trader and per day (issue 13), as a risk analyst looks for
favouritism.

The assignments counted are those POLICY_DEVIATION judges (the shared ``audit_policy_assignments``
and ``audit_policy_pick`` tables, ``workbench/models/audit/``): every assignment that broke no
scheduler rule. A deviation is one whose pick is another trader, exactly the check's findings, so
the shares and the findings are one definition. A trader is counted twice over: as the trader
assigned (how many of its orders it should not have had: the favoured) and as the pick (how many
of the orders the policy named it for went to someone else: the passed over).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from ..replay import bulk, store
from . import shared

# One row per judged assignment: its trader, the policy's pick (its own trader unless the pick
# table says otherwise; NULL: nobody was eligible) and the UTC day it was assigned.
_JUDGED = """
SELECT m.event_id, m.trader_id,
       CASE WHEN p.event_id IS NOT NULL THEN p.pick_id WHEN m.self_ok THEN m.trader_id END AS pick_id,
       (a.assigned_at AT TIME ZONE 'UTC')::DATE AS day
FROM audit_policy_assignments m
JOIN (SELECT rowid AS k, assigned_at FROM audit_attempts) a USING (k)
LEFT JOIN audit_policy_pick p ON p.event_id = m.event_id
"""


@dataclass(frozen=True, slots=True)
class DeviationShares:
    """``by_trader``: per trader, ``assigned`` (judged assignments it got), ``deviated`` (of
    those, not the policy's pick), ``share_assigned``; ``picked`` (judged assignments the policy
    named it for), ``passed_over`` (of those, given to someone else), ``share_passed_over``;
    most deviations first. ``by_day``: per UTC day, ``assignments``, ``deviations``, ``share``.
    Shares are None where nothing was counted."""

    by_trader: pl.DataFrame
    by_day: pl.DataFrame


def judged_through(con: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    """The last event POLICY_DEVIATION's stored judgments reach (``policy_judged``, written by
    the full build), which the audit passes as ``policy_from`` so it judges only the assignments
    after it; None where there are none (a database older than them, or whose projections the
    fold wrote) or another workbench's models made them (``judged_by``): every assignment is
    judged."""
    have = con.execute(
        "SELECT 1 FROM duckdb_tables() WHERE table_name = 'policy_judged' AND NOT temporary "
        "AND database_name = current_database()"
    ).fetchall()
    if not have:
        return None
    rows = con.execute("SELECT position, event_id, judged_by FROM policy_judged").fetchall()
    if len(rows) != 1 or rows[0][2] != bulk.judged_by():
        return None  # none, or judged by models that judge otherwise than this workbench's
    return int(rows[0][0]), str(rows[0][1])


def judged_assignments(db: str | Path | duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every assignment POLICY_DEVIATION judges: ``event_id`` (the ``assigned`` event),
    ``trader_id``, ``pick_id`` (the policy's pick; None if nobody was eligible), ``day``."""
    con = db if isinstance(db, duckdb.DuckDBPyConnection) else store.connect(db, read_only=True)
    try:
        shared.prepare(con, ["audit_policy_pick"])
        frame = pl.from_arrow(con.sql(_JUDGED).to_arrow_table())
    finally:
        if con is not db:
            con.close()
    assert isinstance(frame, pl.DataFrame)
    return frame.sort("day", "event_id")


def policy_deviation_shares(db: str | Path | duckdb.DuckDBPyConnection) -> DeviationShares:
    """The share of judged assignments that deviated from the production policy's pick, per
    trader (as the trader assigned and as the pick passed over) and per day."""
    return shares_of(judged_assignments(db))


def shares_of(judged: pl.DataFrame) -> DeviationShares:
    """:func:`policy_deviation_shares` of a frame of :func:`judged_assignments` (a notebook's
    selection of days, say)."""
    dev = judged.with_columns(
        deviated=(pl.col("pick_id").is_not_null() & (pl.col("pick_id") != pl.col("trader_id")))
    )
    as_assigned = dev.group_by(pl.col("trader_id")).agg(
        pl.len().cast(pl.Int64).alias("assigned"),
        pl.col("deviated").sum().cast(pl.Int64).alias("deviated"),
    )
    as_pick = (
        dev.filter(pl.col("pick_id").is_not_null())
        .group_by(pl.col("pick_id").alias("trader_id"))
        .agg(
            pl.len().cast(pl.Int64).alias("picked"),
            pl.col("deviated").sum().cast(pl.Int64).alias("passed_over"),
        )
    )
    counts = ("assigned", "deviated", "picked", "passed_over")
    by_trader = (
        as_assigned.join(as_pick, on="trader_id", how="full", coalesce=True)
        .with_columns(pl.col(c).fill_null(0) for c in counts)
        .with_columns(
            share_assigned=_share("deviated", "assigned"),
            share_passed_over=_share("passed_over", "picked"),
        )
        .select("trader_id", *counts[:2], "share_assigned", *counts[2:], "share_passed_over")
        .sort(pl.col("deviated") + pl.col("passed_over"), "trader_id", descending=[True, False])
    )
    by_day = (
        dev.group_by("day")
        .agg(
            pl.len().cast(pl.Int64).alias("assignments"),
            pl.col("deviated").sum().cast(pl.Int64).alias("deviations"),
        )
        .with_columns(share=_share("deviations", "assignments"))
        .sort("day")
    )
    return DeviationShares(by_trader, by_day)


def _share(part: str, whole: str) -> pl.Expr:
    return pl.when(pl.col(whole) > 0).then(pl.col(part) / pl.col(whole)).otherwise(None)
