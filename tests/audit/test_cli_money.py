"""What `workbench audit` and `explain` print for a person: money in major units, the worst
and largest findings first."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from workbench.audit import audit
from workbench.domain.money import EXPONENTS
from workbench.replay import rebuild

WORKBENCH = Path(sys.executable).parent / "workbench"
ROOT = Path(__file__).resolve().parents[2]
RANK = {"high": 0, "medium": 1, "low": 2}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("money") / "sample.duckdb"
    rebuild([ROOT / "data" / "sample_events"], db, progress=False)
    return db


def test_the_audit_table_reads_money_in_major_units_worst_and_largest_first(sample: Path) -> None:
    out = subprocess.run(
        [str(WORKBENCH), "audit", "--db", str(sample), "--no-record"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1, out.stderr
    heads = [line for line in out.stdout.splitlines() if line.startswith("F-")]
    # a terminal's 120 columns: sentences and evidence fold between words, never mid-amount
    assert max(map(len, out.stdout.splitlines())) <= 120
    found = audit(sample, record=False).findings
    assert len(heads) == found.height
    by_id = {r["finding_id"]: r for r in found.iter_rows(named=True)}
    keys = []
    for line in heads:
        r = by_id[line.split()[0]]
        m = re.search(r"\[([+-]?[\d,]+(?:\.\d+)?) (\S+)\]$", line)
        if r["amount_delta"] is None:
            assert m is None, line
            keys.append((RANK[r["severity"]], 1, Decimal(0)))
            continue
        assert m is not None, line
        exp = EXPONENTS[r["currency"]]
        number = m.group(1)
        assert m.group(2) == r["currency"]
        assert len(number.partition(".")[2]) == exp, line  # the currency's decimals
        value = Decimal(number.replace(",", ""))
        assert value.scaleb(exp) == r["amount_delta"], line  # exactly the minor units
        keys.append((RANK[r["severity"]], 0, -abs(value)))
    assert keys == sorted(keys), "not worst severity, then most money, first"


def test_explain_prints_the_amount_at_stake_in_major_units(sample: Path) -> None:
    found = audit(sample, record=False).findings
    row = found.filter(found["currency"] == "USDT").sort("amount_delta").row(0, named=True)
    out = subprocess.run(
        [str(WORKBENCH), "explain", "--db", str(sample), row["finding_id"]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    whole, frac = divmod(abs(row["amount_delta"]), 10**6)
    sign = "-" if row["amount_delta"] < 0 else "+"
    assert f"amount at stake: {sign}{whole:,}.{frac:06d} USDT" in out.stdout
    assert "money in USDT" in out.stdout


def test_as_of_records_its_run_and_leaves_the_database_as_it_was(sample: Path) -> None:
    """`--as-of` used to crash unless `--no-record` was given ("already attached")."""
    import workbench

    def counts() -> tuple[int, int]:
        con = workbench.connect(str(sample), read_only=True)
        try:
            events = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
            have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            runs = (
                con.execute("SELECT count(*) FROM audit_runs").fetchall()[0][0]
                if "audit_runs" in have
                else 0
            )
        finally:
            con.close()
        return events, runs

    events_before, runs_before = counts()
    out = subprocess.run(
        [str(WORKBENCH), "audit", "--db", str(sample), "--as-of", "2026-11-04T00:00:00Z"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode in (0, 1), out.stderr
    assert "Traceback" not in out.stderr and "attached" not in out.stderr, out.stderr
    assert counts() == (events_before, runs_before + 1)
