"""What changed since the last audit: a recorded run compared with the run recorded before it.

Why from the stored runs: a recorded run already says which findings are ``new``,
``reopened`` and ``resolved`` (:func:`workbench.audit.run.record_run` marks them, the one place
that rule lives), and the resolved ones exist only there, since they are no longer among the
current findings. What a status cannot say is that a finding still open now reads differently
(another amount at stake or currency, :data:`.triage_log.CHANGED_BY`): that is
``changed``, found by comparing the run with the one before it. Each listed finding carries its
triage state, so a waived finding that came back changed stands out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..replay import readers, snapshots
from . import triage_log
from .run import FINDING_COLUMNS

#: The kinds of change, in the order they are listed.
CHANGES = ("new", "reopened", "changed", "resolved")

#: The finding as the run before saw it, beside each listed finding.
PREVIOUS_COLUMNS = tuple(f"previous_{c}" for c in triage_log.FINGERPRINT)


@dataclass(frozen=True)
class SinceLast:
    """Run ``run_id`` compared with ``previous_run_id`` (``None``: the first recorded run, so
    nothing to compare with and ``findings`` is empty). ``findings``: a ``change`` column
    (:data:`CHANGES`), the finding's columns as run ``run_id`` stored them (a resolved finding:
    as last seen), its values in the run before (:data:`PREVIOUS_COLUMNS`) and its triage
    (:data:`.triage_log.TRIAGE_COLUMNS`)."""

    db: Path
    run_id: int
    previous_run_id: int | None
    runs: dict[int, dict[str, Any]]
    findings: pl.DataFrame

    def counts(self) -> dict[str, int]:
        """How many findings of each change (every kind, zeros included)."""
        have = dict(self.findings.group_by("change").len().iter_rows())
        return {c: int(have.get(c, 0)) for c in CHANGES}

    def line(self) -> str:
        """One line for a person: what run ``run_id`` changed, or that nothing came before."""
        if self.previous_run_id is None:
            return (
                f"audit run {self.run_id} is the first recorded run of {self.db}: no earlier run "
                "to compare with (every finding is new)"
            )
        counts = ", ".join(f"{n} {c}" for c, n in self.counts().items())
        return (
            f"audit run {self.run_id}{_when(self.runs[self.run_id])} since run "
            f"{self.previous_run_id}{_when(self.runs[self.previous_run_id])}: {counts}"
        )


def since_last(db: str | Path, run_id: int | None = None) -> SinceLast:
    """What recorded audit run ``run_id`` (default: the latest) found that the run recorded
    before it did not, or no longer found: new, reopened, changed and resolved findings, each
    with its triage state. ``workbench audit --since-last`` records a run and prints this;
    in a notebook, ``since_last(db, audit(db).run_id)``."""
    path = Path(db)
    if not snapshots.analyst_db(path).exists():
        raise ValueError(f"{path}: no recorded audit run (run `workbench audit --db {path}`)")
    con = readers.analyst_reader(path)
    try:
        have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "audit_runs" not in have:
            raise ValueError(f"{path}: no recorded audit run (run `workbench audit --db {path}`)")
        rows = con.sql("SELECT * FROM audit_runs ORDER BY audit_run_id").to_arrow_table()
        runs = {int(r["audit_run_id"]): r for r in rows.to_pylist()}
        if not runs:
            raise ValueError(f"{path}: no recorded audit run (run `workbench audit --db {path}`)")
        run = max(runs) if run_id is None else int(run_id)
        if run not in runs:
            raise ValueError(f"{path}: no audit run {run} (recorded runs: 1..{max(runs)})")
        previous = max((r for r in runs if r < run), default=None)
        previous_sql = "NULL" if previous is None else str(previous)
        table = con.sql(
            f"""SELECT c.*, {", ".join(f"p.{c} AS previous_{c}" for c in triage_log.FINGERPRINT)},
                   p.finding_id IS NOT NULL AS _in_previous
            FROM audit_findings c LEFT JOIN (
                SELECT * FROM audit_findings
                WHERE audit_run_id = {previous_sql} AND status <> 'resolved') p USING (finding_id)
            WHERE c.audit_run_id = {run}"""
        ).to_arrow_table()
    finally:
        con.close()
    stored = pl.from_arrow(table)
    assert isinstance(stored, pl.DataFrame)
    if "process" not in stored.columns:  # runs an older version recorded, not yet migrated
        stored = stored.with_columns(pl.lit(None, pl.String).alias("process"))
    if previous is None:
        stored = stored.clear()
    changed = (
        (pl.col("status") == "open")
        & pl.col("_in_previous")
        & triage_log.fingerprint_differs("previous_")
    )
    found = (
        stored.with_columns(
            pl.when(pl.col("status").is_in(["new", "reopened", "resolved"]))
            .then(pl.col("status"))
            .when(changed)
            .then(pl.lit("changed"))
            .otherwise(None)
            .alias("change")
        )
        .filter(pl.col("change").is_not_null())
        .sort(
            pl.col("change").replace_strict(
                {c: i for i, c in enumerate(CHANGES)}, return_dtype=pl.Int8
            ),
            "check",
            "subject",
            "event_id",
        )
    )
    found = found.select(
        "change", *FINDING_COLUMNS, "status", "first_seen", "age_runs", *PREVIOUS_COLUMNS
    )
    return SinceLast(path, run, previous, runs, triage_log.with_triage(path, found))


def _when(run: dict[str, Any]) -> str:
    """`` (2026-12-01 10:00 UTC, as of 2026-11-04 00:00 UTC)``: when a run was made, and the
    time it audited the platform at if not its latest."""
    parts = [_utc(run.get("started_at"))]
    if run.get("as_of") is not None:
        parts.append(f"as of {_utc(run['as_of'])}")
    return " (" + ", ".join(p for p in parts if p) + ")"


def _utc(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")
