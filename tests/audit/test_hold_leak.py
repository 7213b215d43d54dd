"""HOLD_LEAK's open trader hold is the catalog's and the fold's: one hold per ``ref``, open when the
last hold event on that ref placed it ("held: sum of open holds by ref"), not placements less
ends. A ref placed twice and released once is closed (the second placement is an
INVALID_TRANSITION); a ref placed and never ended after its order completed leaks."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.audit import audit
from workbench.export import COLUMNS, ENVELOPE_SCHEMA
from workbench.replay import rebuild

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


class Export:
    """Envelope rows with JSON payloads, one position each, contiguous seqs."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.seq: dict[tuple[str, str], int] = {}

    def add(self, agg: str, kind: str, payload: dict[str, Any]) -> str:
        stream = kind.split(".")[0]
        n = len(self.rows) + 1
        self.seq[(stream, agg)] = seq = self.seq.get((stream, agg), 0) + 1
        at = T0 + timedelta(seconds=n)
        event_id = str(uuid.UUID(int=n))
        self.rows.append(
            {
                "event_id": event_id,
                "position": n * 10,
                "stream": stream,
                "aggregate_id": agg,
                "seq": seq,
                "kind": kind,
                "schema_version": 1,
                "occurred_at": at,
                "recorded_at": at,
                "correlation_id": None,
                "causation_id": None,
                "payload": json.dumps(payload),
            }
        )
        return event_id

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True)
        cols = {c: [r[c] for r in self.rows] for c in COLUMNS}
        pq.write_table(
            pa.Table.from_pydict(cols, schema=ENVELOPE_SCHEMA), folder / "part-0.parquet"
        )
        return folder


def _ts(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _order(x: Export, order: str) -> str:
    """A payin order assigned to tr-1, accepted and completed on attempt 1; its completion."""
    x.add(
        order,
        "payment_order.created",
        {
            "client_id": "cl-1",
            "direction": "payin",
            "client_ref": order,
            "amount": 5000,
            "currency": "RUB",
            "expires_at": _ts(3600),
        },
    )
    x.add(
        order,
        "payment_order.assigned",
        {
            "trader_id": "tr-1",
            "attempt": 1,
            "rate": "92.35",
            "settlement_currency": "USDT",
            "settlement_amount": 54,
            "platform_fee": 1,
            "trader_reward": 0,
            "accept_by": _ts(600),
        },
    )
    x.add(order, "payment_order.accepted", {"trader_id": "tr-1", "complete_by": _ts(3000)})
    return x.add(order, "payment_order.completed", {"trader_id": "tr-1", "paid_amount": 5000})


def _hold(x: Export, what: str, ref: str) -> str:
    return x.add("tr-1", f"trader.hold_{what}", {"ref": ref, "amount": 54})


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, dict[str, str]]:
    x = Export()
    x.add("cl-1", "client.registered", {"name": "C", "settlement_currency": "USDT", "fee_bps": 150})
    x.add(
        "tr-1",
        "trader.registered",
        {
            "name": "T",
            "fiat_currency": "RUB",
            "settlement_currency": "USDT",
            "min_amount": 1,
            "max_amount": 10**9,
            "max_active_orders": 5,
            "reward_bps": 50,
        },
    )
    x.add("tr-1", "trader.went_online", {})
    ids: dict[str, str] = {}
    # placed twice, released once: one hold per ref, so closed
    _hold(x, "placed", "order:po-1:1")
    ids["second_placement"] = _hold(x, "placed", "order:po-1:1")
    _hold(x, "released", "order:po-1:1")
    ids["po-1"] = _order(x, "po-1")
    # placed once, never ended after the order completed: a leak
    ids["placed"] = _hold(x, "placed", "order:po-2:1")
    ids["po-2"] = _order(x, "po-2")
    # placed, released, placed again: open, proven by the latest placement
    _hold(x, "placed", "order:po-3:1")
    _hold(x, "released", "order:po-3:1")
    ids["replaced"] = _hold(x, "placed", "order:po-3:1")
    ids["po-3"] = _order(x, "po-3")
    root = tmp_path_factory.mktemp("holds")
    rebuild([x.write(root / "export")], root / "h.duckdb", progress=False)
    return audit(root / "h.duckdb", record=False).findings, ids


def _leaks(findings: pl.DataFrame) -> dict[str, list[str]]:
    rows = findings.filter(pl.col("check") == "HOLD_LEAK").iter_rows(named=True)
    return {r["subject"]: r["evidence"] for r in rows}


def test_a_ref_placed_twice_and_released_once_is_closed(
    history: tuple[pl.DataFrame, dict[str, str]],
) -> None:
    findings, ids = history
    assert "ledger_plan:order:po-1:1" not in _leaks(findings)
    # the second placement is still reported, as the fold judges it
    invalid = findings.filter(pl.col("check") == "INVALID_TRANSITION")
    assert ids["second_placement"] in invalid["event_id"].to_list()


def test_a_hold_never_ended_after_its_order_completed_leaks(
    history: tuple[pl.DataFrame, dict[str, str]],
) -> None:
    findings, ids = history
    leaks = _leaks(findings)
    assert leaks["ledger_plan:order:po-2:1"] == [ids["po-2"], ids["placed"]]
    detail = findings.filter(pl.col("subject") == "ledger_plan:order:po-2:1")["detail"][0]
    assert detail.endswith("but the hold on trader:tr-1 still open")


def test_a_hold_placed_again_after_its_release_leaks_by_its_latest_placement(
    history: tuple[pl.DataFrame, dict[str, str]],
) -> None:
    findings, ids = history
    assert _leaks(findings)["ledger_plan:order:po-3:1"] == [ids["po-3"], ids["replaced"]]


def test_only_the_open_holds_leak(history: tuple[pl.DataFrame, dict[str, str]]) -> None:
    findings, _ = history
    assert set(_leaks(findings)) == {"ledger_plan:order:po-2:1", "ledger_plan:order:po-3:1"}
