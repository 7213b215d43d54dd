"""What changed since the last audit, in a notebook: two recorded audit runs and
:func:`workbench.audit.since_last` between them.

Why a copy: a notebook is also a test (strict nbval compares every output with the committed
one), and what a recorded run calls ``new``, ``reopened`` or ``resolved`` depends on every run
recorded before it. So :func:`record_runs` records its runs in a fresh copy of the database
made each time (its own analyst database, no earlier runs): first as the platform stood at the
start of its last day, then now. The comparison is then the same on every run and every clone,
and run ids and wall-clock times stay out of the outputs (:func:`changes_line`). The triage
shown beside the findings is the real database's (:meth:`Runs.findings`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

import polars as pl

from ..audit import AuditResult, audit, since_last, triage_log
from ..audit.changes import SinceLast
from ..replay import snapshots, store


@dataclass(frozen=True)
class Runs:
    """The runs recorded in ``copy`` (a fresh copy of ``db``): ``earlier`` as of ``as_of``,
    then ``latest`` (the platform now)."""

    db: Path
    copy: Path
    as_of: datetime
    earlier: AuditResult
    latest: AuditResult

    def findings(self) -> pl.DataFrame:
        """The latest run's findings with the triage recorded for ``db`` (not the copy's)."""
        return triage_log.with_triage(self.db, self.latest.findings)

    def since(self) -> SinceLast:
        """The latest run against the earlier one, with the copy's triage."""
        return since_last(self.copy, self.latest.run_id)


def start_of_last_day(db: str | Path) -> datetime:
    """Midnight (UTC) of the last day an event of ``db`` occurred on."""
    con = store.connect(db, read_only=True)
    try:
        last = con.execute("SELECT max(occurred_at) FROM events").fetchall()[0][0]
    finally:
        con.close()
    if last is None:
        raise ValueError(f"{db}: no events")
    return datetime.combine(last.astimezone(UTC).date(), time(), tzinfo=UTC)


def fresh_copy(db: str | Path, folder: str | Path) -> Path:
    """``db`` copied into ``folder`` (same name), with no analyst database beside it: no
    recorded runs, no triage. Replaces an earlier copy."""
    source, out = Path(db), Path(folder)
    if out.resolve() == source.parent.resolve():
        raise ValueError(f"{out}: the copy must go to another folder than {source}")
    out.mkdir(parents=True, exist_ok=True)
    copy = out / source.name
    for old in (copy, copy.with_name(copy.name + ".wal"), snapshots.analyst_db(copy)):
        old.unlink(missing_ok=True)
    snapshots_dir = copy.with_name(copy.name + ".snapshots")
    if snapshots_dir.exists():
        shutil.rmtree(snapshots_dir)
    shutil.copyfile(source, copy)
    return copy


def record_runs(db: str | Path, folder: str | Path, as_of: datetime | None = None) -> Runs:
    """Two audit runs of ``db`` recorded in a fresh copy of it in ``folder``
    (:func:`fresh_copy`): as of ``as_of`` (default :func:`start_of_last_day`), then now."""
    copy = fresh_copy(db, folder)
    when = start_of_last_day(copy) if as_of is None else as_of
    earlier = audit(copy, as_of=when)
    latest = audit(copy)
    return Runs(Path(db), copy, when, earlier, latest)


def changes_line(since: SinceLast, as_of: datetime) -> str:
    """One sentence of what changed, without run ids or wall-clock times (a notebook's output
    must be the same on every run)."""
    if since.previous_run_id is None:
        return "no earlier recorded run to compare with: every finding is new"
    counts = ", ".join(f"{n} {c}" for c, n in since.counts().items())
    return f"since the audit as of {as_of:%Y-%m-%d %H:%M} UTC: {counts}"


#: The columns :func:`changes_table` keeps, in order.
CHANGE_COLUMNS = (
    "change",
    "finding_id",
    "check",
    "severity",
    "subject",
    "amount_delta",
    "previous_amount_delta",
    "currency",
    "triage_status",
    "triage_note",
    "triage_changed",
)


def changes_table(findings: pl.DataFrame) -> pl.DataFrame:
    """Findings listed by :func:`since_last` (``SinceLast.findings``, or a cut of them) for
    reading: the change, the finding, its money now and before, its triage
    (:data:`CHANGE_COLUMNS`), in their order."""
    return findings.select(CHANGE_COLUMNS)
