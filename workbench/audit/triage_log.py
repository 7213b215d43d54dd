"""Triage: an analyst's judgement of a finding (``reviewed``, ``waived``, ``escalated`` or
``fixed``), with a note, who and when, kept across replays and re-audits.

Why it lives where it does: triage is an analyst's write, so it goes to the analyst database
beside the projections (:func:`workbench.replay.snapshots.analyst_db`), with the audit runs: a
replay, a full re-replay, a new read snapshot or a live follower never touches it. It is keyed
by the stable finding id (:func:`workbench.audit.finding_id`), so it follows the same break from
run to run, and it is append-only (``audit_triage``): every judgement is kept, and the latest
one is the finding's triage state.

Each judgement keeps the finding as the last recorded audit run saw it (:data:`FINGERPRINT`:
amount at stake, currency and detail). A finding that comes back with another amount at stake
or currency (:data:`CHANGED_BY`) is flagged ``triage_changed``: a waiver given for a 1.00 RUB
break never silently covers a 500.000000 USDT one. The detail is kept to show what it said,
not compared: some details name the audit's "now" or a position that moves with later data
while the break stays the same, and a flag raised on every replay would teach people to
ignore it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ..replay import readers, snapshots

#: What an analyst may say about a finding.
STATUSES = ("reviewed", "waived", "escalated", "fixed")

#: What a judgement was about: a finding whose values here differ from those when it was
#: triaged has changed (the one rule; :mod:`.changes` compares runs with it too).
FINGERPRINT = ("amount_delta", "currency", "detail")
#: The part of the fingerprint whose change makes a finding "changed": the money at stake.
CHANGED_BY = ("amount_delta", "currency")

#: The columns every finding listing carries (null where nobody triaged the finding).
TRIAGE_COLUMNS = ("triage_status", "triage_note", "triage_by", "triage_at", "triage_changed")

TABLE = "audit_triage"

DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    triage_id BIGINT, finding_id VARCHAR, status VARCHAR, note VARCHAR, triaged_by VARCHAR,
    triaged_at TIMESTAMPTZ, audit_run_id BIGINT, "check" VARCHAR, subject VARCHAR,
    amount_delta BIGINT, currency VARCHAR, detail VARCHAR)"""

#: The columns of :func:`history`, in order.
HISTORY_COLUMNS = (
    "finding_id",
    "status",
    "note",
    "triaged_by",
    "triaged_at",
    "audit_run_id",
    "check",
    "subject",
    "amount_delta",
    "currency",
    "detail",
)

_HISTORY_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "finding_id": pl.String,
    "status": pl.String,
    "note": pl.String,
    "triaged_by": pl.String,
    "triaged_at": pl.Datetime("us", "UTC"),
    "audit_run_id": pl.Int64,
    "check": pl.String,
    "subject": pl.String,
    "amount_delta": pl.Int64,
    "currency": pl.String,
    "detail": pl.String,
}

_ID = re.compile(r"F-[0-9a-f]{12}")


class TriageError(ValueError):
    """A judgement refused: an unknown finding, a bad status, no note or no name (exit 2)."""


def triage(
    db: str | Path,
    finding_id: str,
    *,
    status: str,
    note: str,
    by: str,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Record an analyst's judgement of ``finding_id`` (one of :data:`STATUSES`, with a note and
    who; ``at`` defaults to now, a naive time is UTC) in the analyst database of ``db``; returns
    the row recorded, with the finding's fingerprint as the last recorded audit run saw it.

    Refused (:class:`TriageError`) for an id no recorded audit run of ``db`` has listed: a typo
    must not leave a judgement nobody will ever see."""
    fid = _check_id(finding_id)
    if status not in STATUSES:
        raise TriageError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    note, by = (note or "").strip(), (by or "").strip()
    if not note:
        raise TriageError("a judgement needs a note saying why (--note TEXT)")
    if not by:
        raise TriageError("a judgement needs the name of who made it (--by NAME)")
    when = datetime.now(UTC) if at is None else at
    when = (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).astimezone(UTC)
    _existing_analyst_db(db)
    con = readers.analyst_writer(db)
    try:
        con.execute(DDL).fetchall()
        seen = _last_seen(con, fid, db)
        con.execute(
            f"""INSERT INTO {TABLE}
            SELECT coalesce(max(triage_id), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM {TABLE}""",
            [
                fid,
                status,
                note,
                by,
                when,
                seen["audit_run_id"],
                seen["check"],
                seen["subject"],
                seen["amount_delta"],
                seen["currency"],
                seen["detail"],
            ],
        ).fetchall()
    finally:
        con.close()
    return {
        "finding_id": fid,
        "status": status,
        "note": note,
        "triaged_by": by,
        "triaged_at": when,
        **seen,
    }


def history(db: str | Path, finding_id: str | None = None) -> pl.DataFrame:
    """Every judgement of ``finding_id`` (or of every finding), oldest first
    (:data:`HISTORY_COLUMNS`; ``amount_delta``/``currency``/``detail`` are the finding as
    audited when it was judged). An id no recorded audit run has listed is refused, as in
    :func:`triage`."""
    fid = _check_id(finding_id) if finding_id is not None else None
    _existing_analyst_db(db)
    con = readers.analyst_reader(db)
    try:
        if fid is not None:
            _last_seen(con, fid, db)
        if TABLE not in _tables(con):
            return pl.DataFrame(schema=_HISTORY_SCHEMA)
        names = ", ".join(f'"{c}"' for c in HISTORY_COLUMNS)
        where = "WHERE finding_id = ?" if fid is not None else ""
        table = con.sql(
            f"SELECT {names} FROM {TABLE} {where} ORDER BY triage_id",
            params=[fid] if fid is not None else None,
        ).to_arrow_table()
    finally:
        con.close()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.cast(_HISTORY_SCHEMA)  # type: ignore[arg-type]


def last_seen(db: str | Path, finding_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each of ``finding_ids`` as the last recorded audit run that listed it saw it
    (``audit_run_id``, ``check``, ``subject``, the :data:`FINGERPRINT` and ``audit_status``:
    new, open, reopened or resolved), in one query; an id no run listed is refused as in
    :func:`triage`."""
    fids = [_check_id(f) for f in finding_ids]
    _existing_analyst_db(db)
    con = readers.analyst_reader(db)
    try:
        if "audit_findings" not in _tables(con):
            return {fid: _last_seen(con, fid, db) for fid in fids[:1]}  # refused
        rows = con.execute(
            f"""SELECT finding_id, {", ".join(_SEEN)} FROM audit_findings
            WHERE finding_id IN (SELECT unnest(?::VARCHAR[]))
            QUALIFY row_number() OVER (PARTITION BY finding_id ORDER BY audit_run_id DESC) = 1""",
            [fids],
        ).fetchall()
        found = {r[0]: dict(zip(_SEEN_KEYS, r[1:], strict=True)) for r in rows}
        for fid in fids:
            if fid not in found:
                _last_seen(con, fid, db)  # refused, naming it
        return found
    finally:
        con.close()


def latest(db: str | Path) -> pl.DataFrame:
    """The latest judgement of each finding ever triaged in ``db``'s analyst database (the
    :func:`history` columns); empty if there is none (or no analyst database yet)."""
    if not snapshots.analyst_db(db).exists():
        return pl.DataFrame(schema=_HISTORY_SCHEMA)
    every = history(db)
    return every.unique(subset=["finding_id"], keep="last", maintain_order=True)


def annotate(findings: pl.DataFrame, judgements: pl.DataFrame) -> pl.DataFrame:
    """``findings`` with :data:`TRIAGE_COLUMNS` from ``judgements`` (:func:`latest`): each
    finding's latest triage, and ``triage_changed``: triaged, and its fingerprint differs now
    from when it was judged (:func:`fingerprint_differs`)."""
    then = judgements.select(
        "finding_id",
        pl.col("status").alias("triage_status"),
        pl.col("note").alias("triage_note"),
        pl.col("triaged_by").alias("triage_by"),
        pl.col("triaged_at").alias("triage_at"),
        *(pl.col(c).alias(f"_then_{c}") for c in FINGERPRINT),
    )
    out = findings.drop([c for c in TRIAGE_COLUMNS if c in findings.columns]).join(
        then, on="finding_id", how="left", maintain_order="left"
    )
    return out.with_columns(
        (pl.col("triage_status").is_not_null() & fingerprint_differs("_then_")).alias(
            "triage_changed"
        )
    ).drop([f"_then_{c}" for c in FINGERPRINT])


def fingerprint_differs(then: str) -> pl.Expr:
    """True where a finding's :data:`CHANGED_BY` columns differ from the same columns prefixed
    ``then`` (the finding as it was); nulls compare equal (no amount then and now is no
    change)."""
    differs = pl.lit(False)
    for c in CHANGED_BY:
        differs = differs | ~pl.col(c).eq_missing(pl.col(f"{then}{c}"))
    return differs


def with_triage(db: str | Path, findings: pl.DataFrame) -> pl.DataFrame:
    """``findings`` of ``db`` annotated with their triage state (:func:`annotate`)."""
    return annotate(findings, latest(db))


# ------------------------------------------------------------------------------- internals
def _check_id(finding_id: str) -> str:
    fid = (finding_id or "").strip()
    if not _ID.fullmatch(fid):
        raise TriageError(
            f"{finding_id!r} is not a finding id (F- and 12 hex digits, as `workbench audit` "
            "lists them)"
        )
    return fid


def _existing_analyst_db(db: str | Path) -> Path:
    """The analyst database of ``db``; refused if no audit run was ever recorded (never
    created empty by a typo)."""
    path = snapshots.analyst_db(db)
    if not path.exists():
        raise TriageError(
            f"{db}: no recorded audit run (no {path.name} beside it), so no finding to triage: "
            f"run `workbench audit --db {db}` first"
        )
    return path


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def _last_seen(con: duckdb.DuckDBPyConnection, fid: str, db: str | Path) -> dict[str, Any]:
    """The finding as the last recorded audit run that listed it saw it; refused if none did."""
    rows = (
        con.execute(
            f"SELECT {', '.join(_SEEN)} FROM audit_findings WHERE finding_id = ? "
            "ORDER BY audit_run_id DESC LIMIT 1",
            [fid],
        ).fetchall()
        if "audit_findings" in _tables(con)
        else []
    )
    if not rows:
        raise TriageError(
            f"{fid}: no recorded audit run of {db} has this finding (check the id: "
            f"`workbench audit --db {db}` lists them)"
        )
    return dict(zip(_SEEN_KEYS, rows[0], strict=True))


#: What :func:`last_seen` reads of a finding's latest stored row, and the keys it returns.
_SEEN = ("audit_run_id", '"check"', "subject", "amount_delta", "currency", "detail", "status")
_SEEN_KEYS = (*(c.strip('"') for c in _SEEN[:-1]), "audit_status")
