"""Analysts at work on a database a follower writes: the audit CLI recording its runs, a
notebook run end to end, `workbench status` (see test_live_readers.py for the setting)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import workbench
from workbench.replay.nats_local import LocalServer

from .live import (
    ROOT,
    WORKBENCH,
    Follower,
    published_count,
    publisher,
)


def test_audit_and_a_notebook_run_on_the_live_database(
    nats_server: LocalServer, small_export: Path, tmp_path: Path
) -> None:
    """(c) `workbench audit` (recording its run) and a notebook run end to end while the
    follower writes; the recorded runs outlive the snapshots; `status` says who writes."""
    db = tmp_path / "live.duckdb"
    pub = publisher(nats_server.url, small_export, rate=600)
    follower = Follower(nats_server.url, db)
    follower.wait_for(lambda st: (st.last_seq or 0) > 500)
    time.sleep(1.2)
    try:
        first = subprocess.run(
            [str(WORKBENCH), "audit", "--db", str(db), "--format", "json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert first.returncode in (0, 1), first.stderr
        assert "Traceback" not in first.stderr and "audit run 1" in first.stderr, first.stderr
        status = subprocess.run(
            [str(WORKBENCH), "status", "--db", str(db), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr
        said = json.loads(status.stdout)
        assert said["follower"]["running"] and said["follower"]["pid"] == follower.proc.pid
        assert said["follower"]["url"] == nats_server.url
        assert said["reader_sees"]["generation"] >= 1
        assert said["reader_sees"]["age_seconds"] < 30

        no_statements = tmp_path / "statements"
        no_statements.mkdir()  # a statement with no lines yet
        (no_statements / "today.csv").write_text(
            "line_id,value_date,booked_at,amount,currency,reference,counterparty\n"
        )
        report = subprocess.run(
            [
                *(str(WORKBENCH), "report", str(ROOT / "notebooks/payout_reconciliation.ipynb")),
                *("-p", f"db={db}", "-p", f"findings_out={tmp_path / 'findings.csv'}"),
                # the notebook's scratch outputs in this test's folder, not the repository's
                # (no statements demo: the live database's own statement, with no lines yet)
                *("-p", f"runs_out={tmp_path / 'runs'}", "-p", f"statements={no_statements}"),
                *("-p", f"statement_findings_out={tmp_path / 'statement_findings.csv'}"),
                *("--out", str(tmp_path / "report.html"), "--timeout", "300"),
            ],
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert report.returncode == 0, report.stderr[-3000:]
        assert (tmp_path / "findings.csv").exists()

        total = published_count(pub)
        follower.wait_for(lambda st: st.last_seq == total, timeout=60)
        time.sleep(2.5)  # a newer snapshot than the first audit's
        second = subprocess.run(
            [str(WORKBENCH), "audit", "--db", str(db), "--format", "json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1, second.stderr  # the export has every anomaly planted
        assert "audit run 2" in second.stderr, second.stderr
    finally:
        if pub.poll() is None:
            pub.kill()
        code, _, err = follower.stop()
    assert code == 0, err
    con = workbench.connect(str(db), read_only=True)
    try:
        runs = con.execute("SELECT audit_run_id FROM audit_runs ORDER BY 1").fetchall()
        statuses = {r[0] for r in con.execute("SELECT status FROM audit_findings").fetchall()}
    finally:
        con.close()
    assert runs == [(1,), (2,)]  # both runs kept across the snapshots in between
    assert "open" in statuses or "new" in statuses
