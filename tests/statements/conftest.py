"""The statement tests' payout history, built once per session (each worker's)."""

from __future__ import annotations

import pytest

from .helpers import Scenario, build_scenario


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build_scenario(tmp_path_factory.mktemp("scenario"))
