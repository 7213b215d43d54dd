"""The notebook's analyst sections: audit runs recorded in a fresh copy and what changed between
them, the daily books shaped for reading, and the statements demo matched and drilled down."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from workbench.audit import account_ledger, revenue, triage, triage_history
from workbench.notebook import books, runs, statements
from workbench.replay import store
from workbench.statements.matching import match_statements


def test_runs_in_a_fresh_copy_give_the_same_changes_every_time(tmp_path: Path) -> None:
    # a small history with every anomaly (four audits of the whole sample cost 15 s)
    from workbench.generator import generate
    from workbench.notebook import open_database

    export = tmp_path / "export"
    generate(export, seed=3, days=2, orders_per_day=60, traders=8, clients=3, progress=False)
    sample_db = open_database(tmp_path / "small.duckdb", export)
    first = runs.record_runs(sample_db, tmp_path / "runs")
    assert first.as_of == runs.start_of_last_day(sample_db)
    since = first.since()
    assert (first.earlier.run_id, first.latest.run_id) == (1, 2)
    line = runs.changes_line(since, first.as_of)
    assert "UTC:" in line and "run" not in line
    triage(first.copy, since.findings["finding_id"][0], status="waived", note="n", by="me")
    again = runs.record_runs(sample_db, tmp_path / "runs")  # a fresh copy: no runs, no triage
    assert again.since().findings.equals(since.findings)
    assert runs.changes_line(again.since(), again.as_of) == line
    assert triage_history(again.copy).height == 0
    # the findings carry the triage of the database itself, not of the copy
    assert again.findings()["triage_status"].null_count() == again.findings().height
    assert list(runs.changes_table(since.findings).columns) == list(runs.CHANGE_COLUMNS)


def test_revenue_and_ledger_tables(sample_db: Path) -> None:
    raw = revenue(sample_db)
    table = books.revenue_table(raw)
    assert table["revenue"].to_list() == raw["revenue_minor"].to_list()
    ledger = account_ledger(sample_db, "client:cl-01")
    shaped = books.ledger_table(ledger)
    assert shaped["entry"][0] == "opening" and shaped["entry"][-1] == "closing"
    assert "equal to account_balances" in books.balances_line(ledger, sample_db)
    early = account_ledger(sample_db, "client:cl-01", "2026-11-01", "2026-11-02")
    assert "ends before the data" in books.balances_line(early, sample_db)
    worst = pl.DataFrame({"account": ["trader:tr-01"]})
    assert books.default_account(None, worst) == "trader:tr-01"
    assert books.default_account("client:cl-02", worst) == "client:cl-02"
    assert books.default_account(None, worst.clear()) is None


def test_statements_demo_matches_and_drills(tmp_path: Path) -> None:
    db = statements.demo(tmp_path / "demo")
    made = db.stat().st_mtime_ns
    assert statements.demo(tmp_path / "demo") == db  # made once
    assert db.stat().st_mtime_ns == made
    with duckdb.connect(str(db)) as con:  # as an older workbench made it
        con.execute("ALTER TABLE payload_trader DROP COLUMN correlation_id")
    assert statements.demo(tmp_path / "demo") == db  # made again
    with duckdb.connect(str(db), read_only=True) as con:
        assert store.out_of_date(con) == []
    matched = match_statements(db)
    by_day = statements.lines_by_day(matched)
    assert int(by_day["matched"].sum()) == matched.matches.height
    assert int(by_day["unmatched"].sum()) == matched.unmatched.height
    from workbench.audit import audit

    found = statements.statement_findings(audit(db, record=False).findings)
    assert found.height and found["check"].str.starts_with("STATEMENT_").any()
    top = statements.largest_payout_break(found)
    assert top.height == 1
    lines = statements.lines_of(matched, top["subject"][0])
    assert lines.height >= 1
    assert statements.lines_of(matched, "order:x").height == 0
