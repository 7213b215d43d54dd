"""Fixtures of the statement tests: a real DuckDB database to import beside (see
:mod:`.stmt_db`), files the tests write, and the matching tests' payout history, built once per
session (each worker's)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from .helpers import Scenario, build_scenario, reader
from .stmt_db import make_db


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "db")


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_bytes(content.encode())
        else:
            path.write_bytes(content)
        return path

    return _write


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build_scenario(tmp_path_factory.mktemp("scenario"))


@pytest.fixture
def con(scenario: Scenario) -> Iterator[duckdb.DuckDBPyConnection]:
    c = reader(scenario.db)
    yield c
    c.close()
