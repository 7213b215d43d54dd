"""PROCESS_BROKEN, the audit's SQL (``workbench/models/checks/process_broken.sql``), against the
domain's definition (:func:`workbench.domain.process.breaks`): both must name the same offending
events with the same evidence.

The oracle decodes the events the replay kept and the quarantine's ids, in ``(position,
event_id)`` order. Histories: generated with the two on-demand variants planted (and found), a
default planted history (no break: the older variants do not set this check off), and a clean day edited at random: causes pointed at nothing,
causes dropped, compensations moved to another process or out of every process, trader holds'
compensations dropped (a leak is HOLD_LEAK's, never this check's), a process's first event given a cause the
log lacks (an export that starts mid-process: not judged).
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import duckdb
import polars as pl
import pytest
import replay_diff  # tests/audit/replay_diff.py, beside this file
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_diff import SMALL, Row, clean_rows

from workbench import models
from workbench.audit.run import audit
from workbench.domain import process
from workbench.domain.catalog import DecodingError, try_decode
from workbench.generator import generate
from workbench.generator.truth import gate

MINE = ("process_dangling_cause", "process_capture_elsewhere")
Found = set[tuple[str, tuple[str, ...]]]  # (offending event, evidence)
FEW = settings(max_examples=3, deadline=None, derandomize=True, database=None)


def sql_side(db: Path, collide: bool = False) -> Found:
    """The check's own SQL over the replayed database (no other check needed); ``collide``: with
    every step hashed alike, so the SQL's exact path alone decides (its hashes only group)."""
    sql = models.checks()[process.CHECK].sql()
    if collide:
        assert "hash(" in sql
        sql = sql.replace("hash(", "0::UBIGINT * hash(")
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql(sql).fetchall()
    return {(r[2], tuple(r[3])) for r in rows}


def oracle_side(db: Path) -> Found:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql("SELECT * EXCLUDE (source) FROM events ORDER BY position, event_id")
        decoded = [try_decode(r) for r in rows.to_arrow_table().to_pylist()]
        quarantined = [r[0] for r in con.sql("SELECT event_id FROM quarantine").fetchall()]
    events = [e for e in decoded if not isinstance(e, DecodingError)]
    assert len(events) == len(decoded)
    out: Found = set()
    for b in process.breaks(events, process.refs_of(events), [q for q in quarantined if q]):
        out.add(
            (b.event_id, (b.event_id,) if b.rule == process.DANGLING else (b.event_id, b.other))
        )
    return out


def compare(export: Path, db: Path) -> Found:
    return replay_diff.compare(export, db, sql_side, oracle_side)


def compare_rows(rows: list[Row], folder: Path) -> Found:
    return replay_diff.compare_rows(rows, folder, sql_side, oracle_side)


@pytest.mark.parametrize("seed", [2, 3, 5])
def test_planted_breaks_are_found_by_both_with_their_key_event(seed: int, tmp_path: Path) -> None:
    truth_csv = tmp_path / "truth.csv"
    generate(tmp_path / "export", seed=seed, plant=MINE, truth=truth_csv, progress=False, **SMALL)
    found = compare(tmp_path / "export", tmp_path / "db.duckdb")
    truth = pl.read_csv(truth_csv)
    assert set(truth["variant"]) == set(MINE)
    assert set(truth["check"]) == {process.CHECK}
    assert {t for t, _ in found} == set(truth["event_id"])
    # the whole audit: every planted break found by this check, nothing else set off
    missed, unexplained = gate(audit(tmp_path / "db.duckdb", record=False).findings, truth)
    assert not missed and not unexplained, (missed, unexplained)


def test_a_default_planted_history_agrees(tmp_path: Path) -> None:
    """Every variant planted at once (leaked holds, malformed and duplicated events among them,
    the process variants too): both sides find the same breaks, and some. (That no other variant
    sets this check off is the quality gate's: every finding explained by the truth.)"""
    generate(tmp_path / "export", seed=4, progress=False, **SMALL)
    assert compare(tmp_path / "export", tmp_path / "db.duckdb")


# --------------------------------------------------------------------------- edited histories


COMPENSATIONS = tuple(process.COMPENSATES)
EDITS = ("dangle", "drop_cause", "move", "unlink", "drop_compensation", "first_cause")


def edited(edits: list[tuple[str, int]]) -> list[Row]:
    rows = [dict(r) for r in clean_rows()]
    for name, i in edits:
        caused = [r for r in rows if r["causation_id"] is not None]
        comps = [r for r in rows if r["kind"] in COMPENSATIONS]
        if name == "dangle" and caused:
            caused[i % len(caused)]["causation_id"] = str(uuid.UUID(int=i))
        elif name == "drop_cause" and caused:
            cause = caused[i % len(caused)]["causation_id"]
            rows = [r for r in rows if r["event_id"] != cause]
        elif name in ("move", "unlink") and comps:
            row = comps[i % len(comps)]
            others = sorted({r["correlation_id"] for r in rows if r["correlation_id"]})
            row["correlation_id"] = others[i % len(others)] if name == "move" else None
        elif name == "drop_compensation" and comps:  # a trader's: it causes nothing
            leaves = [r for r in comps if r["stream"] == "trader"]
            rows.remove(leaves[i % len(leaves)])
        elif name == "first_cause":
            firsts = {r["correlation_id"]: r for r in reversed(rows) if r["correlation_id"]}
            if firsts:
                row = sorted(firsts.values(), key=lambda r: r["position"])[i % len(firsts)]
                row["causation_id"] = str(uuid.UUID(int=i + 1))
    return rows


@FEW
@given(st.lists(st.tuples(st.sampled_from(EDITS), st.integers(0, 10**6)), max_size=12))
def test_edited_histories(edits: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory(prefix="process-diff-") as d:
        compare_rows(edited(edits), Path(d))


def test_the_edits_reach_both_rules_and_spare_what_is_not_a_break(tmp_path: Path) -> None:
    """Pointing causes at nothing and moving compensations out of their process set off both
    rules; a dropped trader compensation (HOLD_LEAK's) and a cause before the log's start do
    not."""
    (tmp_path / "breaks").mkdir()
    edits = [("dangle", 7919), ("move", 104729), ("unlink", 1299709)]
    found = compare_rows(edited(edits), tmp_path / "breaks")
    assert sorted(len(ev) for _, ev in found) == [1, 2, 2], found
    (tmp_path / "spared").mkdir()
    edits = [("drop_compensation", 7919), ("first_cause", 104729)]
    assert compare_rows(edited(edits), tmp_path / "spared") == set()


def test_steps_hashed_alike_or_sharing_a_position_are_judged_exactly(tmp_path: Path) -> None:
    """The SQL finds the steps under more than one correlation by a hash of each step, and joins
    a trader hold to its event by ``position`` alone before fetching those steps' events again
    exactly: with every step hashed alike, and a hold given the position of another process's
    hold (two events at one position), it still finds exactly the oracle's breaks."""
    rows = edited([("move", 104729), ("unlink", 1299709), ("move", 15485863)])
    holds = [r for r in rows if r["stream"] == "trader" and r["kind"] in process.COMPENSATES]
    other = next(
        r
        for r in rows
        if r["kind"] == "trader.hold_placed" and r["correlation_id"] != holds[0]["correlation_id"]
    )
    holds[0]["position"] = other["position"]
    found = compare_rows(rows, tmp_path)
    assert len(found) >= 2, found
    assert sql_side(tmp_path / "db.duckdb", collide=True) == found
