"""The columnar SQL path computes exactly what the per-event fold computes, row for row."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.generator import generate
from workbench.replay import connect, rebuild
from workbench.replay.bulk import ORDER, differences

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "platform-export-3d"


def _diff(db: Path) -> dict[str, object]:
    con = connect(db)
    try:
        return differences(con)
    finally:
        con.close()


@pytest.mark.parametrize("table", ORDER)
def test_fixture_bulk_equals_fold(tmp_path: Path, table: str) -> None:
    rebuild([FIXTURE], tmp_path / "f.duckdb", progress=False, engine="fold")
    assert _diff(tmp_path / "f.duckdb").get(table) is None


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_generated_histories_with_anomalies_bulk_equals_fold(tmp_path: Path, seed: int) -> None:
    generate(
        tmp_path / "x", seed=seed, progress=False, days=2, orders_per_day=200, traders=10, clients=3
    )
    rebuild([tmp_path / "x"], tmp_path / "x.duckdb", progress=False, engine="fold")
    assert _diff(tmp_path / "x.duckdb") == {}
