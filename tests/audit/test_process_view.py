"""The process view (``workbench.audit.process``, ``explain --process``, ``nb.process``), the
``process`` column every finding carries, and the causation tree's definition
(:func:`workbench.domain.process.tree`), on one small history with both process breaks planted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.audit import audit, explain, process, since_last
from workbench.cli import main
from workbench.domain import process as rules
from workbench.generator import generate
from workbench.replay import rebuild
from workbench.replay.snapshots import analyst_db

SMALL = {"days": 1, "orders_per_day": 200, "traders": 10, "clients": 4}
MINE = ("process_dangling_cause", "process_capture_elsewhere")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    d = tmp_path_factory.mktemp("process-view")
    generate(d / "export", seed=3, plant=MINE, truth=d / "truth.csv", progress=False, **SMALL)
    rebuild([d / "export"], d / "db.duckdb", progress=False)
    return d / "db.duckdb", pl.read_csv(d / "truth.csv")


def _correlation(db: Path, event_id: str) -> str | None:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT correlation_id FROM events WHERE event_id = ?", [event_id]
        ).fetchall()
    return rows[0][0] if rows else None


def test_a_process_across_its_streams(planted: tuple[Path, pl.DataFrame]) -> None:
    db, truth = planted
    moved = truth.filter(pl.col("variant") == "process_capture_elsewhere").row(0, named=True)
    corr = _correlation(db, moved["event_id"])
    assert corr is not None and corr.startswith("order:")
    view = process(db, corr)
    f = view.events
    with duckdb.connect(str(db), read_only=True) as con:
        expected = con.execute(
            "SELECT event_id FROM events WHERE correlation_id = ? ORDER BY position, event_id",
            [corr],
        ).fetchall()
    assert f["event_id"].to_list() == [r[0] for r in expected]
    assert {"payment_order", "ledger_plan", "trader"} <= set(f["stream"])
    # the moved capture is in this process, a root whose cause is in another
    row = f.filter(pl.col("event_id") == moved["event_id"]).row(0, named=True)
    assert row["parent"] is None and row["causation_id"] and not row["cause_missing"]
    # depth follows the parents; every parent is an earlier event of the process
    depth = dict(zip(f["event_id"], f["depth"], strict=True))
    seen: set[str] = set()
    for r in f.iter_rows(named=True):
        assert r["depth"] == (0 if r["parent"] is None else depth[r["parent"]] + 1)
        assert r["parent"] is None or r["parent"] in seen
        seen.add(r["event_id"])
    assert len(view.tree.splitlines()) == f.height
    text = str(view)
    assert max(len(line) for line in text.splitlines()) <= 120
    assert "^" in text and "in another process" in view.tree


def test_explain_process_in_the_terminal_and_as_json(
    planted: tuple[Path, pl.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    db, truth = planted
    dangling = truth.filter(pl.col("variant") == "process_dangling_cause").row(0, named=True)
    corr = _correlation(db, dangling["event_id"])
    assert corr is not None
    assert main(["explain", "--process", corr, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 120
    assert "not in the log" in out and " USDT" in out  # money in major units
    assert main(["explain", "--process", corr, "--db", str(db), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    missing = [e for e in doc["events"] if e["cause_missing"]]
    assert [e["event_id"] for e in missing] == [dangling["event_id"]]
    assert main(["explain", "--process", "order:nope", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "order:nope" in err


def test_every_finding_names_its_process_and_old_runs_keep_working(
    planted: tuple[Path, pl.DataFrame], tmp_path: Path
) -> None:
    db, _ = planted
    copy = tmp_path / "db.duckdb"
    copy.write_bytes(db.read_bytes())
    # an analyst database as the previous version wrote it: no process column
    with duckdb.connect(str(analyst_db(copy))) as con:
        con.execute(
            """CREATE TABLE audit_runs (audit_run_id BIGINT, started_at TIMESTAMPTZ,
            seconds DOUBLE, as_of TIMESTAMPTZ, events BIGINT, findings BIGINT, new BIGINT,
            open BIGINT, resolved BIGINT, reopened BIGINT)"""
        )
        con.execute(
            """CREATE TABLE audit_findings (audit_run_id BIGINT, finding_id VARCHAR,
            "check" VARCHAR, severity VARCHAR, subject VARCHAR, event_id VARCHAR,
            amount_delta BIGINT, currency VARCHAR, detail VARCHAR, evidence VARCHAR[],
            status VARCHAR, first_seen BIGINT, age_runs BIGINT)"""
        )
        con.execute("INSERT INTO audit_runs VALUES (1, now(), 1, NULL, 1, 1, 1, 0, 0, 0)")
        con.execute(
            "INSERT INTO audit_findings VALUES (1, 'F-000000000000', 'HOLD_LEAK', 'high', "
            "'x', 'gone', NULL, NULL, 'old', ['gone'], 'new', 1, 1)"
        )
    found = audit(copy).findings
    assert found.height >= 2
    for r in found.iter_rows(named=True):
        assert r["process"] == _correlation(copy, r["event_id"])
    assert found["process"].is_not_null().all()
    with duckdb.connect(str(analyst_db(copy)), read_only=True) as con:
        stored = con.sql("SELECT audit_run_id, status, process FROM audit_findings").fetchall()
    assert (1, "new", None) in stored and (2, "resolved", None) in stored
    assert {p for run, _, p in stored if run == 2} - {None} == set(found["process"])
    assert since_last(copy).findings["process"].null_count() == 1  # the old run's resolved one
    fid = found["finding_id"][0]
    text = str(explain(copy, fid))
    assert f"workbench explain --process {found['process'][0]}" in text


def test_the_notebook_view(planted: tuple[Path, pl.DataFrame]) -> None:
    import workbench.notebook as nb

    db, truth = planted
    corr = _correlation(db, truth["event_id"][0])
    assert corr is not None
    p = nb.process(db, corr)
    rows = p.rows()
    assert rows.height == p.frame.height
    assert p.table() is not None
    fig = p.figure()
    assert len(fig.layout.annotations) == p.frame["parent"].is_not_null().sum()


# ------------------------------------------------------------------------- the definition
@dataclass(frozen=True)
class Env:
    event_id: str
    position: int
    stream: str = "trader"
    aggregate_id: str = "t"
    kind: str = "trader.went_online"
    correlation_id: str | None = "order:o"
    causation_id: str | None = None


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_the_tree_of_any_links(causes: list[int], rnd: object) -> None:
    """Parents come before their children; a cause that is later, itself, or absent is no
    parent; depth is the parent's plus one."""
    events = [Env(f"e{i}", i, causation_id=f"e{c}") for i, c in enumerate(causes)]
    shuffled = list(events)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    nodes = rules.tree(shuffled)
    assert [n.event_id for n in nodes] == [e.event_id for e in events]
    depth = {}
    for n, c in zip(nodes, causes, strict=True):
        i = int(n.event_id[1:])
        assert n.parent == (f"e{c}" if c < i and c < len(causes) else None)
        depth[n.event_id] = 0 if n.parent is None else depth[n.parent] + 1
        assert n.depth == depth[n.event_id]


def test_the_rules_on_small_logs() -> None:
    e = [
        Env("a", 1, kind="ledger_plan.batch_held", stream="ledger_plan", aggregate_id="p"),
        Env("b", 2, kind="ledger_plan.committed", stream="ledger_plan", aggregate_id="p",
            causation_id="a", correlation_id="order:x"),
        Env("c", 3, causation_id="q"),  # quarantined cause: no break
        Env("d", 4, causation_id="zz", correlation_id=None),  # no process: judged
        Env("f", 5, causation_id="zz", correlation_id="topup:t"),  # process began earlier
    ]  # fmt: skip
    found = rules.breaks(e, {}, ["q"])
    assert [(b.rule, b.event_id, b.other) for b in found] == [
        (rules.DANGLING, "d", "zz"),
        (rules.ELSEWHERE, "b", "a"),
    ]
