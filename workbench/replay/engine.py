"""``workbench replay``: exports → a DuckDB database of every projection, losing nothing.

One run, one transaction: the new events, the quarantine, every projection and the run's record
are committed together or not at all, so a run killed at any point leaves the database as the
last finished run left it, and running it again ends in the same state.

Input handling, with every row counted:

* an ``event_id`` already seen with identical content (in this run or in the database) is a
  redelivery: skipped and counted;
* an ``event_id`` seen with *other* content is a conflicting duplicate: the first copy (already in
  the database, or else the smallest copy in canonical order, so row order never matters) is
  applied, every other copy goes to ``quarantine`` with its raw row, and a violation names it;
* a row that does not decode goes to ``quarantine`` with the raw row and the error.

So ``events read = applied + duplicates skipped + quarantined``, checked at the end of every run.
Projections are folded by the domain (:mod:`workbench.domain.world`) and laid out by
:mod:`workbench.replay.rows`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from .. import __version__
from .. import progress as bars
from ..domain.catalog import DEFAULT_MAX_PAYLOAD_BYTES, DecodingError, try_decode
from ..domain.events import ENVELOPE_FIELDS, Event
from ..domain.violations import CONFLICTING_DUPLICATE
from ..domain.world import World
from ..sources import parquet_files
from . import bulk, incremental, ingest_sql, judging, parquet_rows, store, typed
from . import rows as projection_rows
from .schema import (
    EVENTS,
    JUDGED_BY_FULL_BUILD,
    PAYLOAD_TABLES,
    PROJECTIONS,
    QUARANTINE,
    REPLAY_RUNS,
    STREAM_POSITIONS,
)

CONFLICT = "conflicting_duplicate"


class ReplayError(RuntimeError):
    """The run could not complete; nothing was written."""


@dataclass
class ReplaySummary:
    """What a replay run did. ``balanced`` is the nothing-lost check."""

    db: Path
    run_id: int
    mode: str
    files: int
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    conflicting: int = 0
    quarantined: int = 0
    displaced: int = 0  # stored events a new copy beat, moved to quarantine (not rows read)
    unchanged: int = 0  # rows of files taken in before, byte for byte, by this code: not read
    total_events: int = 0
    seconds: float = 0.0
    violations: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.read == self.applied + self.duplicates + self.quarantined + self.unchanged

    @property
    def events_per_second(self) -> float:
        return self.read / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        lines = [
            f"replay run {self.run_id} ({self.mode}) into {self.db}: {self.files} file(s), "
            f"{self.read:,} events read in {self.seconds:.1f} s ({self.events_per_second:,.0f}/s)",
            f"  applied {self.applied:,} new, skipped {self.duplicates:,} identical redeliveries, "
            f"quarantined {self.quarantined:,} ({self.conflicting:,} conflicting duplicates) — "
            + ("nothing lost" if self.balanced else "NOT BALANCED"),
            *(
                [
                    f"  {self.unchanged:,} rows of file(s) this database already took in, byte "
                    "for byte, were not read again"
                ]
                if self.unchanged
                else []
            ),
            f"  database now holds {self.total_events:,} events"
            + (
                f" ({self.displaced:,} stored event(s) displaced by an earlier-recorded copy, "
                "now in quarantine)"
                if self.displaced
                else ""
            ),
            "  projections: " + ", ".join(f"{k} {v:,}" for k, v in self.rows.items()),
            "  violations: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.violations.items())) or "none"),
        ]
        if self.quarantine_reasons:
            lines.append(
                "  quarantined: "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.quarantine_reasons.items()))
            )
        return "\n".join(lines)


#: DuckDB's memory cap during a replay: the issue's budget is 2 GiB for the whole process.
DEFAULT_MEMORY_LIMIT = "1200MB"


def _size(text: str) -> str:
    """A DuckDB memory size, checked (kept for callers of the old name)."""
    return store.memory_size(text)


def code_version() -> str:
    """The package version and a hash of the replay and domain code that built the projections."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for folder in ("domain", "replay"):
        for path in sorted((root / folder).glob("*.py")):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def rebuild(
    sources: Sequence[str | Path],
    db: str | Path,
    *,
    full: bool = False,
    progress: bool | None = None,
    engine: str = "sql",
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    reread: bool = False,
) -> ReplaySummary:
    """Replay exports into ``db``: only new events are added, then every projection is rebuilt.

    ``full`` starts from an empty database (the same result as replaying every source into a new
    file). ``engine`` is ``"sql"`` (read, deduplicated, validated and projected in DuckDB, over
    whole columns) or ``"fold"`` (every event decoded and folded one by one by the domain: the
    definition, slower); the differential tests check they give the same database. Raises :class:`~workbench.sources.SourceError` for a source that is not an export,
    before anything is written. ``memory_limit`` caps DuckDB's memory (a DuckDB size such as
    ``"1200MB"``; ``None`` for DuckDB's default of 80% of RAM): past it, DuckDB spills to a
    temporary directory beside the database instead of growing. ``max_payload_bytes``: a
    payload larger than this is quarantined as ``too_large`` unparsed (``None``: no limit).
    A file whose bytes this database already took in (same SHA-256, same code, since the last
    full replay) is not read again (``unchanged`` in the summary); ``reread`` judges it again.
    """
    if engine not in ("fold", "sql"):
        raise ValueError(f"engine must be 'fold' or 'sql', not {engine!r}")
    started = time.perf_counter()
    files = parquet_files(sources)
    con = store.connect(db, memory_limit=memory_limit)
    try:
        # Projections do not depend on the order rows are stored in (every read orders by ``ord``).
        con.execute("SET preserve_insertion_order = false").fetchall()
        con.execute("BEGIN TRANSACTION").fetchall()
        if full:
            # the live stream's position goes too: the events it stands for are gone
            for t in (EVENTS, *PAYLOAD_TABLES.values(), QUARANTINE, *PROJECTIONS, STREAM_POSITIONS):
                con.execute(f"DELETE FROM {t.name}").fetchall()
        run_id = int(store.one(con, "SELECT coalesce(max(run_id), 0) + 1 FROM replay_runs")[0])
        known = frozenset() if full or reread else _files_taken_in(con)
        if engine == "sql":
            stages = _stages(progress, len(bulk.ORDER) + 1)
            if stages is not None:
                stages.set_description("replay: reading and validating")
            # Into a database that holds events, only what the new ones touch is rebuilt (the
            # live stream's incremental path, tested equal to a full build); a run that brings
            # nothing new rebuilds nothing.
            before = incremental.log_end(con)
            ing = ingest_sql.ingest(
                con,
                files,
                run_id,
                max_payload_bytes=max_payload_bytes,
                record="batch_new" if before is not None else None,
                known=known,
            )
            if stages is not None:
                stages.update(1)
            _keep_quarantine(con, ing)
            if before is None or ing.displaced:
                bulk.build(con, progress=stages)
            else:
                incremental.apply(con, "batch_new", before, conflicts=ing.conflicts > 0)
                con.execute("DROP TABLE IF EXISTS batch_new").fetchall()
            if stages is not None:
                stages.close()
            summary = {
                str(k): int(v)
                for k, v in con.execute(
                    "SELECT code, count(*) FROM violations GROUP BY code"
                ).fetchall()
            }
        else:
            ing, world = _ingest_fold(con, files, run_id, max_payload_bytes, known)
            _keep_quarantine(con, ing)
            summary = _write_projections(con, world)
            # the open holds by ref, state the audit and the live stream read, by its model
            bulk.build(con, only=("trader_holds",))
        hashes = store.projection_hashes(con)
        total = store.one(con, "SELECT count(*) FROM events")
        result = ReplaySummary(
            db=Path(db),
            run_id=run_id,
            mode="full" if full else ("incremental" if run_id > 1 else "full"),
            files=len(files),
            read=ing.read,
            applied=ing.applied,
            duplicates=ing.duplicates,
            conflicting=ing.conflicts,
            quarantined=ing.quarantined,
            displaced=ing.displaced,
            unchanged=ing.unchanged,
            total_events=int(total[0]),
            violations=summary,
            quarantine_reasons=_count(r[6] for r in ing.quarantine),
            hashes=hashes,
            rows={
                t.name: int(store.one(con, f"SELECT count(*) FROM {t.name}")[0])
                for t in PROJECTIONS
            },
        )
        if not result.balanced:
            raise ReplayError(
                f"nothing-lost check failed: read {result.read} != applied + duplicates + "
                "quarantined + unchanged"
            )
        source_info = [{"file": str(f.path), "sha256": f.sha256, "rows": f.rows} for f in ing.files]
        result.seconds = time.perf_counter() - started
        store.append_rows(
            con,
            REPLAY_RUNS,
            [
                (
                    run_id,
                    datetime.now(UTC),
                    result.seconds,
                    code_version(),
                    result.mode,
                    json.dumps(source_info),
                    result.read,
                    result.applied,
                    result.duplicates,
                    result.conflicting,
                    result.quarantined,
                    result.total_events,
                    json.dumps(hashes, sort_keys=True),
                )
            ],
        )
        con.execute("COMMIT").fetchall()
        return result
    except BaseException:
        # A COMMIT that failed (a full disk) has ended the transaction already: DuckDB's
        # "cannot rollback" must not replace the error that says why.
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK").fetchall()
        raise
    finally:
        con.close()


def _keep_quarantine(con: Any, ing: ingest_sql.Ingested) -> None:
    """Store the run's quarantine (a row already kept counts as a redelivery) and, where a
    stored event was displaced, say again how its conflicting copies differ from the winner."""
    stored = judging.store_quarantine(con, ing.quarantine)
    ing.duplicates += len(ing.quarantine) - len(stored)
    ing.quarantined = len(stored)
    ing.quarantine = stored
    ing.conflicts = sum(1 for r in stored if r[6] == judging.CONFLICT)
    judging.store_quarantine(con, ing.displaced_rows)
    judging.refresh_conflicts(con, ing.displaced_ids)


def _files_taken_in(con: Any) -> frozenset[str]:
    """The SHA-256 of every file this database took in since its last full replay, by runs of
    this very code: replaying such bytes again can only judge them the same way, so they are
    not read again (a replay of what is already there costs next to nothing)."""
    rows = con.execute(
        """SELECT sources FROM replay_runs
        WHERE code_version = ? AND mode <> 'stream'
            AND run_id >= (SELECT coalesce(max(run_id), 0) FROM replay_runs WHERE mode = 'full')""",
        [code_version()],
    ).fetchall()
    out: set[str] = set()
    for (text,) in rows:
        for f in json.loads(text or "[]"):
            if isinstance(f, dict) and f.get("sha256"):
                out.add(str(f["sha256"]))
    return frozenset(out)


def _ingest_fold(
    con: Any,
    files: Sequence[Path],
    run_id: int,
    max_payload_bytes: int | None,
    known: frozenset[str] = frozenset(),
) -> tuple[ingest_sql.Ingested, World]:
    """The per-event path: every row decoded in Python, copies resolved in Python (the same
    rules as the SQL, :mod:`.judging`), every event folded by the domain."""
    out = ingest_sql.Ingested()
    existing = _load_existing(con)
    candidates: dict[str, list[tuple[dict[str, Any], str]]] = {}
    decoded_of: dict[tuple[Any, ...], Event] = {}
    for info, batches in parquet_rows.read(list(files), known):
        out.files.append(info)
        if info.unchanged:
            out.read += info.rows
            out.unchanged += info.rows
            continue
        for batch in batches:
            out.read += batch.num_rows
            rows = batch.native.to_pylist() if batch.native is not None else batch.foreign or []
            for row in rows:
                decoded = judging.judge(row, max_payload_bytes=max_payload_bytes)
                if isinstance(decoded, DecodingError):
                    out.quarantine.append(judging.refused(row, batch.source, run_id, decoded))
                    continue
                canon = judging.canonical_row(decoded, row["payload"])
                candidates.setdefault(decoded.event_id, []).append((canon, batch.source))
                decoded_of.setdefault(_content_key(canon), decoded)
    new_events: list[tuple[Event, dict[str, Any], str]] = []
    for eid, copies in candidates.items():
        stored = existing.get(eid)
        field: list[tuple[dict[str, Any], str, bool]] = [(r, s, False) for r, s in copies]
        if stored is not None:
            field.append((stored[0], stored[1], True))
        field.sort(key=lambda c: (judging.winner_key(c[0]), not c[2], c[1]))
        winner, winner_source, winner_known = field[0]
        for row, source, is_known in field[1:]:
            if not judging.differences(row, winner):
                out.duplicates += 1
                continue
            loser = judging.conflicting(row, source, run_id, winner)
            (out.displaced_rows if is_known else out.quarantine).append(loser)
            if is_known:
                out.displaced += 1
                out.displaced_ids.add(eid)
            else:
                out.conflicts += 1
        if not winner_known:
            event = decoded_of[_content_key(winner)]
            new_events.append((event, winner, winner_source))
            existing[eid] = (winner, winner_source)
    if out.displaced_ids:
        con.execute(
            "DELETE FROM events WHERE event_id IN (SELECT unnest(?))", [sorted(out.displaced_ids)]
        ).fetchall()
        typed.remove(con, out.displaced_ids)
    if typed.missing(con):  # a database written before the typed payload tables existed
        typed.sync(con)
    new_events.sort(key=lambda e: e[0].event_id)
    _append_events(con, new_events)
    typed.add_missing(con)
    out.applied = len(new_events)
    world = _fold(
        {eid: row for eid, (row, _) in existing.items()}, {e.event_id: e for e, _, _ in new_events}
    )
    return out, world


def _load_existing(con: Any) -> dict[str, tuple[dict[str, Any], str]]:
    """Every stored event in the catalog's values, with the file it came from."""
    cols = ", ".join(ENVELOPE_FIELDS)
    out = {}
    for r in con.sql(f"SELECT {cols}, source FROM events").to_arrow_table().to_pylist():
        source = r.pop("source")
        out[r["event_id"]] = (r, source)
    return out


def _content_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(c) for c in ENVELOPE_FIELDS)


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _stages(progress: bool | None, total: int) -> Any:
    """A bar over the columnar engine's stages (terminal only)."""
    return bars.bar(progress, total=total, unit=" stage", desc="replay")


def _bar(progress: bool | None, files: Sequence[Path] = ()) -> Any:
    """A bar over rows read, with events/s and an ETA (the total comes from the Parquet
    footers); terminal only."""
    if not (sys.stderr.isatty() if progress is None else progress):
        return None
    total = 0
    for path in files:
        with contextlib.suppress(Exception):  # an unreadable file is reported by the reader itself
            total += pq.read_metadata(path).num_rows
    return bars.bar(True, total=total or None, unit=" events", unit_scale=True, desc="replay")


def _append_events(con: Any, new_events: list[tuple[Event, dict[str, Any], str]]) -> None:
    rows = [
        (
            e.event_id,
            e.position,
            e.stream,
            e.aggregate_id,
            e.seq,
            e.kind,
            e.schema_version,
            e.occurred_at,
            e.recorded_at,
            e.correlation_id,
            e.causation_id,
            row["payload"]
            if isinstance(row["payload"], str)
            else json.dumps(row["payload"], default=str),
            source,
        )
        for e, row, source in new_events
    ]
    store.append_rows(con, EVENTS, rows)


def _fold(rows: dict[str, dict[str, Any]], decoded: dict[str, Event]) -> World:
    """The domain's fold of every stored event, in ``position`` order (ties by ``event_id``)."""
    events: list[Event] = []
    for eid, row in rows.items():
        event = decoded.get(eid) or try_decode(row, max_payload_bytes=None)
        if isinstance(event, Event):
            events.append(event)
    events.sort(key=lambda e: (e.position, e.event_id))
    world = World()
    for e in events:
        world.apply(e)
    return world


def _write_projections(con: Any, world: World) -> dict[str, int]:
    """Every projection replaced by the fold's rows, plus the conflicting duplicates on record."""
    built = projection_rows.project(world)
    conflicts = con.execute(
        "SELECT event_id, stream, aggregate_id, error FROM quarantine WHERE reason = ?", [CONFLICT]
    ).fetchall()
    seen_conflicts = sorted(
        {
            (CONFLICTING_DUPLICATE, eid, f"{stream}:{agg}", err)
            for eid, stream, agg, err in conflicts
        }
    )
    violations = sorted(
        set(built["violations"]) | set(seen_conflicts),
        key=lambda r: tuple("" if x is None else str(x) for x in r),
    )
    built["violations"] = violations
    for t in PROJECTIONS:
        store.replace_rows(con, t, built[t.name])
    for t in JUDGED_BY_FULL_BUILD:  # the fold does not judge: the audit judges every assignment
        con.execute(f"DELETE FROM {t.name}").fetchall()
    return _count(r[0] for r in violations)
