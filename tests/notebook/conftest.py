"""Shared fixtures of the notebook helpers' tests: the sample replayed once, and its audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample_events"
NOTEBOOKS = ROOT / "notebooks"


_ARTIFACTS = pytest.StashKey[list[Path]]()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> list[Path]:
    """Files a test keeps for people to look at (listed at the end of the run)."""
    return request.config.stash.setdefault(_ARTIFACTS, [])


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    kept = config.stash.get(_ARTIFACTS, [])
    if kept:
        terminalreporter.section("test artifacts")
        for path in kept:
            terminalreporter.write_line(str(path))


@pytest.fixture(scope="session")
def sample_export() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample export replayed into a fresh database (through ``open_database``)."""
    from workbench.notebook import open_database

    return open_database(tmp_path_factory.mktemp("notebook") / "sample.duckdb", SAMPLE)


@pytest.fixture(scope="session")
def sample_findings(sample_db: Path) -> pl.DataFrame:
    from workbench.audit import audit

    return audit(sample_db, record=False).findings
