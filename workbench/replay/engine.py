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

import concurrent.futures
import contextlib
import hashlib
import json
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from .. import __version__
from .. import progress as bars
from ..domain.catalog import DecodingError, try_decode
from ..domain.events import ENVELOPE_FIELDS, Event
from ..domain.violations import CONFLICTING_DUPLICATE
from ..domain.world import World
from ..sources import REQUIRED, parquet_files, read_table
from . import bulk, ingest_sql, store
from . import rows as projection_rows
from .schema import EVENTS, PROJECTIONS, QUARANTINE, REPLAY_RUNS, STREAM_POSITIONS

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
    total_events: int = 0
    seconds: float = 0.0
    violations: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.read == self.applied + self.duplicates + self.quarantined

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
            f"  database now holds {self.total_events:,} events",
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
    """A DuckDB memory size, checked (it is put into a SET statement)."""
    if not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", text.strip()):
        raise ValueError(f"memory limit {text!r} is not a size such as 1200MB or 2GiB")
    return text.strip()


def code_version() -> str:
    """The package version and a hash of the replay and domain code that built the projections."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for folder in ("domain", "replay"):
        for path in sorted((root / folder).glob("*.py")):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _raw_json(row: dict[str, Any]) -> str:
    return json.dumps(row, default=str, sort_keys=True, ensure_ascii=False)


def _canonical(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(c) for c in ENVELOPE_FIELDS)


#: The order that picks which of several different copies of one ``event_id`` is applied: by
#: native envelope values, nulls first, so row order never matters and SQL can say the same.
WINNER_ORDER = (
    "recorded_at",
    "position",
    "payload",
    "seq",
    "occurred_at",
    "stream",
    "aggregate_id",
    "kind",
    "schema_version",
    "correlation_id",
    "causation_id",
)


def _winner_key(row: dict[str, Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for c in WINNER_ORDER:
        v = row.get(c)
        out.append((v is not None, v if v is not None else 0))
    return tuple(out)


@dataclass
class _Batch:
    """What one run read, before anything is written."""

    read: int = 0
    duplicates: int = 0
    new: dict[str, tuple[dict[str, Any], str]] = field(
        default_factory=dict
    )  # event_id → (row, source)
    candidates: dict[str, list[tuple[dict[str, Any], str]]] = field(default_factory=dict)
    quarantine: list[tuple[Any, ...]] = field(default_factory=list)
    conflicts: int = 0


def _rows(files: Sequence[Path]) -> Iterator[tuple[dict[str, Any], str, list[str]]]:
    for path in files:
        table = read_table(path, require=False)
        missing = [c for c in REQUIRED if c not in table.column_names]
        keep = [c for c in ENVELOPE_FIELDS if c in table.column_names]
        for row in table.select(keep).to_pylist():
            yield row, str(path), missing


def _quarantine_row(
    row: dict[str, Any], source: str, run_id: int, reason: str, fld: str | None, error: str
) -> tuple[Any, ...]:
    def text(name: str) -> str | None:
        v = row.get(name)
        return v if isinstance(v, str) else None

    def integer(name: str) -> int | None:
        v = row.get(name)
        return (
            v if isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63 else None
        )

    version = integer("schema_version")
    if version is not None and not -(2**15) <= version < 2**15:
        version = None
    return (
        text("event_id"),
        integer("position"),
        text("stream"),
        text("aggregate_id"),
        text("kind"),
        version,
        reason,
        fld,
        error,
        _raw_json(row),
        source,
        run_id,
    )


def _load_existing(con: Any) -> dict[str, dict[str, Any]]:
    cols = ", ".join(ENVELOPE_FIELDS)
    table = con.sql(f"SELECT {cols} FROM events").to_arrow_table()
    return {r["event_id"]: r for r in table.to_pylist()}


def rebuild(
    sources: Sequence[str | Path],
    db: str | Path,
    *,
    full: bool = False,
    progress: bool | None = None,
    engine: str = "sql",
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
) -> ReplaySummary:
    """Replay exports into ``db``: only new events are added, then every projection is rebuilt.

    ``full`` starts from an empty database (the same result as replaying every source into a new
    file). ``engine`` is ``"sql"`` (read, deduplicated, validated and projected in DuckDB, over
    whole columns) or ``"fold"`` (every event decoded and folded one by one by the domain: the
    definition, slower); the differential tests check they give the same database. Raises :class:`~workbench.sources.SourceError` for a source that is not an export,
    before anything is written. ``memory_limit`` caps DuckDB's memory (a DuckDB size such as
    ``"1200MB"``; ``None`` for DuckDB's default of 80% of RAM): past it, DuckDB spills to a
    temporary directory beside the database instead of growing.
    """
    if engine not in ("fold", "sql"):
        raise ValueError(f"engine must be 'fold' or 'sql', not {engine!r}")
    started = time.perf_counter()
    files = parquet_files(sources)
    # The sources' SHA-256 (seconds for gigabytes) are computed beside the replay, not before it.
    hashing = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    source_hashes = hashing.submit(lambda: [_file_sha256(p) for p in files])
    con = store.connect(db)
    try:
        if memory_limit is not None:
            con.execute(f"SET memory_limit = '{_size(memory_limit)}'").fetchall()
        # Projections do not depend on the order rows are stored in (every read orders by ``ord``).
        con.execute("SET preserve_insertion_order = false").fetchall()
        con.execute("BEGIN TRANSACTION").fetchall()
        if full:
            # the live stream's position goes too: the events it stands for are gone
            for t in (EVENTS, QUARANTINE, *PROJECTIONS, STREAM_POSITIONS):
                con.execute(f"DELETE FROM {t.name}").fetchall()
        run_id = int(store.one(con, "SELECT coalesce(max(run_id), 0) + 1 FROM replay_runs")[0])
        if engine == "sql":
            stages = _stages(progress, len(bulk.ORDER) + 1)
            if stages is not None:
                stages.set_description("replay: reading and validating")
            read, applied, duplicates, conflicts, quarantine = _ingest_sql(con, files, run_id)
            if stages is not None:
                stages.update(1)
            store.append_rows(con, QUARANTINE, quarantine)
            bulk.build(con, progress=stages)
            if stages is not None:
                stages.close()
            summary = {
                str(k): int(v)
                for k, v in con.execute(
                    "SELECT code, count(*) FROM violations GROUP BY code"
                ).fetchall()
            }
        else:
            read, applied, duplicates, conflicts, quarantine, world = _ingest_fold(
                con, files, run_id, progress
            )
            store.append_rows(con, QUARANTINE, quarantine)
            summary = _write_projections(con, world)
        hashes = store.projection_hashes(con)
        total = store.one(con, "SELECT count(*) FROM events")
        result = ReplaySummary(
            db=Path(db),
            run_id=run_id,
            mode="full" if full else ("incremental" if run_id > 1 else "full"),
            files=len(files),
            read=read,
            applied=applied,
            duplicates=duplicates,
            conflicting=conflicts,
            quarantined=len(quarantine),
            total_events=int(total[0]),
            violations=summary,
            quarantine_reasons=_count(r[6] for r in quarantine),
            hashes=hashes,
            rows={
                t.name: int(store.one(con, f"SELECT count(*) FROM {t.name}")[0])
                for t in PROJECTIONS
            },
        )
        if not result.balanced:
            raise ReplayError(
                f"nothing-lost check failed: read {result.read} != applied + duplicates + quarantined"
            )
        source_info = [
            {"file": str(p), "sha256": h}
            for p, h in zip(files, source_hashes.result(), strict=True)
        ]
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
        con.execute("ROLLBACK").fetchall()
        raise
    finally:
        con.close()
        hashing.shutdown(wait=True)


def _ingest_fold(
    con: Any, files: Sequence[Path], run_id: int, progress: bool | None
) -> tuple[int, int, int, int, list[tuple[Any, ...]], World]:
    """The per-event path: every row decoded in Python, every event folded by the domain."""
    existing = _load_existing(con)
    batch = _read(files, existing, run_id, progress)
    new_events: list[tuple[Event, dict[str, Any], str]] = []
    decoded_new: dict[str, Event] = {}
    for eid, (row, source) in batch.new.items():
        decoded = try_decode(row)
        if isinstance(decoded, DecodingError):
            batch.quarantine.append(
                _quarantine_row(row, source, run_id, decoded.reason, decoded.field, str(decoded))
            )
        else:
            new_events.append((decoded, row, source))
            decoded_new[eid] = decoded
            existing[eid] = row
    _append_events(con, new_events)
    world = _fold(existing, decoded_new)
    return batch.read, len(new_events), batch.duplicates, batch.conflicts, batch.quarantine, world


def _ingest_sql(
    con: Any, files: Sequence[Path], run_id: int
) -> tuple[int, int, int, int, list[tuple[Any, ...]]]:
    """The columnar path: DuckDB reads, deduplicates and validates; Python judges the odd rows."""
    ing = ingest_sql.ingest(con, files)
    quarantine: list[tuple[Any, ...]] = []
    accepted: list[tuple[Event, dict[str, Any], str]] = []
    read = ing.read
    for row, source, conflict in ing.odd_rows:
        if conflict is not None:
            diff = conflict.rsplit("different ", 1)[-1].split(", ")
            quarantine.append(
                _quarantine_row(row, source, run_id, CONFLICT, diff[0] if diff else None, conflict)
            )
            continue
        decoded = ingest_sql.judge(row)
        if isinstance(decoded, DecodingError):
            quarantine.append(
                _quarantine_row(row, source, run_id, decoded.reason, decoded.field, str(decoded))
            )
        else:
            accepted.append((decoded, row, source))
    _append_events(con, accepted)
    for row, source, missing in _rows(ing.python_files):
        read += 1
        quarantine.append(
            _quarantine_row(
                row,
                source,
                run_id,
                "bad_envelope",
                missing[0],
                f"{source}: missing envelope column(s) {missing}",
            )
        )
    return read, ing.applied + len(accepted), ing.duplicates, ing.conflicts, quarantine


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _read(
    files: Sequence[Path], existing: dict[str, dict[str, Any]], run_id: int, progress: bool | None
) -> _Batch:
    """Read every row; sort out redeliveries, conflicts and rows without an id."""
    batch = _Batch()
    bar = _bar(progress, files)
    for row, source, missing in _rows(files):
        batch.read += 1
        if bar is not None and batch.read % 10_000 == 0:
            bar.update(10_000)
        if missing:
            batch.quarantine.append(
                _quarantine_row(
                    row,
                    source,
                    run_id,
                    "bad_envelope",
                    missing[0],
                    f"{source}: missing envelope column(s) {missing}",
                )
            )
            continue
        eid = row.get("event_id")
        if not isinstance(eid, str) or not eid:
            decoded = try_decode(row)
            err = (
                decoded
                if isinstance(decoded, DecodingError)
                else DecodingError("bad_envelope", "event_id is missing", field="event_id")
            )
            batch.quarantine.append(
                _quarantine_row(row, source, run_id, err.reason, err.field, str(err))
            )
            continue
        batch.candidates.setdefault(eid, []).append((row, source))
    if bar is not None:
        bar.update(batch.read % 10_000)
        bar.close()
    for eid, copies in batch.candidates.items():
        known = existing.get(eid)
        if known is not None:
            first = _canonical(known)
            keep: list[tuple[dict[str, Any], str]] = []
        else:
            # Row order must not matter: the smallest copy in canonical order is the one applied.
            try:
                copies = sorted(copies, key=lambda c: _winner_key(c[0]))
            except TypeError:  # mistyped columns across files: fall back to the raw text
                copies = sorted(copies, key=lambda c: _raw_json(c[0]))
            first = _canonical(copies[0][0])
            keep = [copies[0]]
            copies = copies[1:]
        for row, source in copies:
            if _canonical(row) == first:
                batch.duplicates += 1
            else:
                batch.conflicts += 1
                diff = [
                    c
                    for c, a, b in zip(ENVELOPE_FIELDS, _canonical(row), first, strict=True)
                    if a != b
                ]
                batch.quarantine.append(
                    _quarantine_row(
                        row,
                        source,
                        run_id,
                        CONFLICT,
                        diff[0] if diff else None,
                        f"event {eid} delivered again with different {', '.join(diff)}",
                    )
                )
        if keep:
            batch.new[eid] = keep[0]
    batch.candidates.clear()
    return batch


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
        event = decoded.get(eid) or try_decode(row)
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
    return _count(r[0] for r in violations)
