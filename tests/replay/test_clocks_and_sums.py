"""Issue 12: clocks and amounts are judged.

* Money sums past int64 never crash either engine: they are computed exactly, stored as NULL in
  their BIGINT column, and an ``AMOUNT_OVERFLOW`` violation names the subject, the event after
  which it first left int64 and the exact figures. Fold, SQL and the live stream's incremental
  apply agree row for row.
* Implausible clocks (``occurred_at`` after ``recorded_at`` by more than the tolerance, or a
  timestamp outside the platform's era) are ``CLOCK_SKEW`` violations in all three paths.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.domain.catalog import decode_payload
from workbench.domain.clock import ERA_END, ERA_START, SKEW_TOLERANCE, clock_violations, stamp
from workbench.domain.events import Event
from workbench.domain.money import INT64_MAX
from workbench.domain.world import World
from workbench.export import ENVELOPE_SCHEMA
from workbench.replay import bulk, rebuild, rows, store
from workbench.replay.publish import messages
from workbench.replay.schema import EVENTS, VIOLATIONS
from workbench.replay.stream import Message, StreamDatabase, StreamKey

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
NINE = 9_000_000_000_000_000_000  # fits int64; two of them do not


class History:
    """A tiny hand-written export in the catalog's envelope, one event per position."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.seqs: dict[tuple[str, str], int] = {}

    def add(
        self,
        stream: str,
        aggregate_id: str,
        kind: str,
        payload: dict[str, Any],
        *,
        version: int = 1,
        occurred: datetime | None = None,
        recorded: datetime | None = None,
    ) -> str:
        seq = self.seqs[(stream, aggregate_id)] = self.seqs.get((stream, aggregate_id), 0) + 1
        pos = len(self.rows) + 1
        at = occurred or T0 + timedelta(seconds=pos)
        eid = f"e-{pos:04d}"
        self.rows.append(
            {
                "event_id": eid,
                "position": pos,
                "stream": stream,
                "aggregate_id": aggregate_id,
                "seq": seq,
                "kind": f"{stream}.{kind}",
                "schema_version": version,
                "occurred_at": at,
                "recorded_at": recorded or at,
                "correlation_id": None,
                "causation_id": None,
                "payload": json.dumps(payload),
            }
        )
        return eid

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True)
        table = pa.Table.from_pylist(self.rows, schema=ENVELOPE_SCHEMA)
        pq.write_table(table, folder / "part-0.parquet")
        return folder

    def events(self) -> list[Event]:
        """The rows as decoded events, without the decoder's envelope checks (so that clocks
        it may refuse can still be folded)."""
        return [
            Event(
                event_id=r["event_id"],
                position=r["position"],
                stream=r["stream"],
                aggregate_id=r["aggregate_id"],
                seq=r["seq"],
                kind=r["kind"],
                schema_version=r["schema_version"],
                occurred_at=r["occurred_at"],
                recorded_at=r["recorded_at"],
                correlation_id=r["correlation_id"],
                causation_id=r["causation_id"],
                payload=decode_payload(r["kind"], r["schema_version"], r["payload"]),
            )
            for r in self.rows
        ]

    # ------------------------------------------------------------------ building blocks
    def trader(self, tid: str) -> None:
        self.add(
            "trader",
            tid,
            "registered",
            {
                "name": tid,
                "fiat_currency": "RUB",
                "settlement_currency": "USDT",
                "min_amount": 100,
                "max_amount": 10**9,
                "max_active_orders": 3,
                "reward_bps": 50,
            },
        )

    def topup(self, tid: str, ref: str, amount: int) -> str:
        """A top-up as the platform books it: the ledger plan, then the trader stream."""
        self.add(
            "ledger_plan",
            ref,
            "batch_held",
            {
                "batch_id": 1,
                "postings": [
                    {
                        "from": "external:USDT",
                        "to": f"trader:{tid}",
                        "amount": amount,
                        "currency": "USDT",
                        "description": "top-up",
                    }
                ],
            },
        )
        self.add("ledger_plan", ref, "committed", {"batch_ids": [1]})
        return self.add("trader", tid, "deposit_topped_up", {"ref": ref, "amount": amount})


def overflow_history() -> History:
    h = History()
    h.add(
        "client", "c1", "registered", {"name": "C", "settlement_currency": "USDT", "fee_bps": 100}
    )
    # t1: two top-ups of 9e18, the deposit (and the ledger accounts) leave int64 and stay out
    h.trader("t1")
    h.topup("t1", "topup:a", NINE)
    h.topup("t1", "topup:b", NINE)
    h.add("trader", "t1", "went_online", {})
    # t2: holds past int64 (held, then available), then back in range
    h.trader("t2")
    h.topup("t2", "topup:c", 10**6)
    h.add("trader", "t2", "hold_placed", {"ref": "payout:p1", "amount": NINE})
    h.add("trader", "t2", "hold_placed", {"ref": "payout:p2", "amount": NINE})
    h.add("trader", "t2", "hold_released", {"ref": "payout:p1", "amount": NINE})
    h.add("trader", "t2", "hold_released", {"ref": "payout:p2", "amount": NINE})
    h.add("trader", "t2", "hold_placed", {"ref": "payout:p3", "amount": NINE})
    h.add("trader", "t2", "hold_placed", {"ref": "payout:p4", "amount": NINE})  # not again
    # a plan whose postings sum past int64: held (a held amount past int64), then committed
    h.add(
        "ledger_plan",
        "topup:d",
        "batch_held",
        {
            "batch_id": 1,
            "postings": [
                {
                    "from": "external:EUR",
                    "to": "client:c1",
                    "amount": NINE,
                    "currency": "EUR",
                    "description": f"part {i}",
                }
                for i in (1, 2)
            ],
        },
    )
    h.add("ledger_plan", "topup:d", "committed", {"batch_ids": [1]})
    return h


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def overflow_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return overflow_history().write(tmp_path_factory.mktemp("overflow") / "export")


@pytest.fixture(scope="module")
def overflow_dbs(overflow_export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("overflow-dbs")
    return {
        engine: (
            base / f"{engine}.duckdb",
            rebuild([overflow_export], base / f"{engine}.duckdb", progress=False, engine=engine),
        )
        for engine in ("fold", "sql")
    }


def test_sums_past_int64_do_not_crash_and_both_engines_agree(overflow_dbs: dict) -> None:
    (fold_db, fold), (_, sql) = overflow_dbs["fold"], overflow_dbs["sql"]
    assert fold.applied == sql.applied == len(overflow_history().rows)
    assert fold.quarantined == sql.quarantined == 0
    assert fold.hashes == sql.hashes
    con = duckdb.connect(str(fold_db))
    try:
        assert bulk.differences(con) == {}
    finally:
        con.close()


@pytest.mark.parametrize("engine", ["fold", "sql"])
def test_balances_past_int64_are_null_and_the_rest_exact(overflow_dbs: dict, engine: str) -> None:
    db = overflow_dbs[engine][0]
    traders = _rows(
        db, "SELECT trader_id, deposit_balance, held, available FROM traders ORDER BY 1"
    )
    # t1 ends out of range; t2 ends with two holds of 9e18 open: held and available out
    assert traders == [("t1", None, 0, None), ("t2", 10**6, None, None)]
    accounts = _rows(
        db, "SELECT account, currency, own, held, available FROM account_balances ORDER BY 1, 2"
    )
    assert accounts == [
        ("client:c1", "EUR", None, 0, None),
        ("external:EUR", "EUR", None, 0, None),
        ("external:USDT", "USDT", None, 0, None),
        ("trader:t1", "USDT", None, 0, None),
        ("trader:t2", "USDT", 10**6, 0, 10**6),
    ]


@pytest.mark.parametrize("engine", ["fold", "sql"])
def test_each_overflow_is_reported_once_with_its_exact_figures(
    overflow_dbs: dict, engine: str
) -> None:
    db = overflow_dbs[engine][0]
    found = _rows(
        db,
        "SELECT subject, event_id, detail FROM violations WHERE code = 'AMOUNT_OVERFLOW' "
        "ORDER BY subject, detail",
    )
    h = overflow_history()
    by_kind = {(r["aggregate_id"], r["kind"], r["seq"]): r["event_id"] for r in h.rows}
    two = 2 * NINE
    assert found == [
        (
            "client:c1",
            by_kind[("topup:d", "ledger_plan.committed", 2)],
            f"client:c1 EUR own {two}, held 0, available {two} after ledger_plan.committed of "
            "topup:d: own, available outside the int64 range",
        ),
        (
            "external:EUR",
            by_kind[("topup:d", "ledger_plan.batch_held", 1)],
            f"external:EUR EUR own 0, held {two}, available {-two} after "
            "ledger_plan.batch_held of topup:d: held, available outside the int64 range",
        ),
        (  # the second top-up's hold: own -9e18, held 9e18; reported once, not at the commit
            "external:USDT",
            by_kind[("topup:b", "ledger_plan.batch_held", 1)],
            f"external:USDT USDT own {-NINE}, held {NINE}, available {-two} after "
            "ledger_plan.batch_held of topup:b: available outside the int64 range",
        ),
        (
            "trader:t1",
            by_kind[("t1", "trader.deposit_topped_up", 3)],
            f"deposit_balance {two}, held 0, available {two} after trader.deposit_topped_up of "
            "topup:b: deposit_balance, available outside the int64 range",
        ),
        (
            "trader:t1",
            by_kind[("topup:b", "ledger_plan.committed", 2)],
            f"trader:t1 USDT own {two}, held 0, available {two} after ledger_plan.committed of "
            "topup:b: own, available outside the int64 range",
        ),
        (
            "trader:t2",
            by_kind[("t2", "trader.hold_placed", 4)],
            f"deposit_balance {10**6}, held {two}, available {10**6 - two} after "
            "trader.hold_placed of payout:p2: held, available outside the int64 range",
        ),
    ]
    assert two > INT64_MAX


def test_the_audit_reports_overflows_without_crashing(overflow_dbs: dict) -> None:
    from workbench.audit import audit, reconcile_payouts

    findings = audit(overflow_dbs["sql"][0], record=False).findings
    overflow = findings.filter(findings["check"] == "AMOUNT_OVERFLOW")
    assert overflow.height == 6
    assert set(overflow["severity"]) == {"high"}
    # the daily reconciliation sums too: a day's top-ups past int64 are NULL, not an error
    day = reconcile_payouts(overflow_dbs["sql"][0]).filter(pl.col("account") == "trader:t1")
    assert day["top_ups"].to_list() == [None]


KEY = StreamKey("test:S", "epoch-1")


@pytest.mark.parametrize("size", [1, 4, 1000])
def test_the_live_stream_gives_the_same_projections(
    overflow_export: Path, overflow_dbs: dict, tmp_path: Path, size: int
) -> None:
    """Batches of the history through the incremental apply (from stored rows holding NULL for
    figures past int64) equal the Parquet replay."""
    bodies = [m.body for m in messages([overflow_export])]
    db = StreamDatabase(tmp_path / "s.duckdb", "test://")
    for i in range(0, len(bodies), size):
        msgs = [Message(i + j + 1, b) for j, b in enumerate(bodies[i : i + size])]
        assert db.apply(KEY, msgs).balanced
    hashes = db.finish()
    db.close()
    assert hashes == overflow_dbs["sql"][1].hashes


# ------------------------------------------------------------------------------ clocks
def _event(occurred: datetime, recorded: datetime) -> Event:
    h = History()
    h.add(
        "client",
        "c1",
        "registered",
        {"name": "C", "settlement_currency": "USDT", "fee_bps": 100},
        occurred=occurred,
        recorded=recorded,
    )
    return h.events()[0]


@pytest.mark.parametrize(
    ("occurred", "recorded", "reasons"),
    [
        (T0, T0, []),
        (T0, T0 + timedelta(hours=1), []),
        (T0 + SKEW_TOLERANCE, T0, []),  # exactly the tolerance: a clock slightly ahead
        (T0 + SKEW_TOLERANCE + timedelta(microseconds=1), T0, ["more than 5 s after"]),
        (datetime(9999, 12, 31, tzinfo=UTC), T0, ["more than 5 s after", "occurred_at outside"]),
        (
            datetime(9999, 12, 31, tzinfo=UTC),
            datetime(9999, 12, 31, 0, 0, 1, tzinfo=UTC),
            ["occurred_at outside", "recorded_at outside"],
        ),
        (
            datetime(1, 1, 1, tzinfo=UTC),
            datetime(1, 1, 1, tzinfo=UTC),
            ["occurred_at outside", "recorded_at outside"],
        ),
        (ERA_START, ERA_START, []),
        (ERA_START - timedelta(microseconds=1), T0, ["occurred_at outside"]),
        (T0, ERA_END, ["recorded_at outside"]),
    ],
)
def test_clock_rule(occurred: datetime, recorded: datetime, reasons: list[str]) -> None:
    found = clock_violations(_event(occurred, recorded))
    assert len(found) == (1 if reasons else 0)
    for v in found:
        assert v.code == "CLOCK_SKEW" and v.subject == "client:c1"
        assert all(r in v.detail for r in reasons)
        assert v.detail.startswith(
            f"occurred_at {stamp(occurred)}, recorded_at {stamp(recorded)}: "
        )
        assert len(v.detail.split("; ")) == len(reasons)


def clock_history() -> History:
    """Clocks the decoder takes (``recorded_at >= occurred_at``) and ones it may refuse."""
    h = History()
    far = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    year1 = datetime(1, 1, 1, tzinfo=UTC)
    h.add("client", "c1", "registered", {"name": "A", "settlement_currency": "USDT", "fee_bps": 1})
    h.add("client", "c2", "registered", {"name": "B", "settlement_currency": "USDT", "fee_bps": 1})
    h.add("client", "c1", "fee_changed", {"fee_bps": 2}, occurred=far, recorded=far)
    h.add("client", "c2", "fee_changed", {"fee_bps": 2}, occurred=year1, recorded=year1)
    h.trader("t1")
    h.add("trader", "t1", "went_online", {}, occurred=year1, recorded=T0)
    return h


def skewed_history() -> History:
    """``occurred_at`` past ``recorded_at`` (a decoder of catalog v1 refuses these rows)."""
    h = clock_history()
    far = datetime(9999, 12, 31, tzinfo=UTC)
    h.add("client", "c1", "fee_changed", {"fee_bps": 3}, occurred=far, recorded=T0)
    h.add("trader", "t1", "went_offline", {}, occurred=T0 + timedelta(seconds=6), recorded=T0)
    h.add("trader", "t1", "went_online", {}, occurred=T0 + SKEW_TOLERANCE, recorded=T0)
    h.add(
        "trader",
        "t1",
        "went_offline",
        {},
        occurred=T0 + SKEW_TOLERANCE + timedelta(microseconds=1),
        recorded=T0,
    )
    return h


def test_clocks_the_decoder_takes_are_judged_alike_by_both_engines(tmp_path: Path) -> None:
    h = clock_history()
    export = h.write(tmp_path / "export")
    fold = rebuild([export], tmp_path / "fold.duckdb", progress=False, engine="fold")
    sql = rebuild([export], tmp_path / "sql.duckdb", progress=False, engine="sql")
    assert fold.applied == sql.applied == len(h.rows)
    assert fold.hashes == sql.hashes
    found = _rows(
        tmp_path / "sql.duckdb",
        "SELECT event_id, subject, detail FROM violations WHERE code = 'CLOCK_SKEW' ORDER BY 1",
    )
    assert found == [
        (
            "e-0003",
            "client:c1",
            "occurred_at 9999-12-31T23:59:59.999999Z, recorded_at 9999-12-31T23:59:59.999999Z: "
            "occurred_at outside the era [2000-01-01, 2100-01-01); "
            "recorded_at outside the era [2000-01-01, 2100-01-01)",
        ),
        (
            "e-0004",
            "client:c2",
            "occurred_at 0001-01-01T00:00:00.000000Z, recorded_at 0001-01-01T00:00:00.000000Z: "
            "occurred_at outside the era [2000-01-01, 2100-01-01); "
            "recorded_at outside the era [2000-01-01, 2100-01-01)",
        ),
        (
            "e-0006",
            "trader:t1",
            "occurred_at 0001-01-01T00:00:00.000000Z, recorded_at 2026-11-01T10:00:00.000000Z: "
            "occurred_at outside the era [2000-01-01, 2100-01-01)",
        ),
    ]
    # the live stream, one event per batch (the incremental path), agrees
    bodies = [m.body for m in messages([export])]
    db = StreamDatabase(tmp_path / "s.duckdb", "test://")
    for i, b in enumerate(bodies):
        assert db.apply(KEY, [Message(i + 1, b)]).balanced
    hashes = db.finish()
    db.close()
    assert hashes == sql.hashes


def test_skewed_clocks_are_judged_alike_by_the_fold_and_the_sql(tmp_path: Path) -> None:
    """Whatever the decoder does with ``recorded_at < occurred_at``, the rule's two sides agree:
    the fold's violations of the events, and the SQL's over the same events stored as they are."""
    h = skewed_history()
    world = World().apply_all(h.events())
    expected = sorted(r for r in rows.violations(world))
    assert [r for r in expected if r[0] == "CLOCK_SKEW" and r[1] >= "e-0007"] == [
        (
            "CLOCK_SKEW",
            "e-0007",
            "client:c1",
            "occurred_at 9999-12-31T00:00:00.000000Z, recorded_at 2026-11-01T10:00:00.000000Z: "
            "occurred_at more than 5 s after recorded_at; "
            "occurred_at outside the era [2000-01-01, 2100-01-01)",
        ),
        (
            "CLOCK_SKEW",
            "e-0008",
            "trader:t1",
            "occurred_at 2026-11-01T10:00:06.000000Z, recorded_at 2026-11-01T10:00:00.000000Z: "
            "occurred_at more than 5 s after recorded_at",
        ),
        (
            "CLOCK_SKEW",
            "e-0010",
            "trader:t1",
            "occurred_at 2026-11-01T10:00:05.000001Z, recorded_at 2026-11-01T10:00:00.000000Z: "
            "occurred_at more than 5 s after recorded_at",
        ),
    ]
    assert "e-0009" not in {r[1] for r in expected}  # exactly the tolerance
    con = store.connect(tmp_path / "x.duckdb")
    try:
        store.append_rows(con, EVENTS, [(*r.values(), "test") for r in h.rows])
        bulk.build(con)
        got = sorted(con.execute(f"SELECT * FROM {VIOLATIONS.name}").fetchall())
    finally:
        con.close()
    assert got == expected
