"""``workbench audit``: every check over a replayed database, as findings with stable ids.

A finding's id is a hash of its check, subject and offending event, so the same break has the
same id in every run. Each run is stored (``audit_runs``, ``audit_findings``, in the analyst
database beside the projections, so new snapshots and replays keep them) and compared with
the previous one: a finding is ``new``, ``open`` (seen before; ``age_runs`` and ``first_seen``
say since when), ``resolved`` (in the previous run, gone now) or ``reopened`` (resolved once,
back again).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from .. import models
from ..domain.clock import ERA_END, ERA_START
from ..domain.receipt import REVIEW_OVERDUE
from ..domain.violations import CHECK_CODES
from ..progress import no_progress_bar
from ..replay import readers, store
from ..replay.engine import DEFAULT_MEMORY_LIMIT
from ..statements import rules as statement_rules
from ..statements.readable import ensure_tables
from . import ratings, shared, triage_log
from .plan import plan
from .policy import judged_through

#: The columns every check returns (:data:`workbench.models.FINDING_COLUMNS`).
COLUMNS = models.FINDING_COLUMNS

FINDING_COLUMNS = (
    "finding_id",
    "check",
    "severity",
    "subject",
    "event_id",
    "amount_delta",
    "currency",
    "detail",
    "evidence",
    "process",
)

_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "finding_id": pl.String,
    "check": pl.String,
    "severity": pl.String,
    "subject": pl.String,
    "event_id": pl.String,
    "amount_delta": pl.Int64,
    "currency": pl.String,
    "detail": pl.String,
    "evidence": pl.List(pl.String),
    "process": pl.String,
}

DDL = (
    """CREATE TABLE IF NOT EXISTS audit_runs (
        audit_run_id BIGINT, started_at TIMESTAMPTZ, seconds DOUBLE, as_of TIMESTAMPTZ,
        events BIGINT, findings BIGINT, new BIGINT, open BIGINT, resolved BIGINT, reopened BIGINT)""",
    """CREATE TABLE IF NOT EXISTS audit_findings (
        audit_run_id BIGINT, finding_id VARCHAR, "check" VARCHAR, severity VARCHAR, subject VARCHAR,
        event_id VARCHAR, amount_delta BIGINT, currency VARCHAR, detail VARCHAR, evidence VARCHAR[],
        status VARCHAR, first_seen BIGINT, age_runs BIGINT, process VARCHAR)""",
    # a database an older version wrote has no `process` column: added, NULL for its runs
    "ALTER TABLE audit_findings ADD COLUMN IF NOT EXISTS process VARCHAR",
)


def finding_id(check: str, subject: str, event_id: str) -> str:
    """Stable across runs: the same break (check, subject, offending event) has the same id."""
    digest = hashlib.sha256(f"{check}\x1f{subject}\x1f{event_id}".encode()).hexdigest()
    return f"F-{digest[:12]}"


@dataclass
class AuditResult:
    """What one audit run found; ``findings`` is a Polars frame (``FINDING_COLUMNS``, status,
    ``first_seen``, ``age_runs`` and the triage columns, :data:`.triage_log.TRIAGE_COLUMNS`)."""

    findings: pl.DataFrame
    run_id: int | None
    seconds: float
    timings: dict[str, float]

    def counts(self) -> dict[str, int]:
        return dict(self.findings.group_by("check").len().sort("check").iter_rows())


def _ref_time(con: duckdb.DuckDBPyConnection, as_of: datetime | None) -> str:
    """The audit's "now": ``as_of``, else when the event store last wrote an event (the latest
    ``recorded_at`` inside the platform's era). Never an event's ``occurred_at``: that is a
    service's claim, and one wrong clock (a year-9999 event) would make every open deadline
    look missed; a ``recorded_at`` outside the era is a broken clock too (``CLOCK_SKEW``)."""
    if as_of is not None:
        return f"'{as_of.astimezone(UTC).isoformat()}'::TIMESTAMPTZ"
    return (
        "(SELECT max(recorded_at) FROM events WHERE recorded_at >= "
        f"'{ERA_START.isoformat()}'::TIMESTAMPTZ AND recorded_at < "
        f"'{ERA_END.isoformat()}'::TIMESTAMPTZ)"
    )


def _restrict(con: duckdb.DuckDBPyConnection, as_of: datetime) -> str:
    """Make ``con`` see the database as it was at ``as_of``: the events that had occurred by
    then, replayed into an in-memory catalog of the same connection (the same projections a
    replay of that export would have built); returns the catalog to go back to."""
    from ..replay import bulk, typed

    src = str(con.execute("SELECT current_database()").fetchall()[0][0])
    quoted = '"' + src.replace('"', '""') + '"'
    con.execute("ATTACH ':memory:' AS as_of").fetchall()
    con.execute("USE as_of").fetchall()
    store.create_schema(con)
    ts = f"'{as_of.astimezone(UTC).isoformat()}'::TIMESTAMPTZ"
    con.execute(
        f"INSERT INTO events SELECT * FROM {quoted}.main.events WHERE occurred_at <= {ts}"
    ).fetchall()
    typed.add(con, "events")  # their typed payloads, as a replay stores them with the events
    con.execute(
        f"INSERT INTO quarantine SELECT * FROM {quoted}.main.quarantine WHERE event_id IS NULL "
        f"OR event_id NOT IN (SELECT event_id FROM {quoted}.main.events WHERE occurred_at > {ts})"
    ).fetchall()
    bulk.build(con)
    return quoted


def _unrestrict(con: duckdb.DuckDBPyConnection, back: str) -> None:
    con.execute(f"USE {back}").fetchall()
    con.execute("DETACH as_of").fetchall()


def run_checks(
    con: duckdb.DuckDBPyConnection,
    as_of: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    statement_window_days: int = statement_rules.WINDOW_DAYS,
    review_overdue: timedelta = REVIEW_OVERDUE,
    production_policy: bool = True,
    checks: Collection[str] | None = None,
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Every check over ``con`` (:func:`plan`); returns the findings (sorted, with ids) and
    seconds per check and per shared table built. ``statement_window_days`` is the statement
    matching's value-date window (:mod:`workbench.statements.rules`); a connection that has no
    statement tables gets them empty (the statement checks then find nothing).
    ``checks``: only these codes are run (and only the shared tables they read are built); all
    when None."""
    chosen = selected(checks, production_policy)
    ref = _ref_time(con, as_of)
    context = {
        "ref_time": ref,
        "statement_window_days": statement_rules.window_days(statement_window_days),
        # --as-of: the statement lines booked by then, the statement days ended by then
        "statement_as_of": ref if as_of is not None else "NULL::TIMESTAMPTZ",
        "review_overdue": models.macros.interval(review_threshold(review_overdue)),
        # POLICY_DEVIATION: the stored judgments, and only the assignments after them judged
        "policy_from": judged_through(con),
    }
    by_code = models.checks()
    severity = models.severity()
    frames: list[pl.DataFrame] = []
    timings: dict[str, float] = {}
    no_progress_bar(con)
    ensure_tables(con)
    live = _live(con, by_code) & chosen
    wanted = set(
        shared.needs(
            t
            for code in live
            for t in (ratings.reads() if code == ratings.CHECK else by_code[code].reads)
        )
    )
    have = shared.temporary(con)
    for step in plan():
        if progress is not None:
            progress(step.check)
        for table, done in zip(step.build, step.drop_after_build, strict=True):
            start = time.perf_counter()
            if table not in have and table in wanted:
                shared.build(con, table, **context)
            for read in done:  # no build after this one reads them
                con.execute(f"DROP TABLE IF EXISTS {read}").fetchall()
            timings[table] = time.perf_counter() - start
        for table in step.drop_before:
            con.execute(f"DROP TABLE IF EXISTS {table}").fetchall()
        start = time.perf_counter()
        if step.check not in live:
            frame = pl.DataFrame(schema={c: _SCHEMA[c] for c in COLUMNS})
        elif step.check == ratings.CHECK:
            frame = pl.DataFrame(ratings.findings(con), schema={c: _SCHEMA[c] for c in COLUMNS})
        else:
            names = ", ".join(f'"{c}"' for c in COLUMNS)
            sql = by_code[step.check].sql(**context)
            arrow = pl.from_arrow(con.sql(f"SELECT * FROM ({sql}) AS t({names})").to_arrow_table())
            assert isinstance(arrow, pl.DataFrame)
            frame = arrow.cast({"amount_delta": pl.Int64}, strict=False)
        for table in step.drop_after:
            con.execute(f"DROP TABLE IF EXISTS {table}").fetchall()
        frames.append(frame)
        timings[step.check] = time.perf_counter() - start
    out = pl.concat([f.select([pl.col(c).cast(_SCHEMA[c]) for c in COLUMNS]) for f in frames])
    # The offending event first, then the rest of the evidence once each, in the order given.
    out = out.with_columns(
        pl.struct("event_id", "evidence")
        .map_elements(
            lambda r: list(dict.fromkeys([r["event_id"], *(r["evidence"] or [])])),
            return_dtype=pl.List(pl.String),
        )
        .alias("evidence")
    )
    out = out.with_columns(
        pl.struct("check", "subject", "event_id")
        .map_elements(
            lambda r: finding_id(r["check"], r["subject"], r["event_id"]), return_dtype=pl.String
        )
        .alias("finding_id"),
        pl.col("check").replace_strict(severity, return_dtype=pl.String).alias("severity"),
    )
    out = out.unique(subset=["finding_id"], keep="first", maintain_order=True)
    start = time.perf_counter()
    out = with_process(con, out)
    timings["process"] = time.perf_counter() - start
    return out.select(FINDING_COLUMNS).sort("check", "subject", "event_id"), timings


def selected(checks: Collection[str] | None = None, production_policy: bool = True) -> set[str]:
    """The check codes an audit runs: ``checks`` (all when None), refused with the unknown codes
    named; without POLICY_DEVIATION when the history did not run under the production policy
    (the pick it judges against is not the one the history ran under)."""
    codes = set(CHECK_CODES) if checks is None else set(checks)
    unknown = sorted(codes - set(CHECK_CODES))
    if unknown:
        raise ValueError(f"unknown check code(s) {unknown}; known: {sorted(CHECK_CODES)}")
    if not production_policy:
        codes.discard("POLICY_DEVIATION")
    return codes


def review_threshold(value: object) -> timedelta:
    """``value`` as REVIEW_OVERDUE's threshold, refused unless a ``timedelta`` of zero or more (it
    is written into SQL; a negative one would call every review overdue)."""
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ValueError(f"the review threshold must be a duration >= 0, not {value!r}")
    return value


def with_process(con: duckdb.DuckDBPyConnection, findings: pl.DataFrame) -> pl.DataFrame:
    """``findings`` with ``process``: the ``correlation_id`` of each finding's offending event
    (NULL when it has none, or is no event: a quarantined row, a statement line), so every
    finding links to its process (``workbench explain --process``). One join on ``event_id``."""
    ids = findings.select("event_id").unique().to_arrow()
    con.register("_finding_events", ids)
    try:
        links = pl.from_arrow(
            con.sql(
                "SELECT f.event_id, e.correlation_id AS process FROM _finding_events f "
                "JOIN events e USING (event_id)"
            ).to_arrow_table()
        )
    finally:
        con.unregister("_finding_events")
    assert isinstance(links, pl.DataFrame)
    links = links.unique("event_id").cast({"event_id": pl.String, "process": pl.String})
    return findings.join(links, on="event_id", how="left", maintain_order="left")


def _live(con: duckdb.DuckDBPyConnection, checks: dict[str, models.Model]) -> set[str]:
    """The checks to run: all but those that need a table with no row (``-- needs:``, the
    statement checks without statement lines), which could find nothing and would cost their
    planning."""
    empty: dict[str, bool] = {}
    for m in checks.values():
        for t in m.needs:
            if t not in empty:
                empty[t] = not con.execute(f"SELECT EXISTS (SELECT 1 FROM {t})").fetchall()[0][0]
    return {ratings.CHECK} | {
        code for code, m in checks.items() if not any(empty[t] for t in m.needs)
    }


def _require_a_replay(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """An audit of a database no replay has finished into would report "0 findings" about
    nothing: refused, naming what to do."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    runs = (
        int(con.execute("SELECT count(*) FROM replay_runs").fetchall()[0][0])
        if "replay_runs" in tables
        else 0
    )
    if "events" not in tables or runs == 0:
        raise ValueError(
            f"{path}: no replay has completed into this database, so there is nothing to audit "
            f"(run `workbench replay SOURCE --db {path}`)"
        )
    missing = store.out_of_date(con)
    if missing:
        raise ValueError(
            f"{path} was built by an older workbench, without tables or columns the checks read "
            f"({', '.join(missing)}): replay into it once more (`workbench replay SOURCE --db "
            f"{path}`, or a catch-up from the stream) to add them; nothing else changes"
        )


def audit(
    db: str | Path,
    *,
    as_of: datetime | None = None,
    record: bool = True,
    progress: Callable[[str], None] | None = None,
    statement_window_days: int = statement_rules.WINDOW_DAYS,
    review_overdue: timedelta = REVIEW_OVERDUE,
    production_policy: bool = True,
    checks: Collection[str] | None = None,
) -> AuditResult:
    """Audit a replayed database; returns the findings as a Polars frame.

    ``as_of`` audits the platform as it stood then (events that occurred after it are left out
    and deadlines are judged at that time). ``record`` stores the run and marks each finding new,
    open, resolved or reopened against the previous runs (it needs write access). Each finding
    carries its latest triage (:func:`workbench.audit.triage`), recorded or not. The statement
    checks compare the statements imported into the analyst database with the payouts, with a
    value-date window of ``statement_window_days`` (:mod:`workbench.statements.rules`).
    ``review_overdue`` is how long an order may stay in review before REVIEW_OVERDUE reports it
    (default :data:`workbench.domain.receipt.REVIEW_OVERDUE`, 24 h). ``production_policy``:
    the history ran under the production assignment policy (the catalog's), which
    POLICY_DEVIATION judges every assignment against; ``False`` for a simulated history of
    another policy, which deviates by design: that check is then not run. ``checks``: run only
    these codes (all when None); a recorded run then resolves only findings of the checks it
    ran (a finding of a check not run is not gone, it was not looked for)."""
    statement_rules.window_days(statement_window_days)
    review_threshold(review_overdue)
    ran = selected(checks, production_policy)
    started = time.perf_counter()
    path = Path(db)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such database (run `workbench replay SOURCE --db {path}` first)"
        )
    # The projections are only read (a follower may write the file meanwhile: the reader sees
    # its newest snapshot); the run is recorded in the analyst database beside them.
    con = store.connect(path, read_only=True, memory_limit=DEFAULT_MEMORY_LIMIT)
    try:
        _require_a_replay(con, path)
        back = _restrict(con, as_of) if as_of is not None else None
        try:
            findings, timings = run_checks(
                con,
                as_of,
                progress,
                statement_window_days=statement_window_days,
                review_overdue=review_overdue,
                production_policy=production_policy,
                checks=ran,
            )
            events = int(con.execute("SELECT count(*) FROM events").fetchall()[0][0])
        finally:
            if back is not None:
                _unrestrict(con, back)
        run_id = None
        if record:
            findings, run_id = record_run(
                path, con, findings, as_of, events, time.perf_counter() - started, ran
            )
        else:
            findings = findings.with_columns(
                pl.lit("new").alias("status"),
                pl.lit(None, pl.Int64).alias("first_seen"),
                pl.lit(1, pl.Int64).alias("age_runs"),
            )
        findings = triage_log.with_triage(path, findings)  # kept apart from the runs, by id
        return AuditResult(findings, run_id, time.perf_counter() - started, timings)
    finally:
        con.close()


def record_run(
    db: Path,
    projections: duckdb.DuckDBPyConnection,
    findings: pl.DataFrame,
    as_of: datetime | None,
    events: int,
    seconds: float,
    ran: Collection[str] | None = None,
) -> tuple[pl.DataFrame, int]:
    """Store a run in the analyst database beside ``db`` (see
    :func:`workbench.replay.snapshots.analyst_db`), carrying over the runs an older version
    stored in the projections themselves, once. ``ran``: the checks this run ran (all when
    None); only their earlier findings can be resolved by it."""
    analyst = readers.analyst_writer(db)
    try:
        for ddl in DDL:
            analyst.execute(ddl).fetchall()
        _carry_over(projections, analyst)
        return _record(analyst, findings, as_of, events, seconds, ran)
    finally:
        analyst.close()


def _carry_over(projections: duckdb.DuckDBPyConnection, analyst: duckdb.DuckDBPyConnection) -> None:
    """Audit runs an older version stored in the projections' own file, copied into an analyst
    database that has none yet (nothing is lost by the move)."""
    if analyst.execute("SELECT count(*) FROM audit_runs").fetchall()[0][0]:
        return
    catalog = str(projections.execute("SELECT current_database()").fetchall()[0][0])
    main = {
        r[0]
        for r in projections.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND NOT temporary",
            [catalog],
        ).fetchall()
    }
    quoted = '"' + catalog.replace('"', '""') + '"'
    for name in ("audit_runs", "audit_findings"):
        if name in main:
            rows = projections.execute(f"SELECT * FROM {quoted}.main.{name}").to_arrow_table()
            analyst.register("_old", rows)
            try:
                analyst.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _old").fetchall()
            finally:
                analyst.unregister("_old")


def _record(
    con: duckdb.DuckDBPyConnection,
    findings: pl.DataFrame,
    as_of: datetime | None,
    events: int,
    seconds: float,
    ran: Collection[str] | None = None,
) -> tuple[pl.DataFrame, int]:
    looked_for = set(CHECK_CODES) if ran is None else set(ran)
    for ddl in DDL:
        con.execute(ddl).fetchall()
    con.execute("BEGIN TRANSACTION").fetchall()
    try:
        run_id = int(
            con.execute("SELECT coalesce(max(audit_run_id), 0) + 1 FROM audit_runs").fetchall()[0][
                0
            ]
        )
        seen = con.sql(
            'SELECT finding_id, first_seen, status, "check" FROM ('
            "SELECT finding_id, min(audit_run_id) OVER (PARTITION BY finding_id) AS first_seen, status, "
            '"check", row_number() OVER (PARTITION BY finding_id ORDER BY audit_run_id DESC) AS k '
            "FROM audit_findings) WHERE k = 1"
        ).fetchall()
        last = {fid: (first, status) for fid, first, status, _ in seen}
        checked = {fid for fid, _, _, check in seen if check in looked_for}
        statuses, firsts, ages = [], [], []
        for fid in findings["finding_id"]:
            prev = last.get(fid)
            if prev is None:
                statuses.append("new")
                firsts.append(run_id)
            else:
                statuses.append("reopened" if prev[1] == "resolved" else "open")
                firsts.append(prev[0])
            ages.append(run_id - firsts[-1] + 1)
        findings = findings.with_columns(
            pl.Series("status", statuses, pl.String),
            pl.Series("first_seen", firsts, pl.Int64),
            pl.Series("age_runs", ages, pl.Int64),
        )
        current = set(findings["finding_id"])
        resolved = [  # a finding of a check this run did not run was not looked for
            fid
            for fid, (_, status) in last.items()
            if status != "resolved" and fid not in current and fid in checked
        ]
        con.register("_f", findings.with_columns(pl.lit(run_id).alias("audit_run_id")).to_arrow())
        con.execute(
            'INSERT INTO audit_findings SELECT audit_run_id, finding_id, "check", severity, subject, '
            "event_id, amount_delta, currency, detail, evidence, status, first_seen, age_runs, "
            "process FROM _f"
        ).fetchall()
        con.unregister("_f")
        if resolved:
            con.execute(
                f"""INSERT INTO audit_findings
                SELECT {run_id}, finding_id, "check", severity, subject, event_id, amount_delta, currency,
                       detail, evidence, 'resolved', first_seen, {run_id} - first_seen + 1, process
                FROM audit_findings WHERE audit_run_id < {run_id}
                  AND finding_id IN (SELECT unnest(?::VARCHAR[]))
                QUALIFY row_number() OVER (PARTITION BY finding_id ORDER BY audit_run_id DESC) = 1""",
                [resolved],
            ).fetchall()
        counts = {s: statuses.count(s) for s in ("new", "open", "reopened")}
        con.execute(
            "INSERT INTO audit_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                datetime.now(UTC),
                seconds,
                as_of,
                events,
                findings.height,
                counts["new"],
                counts["open"],
                len(resolved),
                counts["reopened"],
            ],
        ).fetchall()
        con.execute("COMMIT").fetchall()
    except BaseException:
        con.execute("ROLLBACK").fetchall()
        raise
    return findings, run_id
