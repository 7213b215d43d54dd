"""POLICY_DEVIATION's stored judgments against judging every assignment again.

The full build judges every assignment and stores the judgments (``policy_judgments``, up to the
event ``policy_judged`` names); a batch appended after it (an export replayed into the database,
the live stream) leaves them, and the audit judges only the assignments after them
(``workbench/models/audit/audit_policy_pick.sql``). So a history replayed in parts, the first by
a full build and the rest appended, must give:

* the same judgments, stored plus judged by the audit, as judging every assignment of that
  database again (``policy_from`` not given);
* the same findings as a full replay of the whole history, which judges every assignment in the
  build;

including where a batch creates an order that an earlier, already judged, assignment was made
for (the assignment is judged on the order as it stood then, so the creation changes nothing).
Histories: a clean day with many assignments given to another trader (deviations common), cut
at random positions into parts; the oracle for the picks themselves is the domain, in
``test_policy_differential.py``.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import test_policy_differential as pdiff  # tests/audit/, beside this file
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.audit import shared
from workbench.audit.policy import judged_through
from workbench.audit.run import audit
from workbench.export import ENVELOPE_SCHEMA
from workbench.replay import bulk
from workbench.replay.engine import rebuild

Row = dict[str, Any]
FEW = settings(max_examples=2, deadline=None, derandomize=True, database=None)
#: Many assignments given to another trader: deviations on most cuts' both sides.
EDITS = [("trader", i * 7919) for i in range(60)]


@pytest.fixture(autouse=True)
def judge_every_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """These histories are small: a full build stores its judgments whatever the size here."""
    monkeypatch.setattr(bulk, "JUDGED_FROM_EVENTS", 0)


def write(rows: list[Row], folder: Path) -> Path:
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=ENVELOPE_SCHEMA), folder / "p.parquet")
    return folder


def replay_in_parts(rows: list[Row], cuts: list[int], folder: Path) -> Path:
    """``rows`` replayed in parts split at the positions ``cuts``: the first by a full build, each
    other appended (an incremental apply)."""
    db = folder / "parts.duckdb"
    bounds = [None, *sorted(cuts), None]
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        part = [
            r
            for r in rows
            if (lo is None or r["position"] >= lo) and (hi is None or r["position"] < hi)
        ]
        if part:
            rebuild([write(part, folder / f"part{i}")], db, progress=False)
    return db


def picks(db: Path, *, stored: bool) -> list[tuple[Any, ...]]:
    """``audit_policy_pick``'s rows: the stored judgments and those the audit makes after them
    (``stored``), or every assignment judged again."""
    with duckdb.connect(str(db), read_only=True) as con:
        since = judged_through(con) if stored else None
        shared.prepare(con, ["audit_policy_pick"], policy_from=since)
        return sorted(con.sql("SELECT * FROM audit_policy_pick").fetchall(), key=repr)


def findings(db: Path) -> pl.DataFrame:
    return audit(db, record=False).findings.drop("finding_id").sort("check", "event_id")


def check(rows: list[Row], cuts: list[int], folder: Path) -> Path:
    db = replay_in_parts(rows, cuts, folder)
    whole = folder / "whole.duckdb"
    rebuild([write(rows, folder / "all")], whole, progress=False)
    assert picks(db, stored=True) == picks(db, stored=False)
    assert findings(db).equals(findings(whole))
    return db


def test_the_audit_reads_the_stored_judgments_and_judges_the_rest(tmp_path: Path) -> None:
    """Cut in three: the stored judgments reach the first part's end and hold deviations, the
    assignments after it (judged by the audit) hold some too; together they are the whole's."""
    rows = pdiff.edited(EDITS)
    positions = sorted(r["position"] for r in rows)
    cuts = [positions[len(positions) // 2], positions[3 * len(positions) // 4]]
    db = check(rows, cuts, tmp_path)
    with duckdb.connect(str(db), read_only=True) as con:
        since = judged_through(con)
        assert since is not None and since[0] < cuts[0]
        stored = con.sql("SELECT count(*) FROM policy_judgments WHERE pick_id IS NOT NULL")
        assert stored.fetchall()[0][0] > 0
    after = [p for p in picks(db, stored=True) if p[3] > since[0] and p[9] is not None]
    assert after, "no deviation after the stored judgments: the audit's part is not exercised"


@FEW
@given(
    st.lists(st.tuples(st.sampled_from(sorted(pdiff.EDITS)), st.integers(0, 10**6)), max_size=30),
    st.lists(st.floats(0.05, 0.95), min_size=1, max_size=3),
)
def test_histories_cut_anywhere(edits: list[tuple[str, int]], fractions: list[float]) -> None:
    rows = pdiff.edited(EDITS + edits)
    positions = sorted(r["position"] for r in rows)
    cuts = sorted({positions[int(f * len(positions))] for f in fractions})
    with tempfile.TemporaryDirectory(prefix="policy-stored-") as d:
        check(rows, cuts, Path(d))


def test_an_order_created_after_its_judged_assignment(tmp_path: Path) -> None:
    """An order whose ``created`` comes after an assignment that deviated, in a batch after the
    full build: the assignment is judged on the order as it stood then (not created yet: it
    breaks the scheduler's rules, so it is not the policy's to judge), by the stored judgments
    and by a full replay of the whole alike, and they stay in use."""
    rows = pdiff.edited(EDITS)
    plain = tmp_path / "plain.duckdb"
    rebuild([write(rows, tmp_path / "plain")], plain, progress=False)
    with duckdb.connect(str(plain), read_only=True) as con:
        deviating = con.sql(
            "SELECT DISTINCT order_id FROM policy_judgments WHERE pick_id IS NOT NULL "
            "ORDER BY order_id LIMIT 1"
        ).fetchall()
    assert deviating, "no deviation to move the order's creation after"
    order = deviating[0][0]
    moved = [dict(r) for r in rows]
    created = next(
        r for r in moved if r["kind"] == "payment_order.created" and r["aggregate_id"] == order
    )
    created["position"] = max(r["position"] for r in moved) + 1
    assert json.loads(created["payload"])  # still the order's figures, only later
    db = check(moved, [created["position"]], tmp_path / "moved")
    with duckdb.connect(str(db), read_only=True) as con:
        assert judged_through(con) is not None


def test_judgments_made_by_other_models_are_not_read(tmp_path: Path) -> None:
    """Judgments stored by a workbench whose models judge otherwise (another fingerprint in
    ``policy_judged.judged_by``; here, stored rows lost as well) are not read: the audit judges
    every assignment and finds what a full replay by this workbench finds."""
    rows = pdiff.edited(EDITS)
    db = replay_in_parts(rows, [], tmp_path)
    expected = findings(db)
    assert expected.filter(pl.col("check") == "POLICY_DEVIATION").height > 0
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE policy_judged SET judged_by = 'an older workbench'")
        con.execute("DELETE FROM policy_judgments")
    with duckdb.connect(str(db), read_only=True) as con:
        assert judged_through(con) is None
    assert findings(db).equals(expected)


def test_a_small_log_stores_no_judgments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below ``JUDGED_FROM_EVENTS`` a full build stores none (the audit judges every assignment,
    cheaply at that size), and drops any an earlier build stored."""
    rows = pdiff.edited(EDITS)
    db = replay_in_parts(rows, [], tmp_path)
    with duckdb.connect(str(db), read_only=True) as con:
        assert judged_through(con) is not None
    monkeypatch.setattr(bulk, "JUDGED_FROM_EVENTS", len(rows) + 1)
    rebuild([tmp_path / "part0"], db, full=True, progress=False)
    with duckdb.connect(str(db), read_only=True) as con:
        assert judged_through(con) is None
        assert con.sql("SELECT count(*) FROM policy_judgments").fetchall()[0][0] == 0
    assert picks(db, stored=True) == picks(db, stored=False)
