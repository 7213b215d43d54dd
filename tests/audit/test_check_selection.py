"""Running only some checks (``audit(checks=...)``, ``workbench audit --check/--skip``): they
find what the whole audit finds for them, build only the shared tables they read, and a recorded
run of a few checks never resolves the findings of the checks it did not run (nothing was looked
for there). One small generated history with every anomaly planted, replayed once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from workbench.audit import audit, shared
from workbench.audit.run import run_checks
from workbench.cli import main
from workbench.generator import generate
from workbench.replay import rebuild
from workbench.replay.snapshots import analyst_db

FEW = {"FX_MISMATCH", "RECEIPT_REUSED", "POLICY_DEVIATION"}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    base = tmp_path_factory.mktemp("select")
    generate(
        base / "export", seed=5, days=2, orders_per_day=40, traders=6, clients=3, progress=False
    )
    db = base / "select.duckdb"
    rebuild([base / "export"], db, progress=False)
    return db, audit(db, record=False).findings


@pytest.fixture
def db(replayed: tuple[Path, pl.DataFrame], tmp_path: Path) -> Path:
    shutil.copy(replayed[0], tmp_path / replayed[0].name)
    return tmp_path / replayed[0].name


def test_a_few_checks_find_what_the_whole_audit_finds_for_them(
    replayed: tuple[Path, pl.DataFrame],
) -> None:
    db, whole = replayed
    assert set(whole["check"]) >= FEW  # each has something to find here
    few = audit(db, record=False, checks=FEW).findings
    assert set(few["check"]) == FEW
    mine = whole.filter(pl.col("check").is_in(sorted(FEW)))
    assert sorted(few["finding_id"]) == sorted(mine["finding_id"])
    assert few.sort("finding_id")["detail"].to_list() == mine.sort("finding_id")["detail"].to_list()


def test_only_the_tables_the_chosen_checks_read_are_built(
    replayed: tuple[Path, pl.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    real = shared.build

    def spy(con: duckdb.DuckDBPyConnection, name: str, **context: object) -> None:
        built.append(name)
        real(con, name, **context)

    monkeypatch.setattr(shared, "build", spy)
    with duckdb.connect(str(replayed[0]), read_only=True) as con:
        found, _ = run_checks(con, checks={"FX_MISMATCH"})
    assert set(found["check"]) == {"FX_MISMATCH"}
    assert set(built) == {
        "audit_attempts",
        "audit_attempt_orders",
        "audit_fees_in_force",
        "audit_attempt_pricing",
    }


def test_unknown_codes_are_refused_by_name(db: Path) -> None:
    with pytest.raises(ValueError, match="NOT_A_CHECK"):
        audit(db, record=False, checks={"FX_MISMATCH", "NOT_A_CHECK"})


def _statuses(db: Path, run: int) -> dict[str, str]:
    with duckdb.connect(str(analyst_db(db)), read_only=True) as con:
        rows = con.execute(
            'SELECT "check", status FROM audit_findings WHERE audit_run_id = ?', [run]
        ).fetchall()
    out: dict[str, str] = {}
    for check, status in rows:
        out[check] = status if out.get(check, status) == status else "mixed"
    return out


def test_a_recorded_run_of_a_few_checks_resolves_none_of_the_others(db: Path) -> None:
    first = audit(db)
    assert first.run_id == 1
    few = audit(db, checks={"FX_MISMATCH"})
    assert set(few.findings["check"]) == {"FX_MISMATCH"}
    assert _statuses(db, 2) == {"FX_MISMATCH": "open"}  # no other check's finding "resolved"
    again = audit(db)  # the others come back open, not reopened
    assert set(again.findings["status"]) == {"open"}
    assert again.findings.height == first.findings.height


def test_another_policy_does_not_resolve_the_policy_deviations(db: Path) -> None:
    first = audit(db)
    assert "POLICY_DEVIATION" in set(first.findings["check"])
    other = audit(db, production_policy=False)
    assert "POLICY_DEVIATION" not in set(other.findings["check"])
    assert "POLICY_DEVIATION" not in _statuses(db, 2)  # not looked for, so not resolved


def test_the_cli_runs_the_chosen_checks(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["audit", "--db", str(db), "--no-record", "--format", "json"]
    code = main([*args, "--check", "FX_MISMATCH,RECEIPT_REUSED", "--skip", "RECEIPT_REUSED"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 1 and {r["check"] for r in rows} == {"FX_MISMATCH"}
    code = main([*args, "--skip", "POLICY_DEVIATION", "--skip", "FX_MISMATCH,RECEIPT_REUSED"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 1 and rows
    assert not {r["check"] for r in rows} & {"POLICY_DEVIATION", "FX_MISMATCH", "RECEIPT_REUSED"}


def test_the_cli_refuses_an_unknown_code_in_one_line(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["audit", "--db", str(db), "--no-record", "--check", "FX_MISMATCH,NOPE"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "NOPE" in err and "Traceback" not in err and len(err.splitlines()) == 1
