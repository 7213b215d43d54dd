"""REVIEW_SKIPPED and REVIEW_OVERDUE (issue 13).

REVIEW_SKIPPED's SQL (``workbench/models/checks/review_skipped.sql``) against the domain's rule
(:func:`workbench.domain.processors.review_reason`, catalog section 4): the oracle folds the
events the replay kept, in ``(position, event_id)`` order, through
:class:`~workbench.domain.world.World`; at each ``receipt.analyzed`` it asks ``review_reason``
with the receipt and its order as they stand, and a doubtful analysis of an order not in review
is due until the order enters ``in_review``; a completion with an analysis due is flagged. Both
sides must flag the same (order, completion) pairs, on generated histories (planted and clean)
and on a clean day edited at random (confidences and amounts changed, reviews dropped).

REVIEW_OVERDUE by hand: one order per edge, its times chosen, the threshold and ``as_of`` moved
across them; and :func:`workbench.audit.review_times` agrees with the check.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import replay_diff  # tests/audit/replay_diff.py, beside this file
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_diff import SMALL, Row, clean_rows

from workbench.audit import audit, review_time_summary, review_times
from workbench.domain import payment_order as po
from workbench.domain.catalog import DecodingError, try_decode
from workbench.domain.processors import review_reason
from workbench.domain.receipt import ReceiptAnalyzed
from workbench.domain.world import World
from workbench.export import ENVELOPE_SCHEMA
from workbench.generator import generate
from workbench.replay.engine import rebuild

FEW = settings(max_examples=3, deadline=None, derandomize=True, database=None)
Pairs = set[tuple[str, str]]  # (order, completed event_id)


# ------------------------------------------------------------------------ REVIEW_SKIPPED
def sql_side(db: Path) -> Pairs:
    found = audit(db, record=False).findings.filter(pl.col("check") == "REVIEW_SKIPPED")
    return {
        (s.removeprefix("payment_order:"), e)
        for s, e in found.select("subject", "event_id").iter_rows()
    }


def oracle_side(db: Path) -> Pairs:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql("SELECT * EXCLUDE (source) FROM events ORDER BY position, event_id")
        events = [try_decode(r) for r in rows.to_arrow_table().to_pylist()]
    world, due, out = World(), set[str](), set()
    for e in events:
        assert not isinstance(e, DecodingError), e
        if isinstance(p := e.payload, ReceiptAnalyzed):
            r = world.receipts.get(e.aggregate_id)
            if r is not None and r.order_id is not None:
                o = world.orders.get(r.order_id)
                why = review_reason(o, r, p.confidence, p.extracted_amount)
                if why is not None and not (o is not None and o.status == po.IN_REVIEW):
                    due.add(r.order_id)
        world.apply(e)
        if e.stream == "payment_order":
            if e.kind == "payment_order.completed":
                if e.aggregate_id in due:
                    out.add((e.aggregate_id, e.event_id))
                due.discard(e.aggregate_id)
            elif world.orders[e.aggregate_id].status == po.IN_REVIEW:
                due.discard(e.aggregate_id)
    return out


def compare(export: Path, db: Path) -> Pairs:
    return replay_diff.compare(export, db, sql_side, oracle_side)


def compare_rows(rows: list[Row], folder: Path) -> Pairs:
    return replay_diff.compare_rows(rows, folder, sql_side, oracle_side)


@pytest.mark.parametrize("seed, clean", [(3, False), (2, True)])
def test_generated_histories(seed: int, clean: bool, tmp_path: Path) -> None:
    """Planted: the review_skipped orders (and receipt_amount's, which were reviewed: not
    flagged) on both sides; clean: none on either."""
    plant = None if clean else ("review_skipped", "receipt_amount", "no_review")
    truth = None if clean else tmp_path / "truth.csv"
    generate(
        tmp_path / "export",
        seed=seed,
        clean=clean,
        truth=truth,
        plant=plant,
        progress=False,
        **SMALL,
    )
    flagged = compare(tmp_path / "export", tmp_path / "db.duckdb")
    if clean:
        assert not flagged
    else:
        assert truth is not None
        planted = pl.read_csv(truth).filter(pl.col("check") == "REVIEW_SKIPPED")
        assert {e for _, e in flagged} == set(planted["event_id"]) != set()


#: Edit -> the kind of event it changes (the ``i``-th of them, modulo).
EDITS = {
    "confidence": "receipt.analyzed",  # 0.79, 0.8 (the edge: no review due), 0.81, 0.3
    "extracted": "receipt.analyzed",  # one unit off, or none
    "uploaded": "receipt.uploaded",  # one unit off the order's
    "drop_review": "payment_order.review_started",
}
CONFIDENCES = (0.79, 0.8, 0.81, 0.3)


def edited(edits: list[tuple[str, int]]) -> list[Row]:
    rows = [dict(r) for r in clean_rows()]
    for name, i in edits:
        among = [r for r in rows if r["kind"] == EDITS[name]]
        if not among:
            continue
        row = among[i % len(among)]
        p = json.loads(row["payload"])
        if name == "drop_review":
            rows.remove(row)
            continue
        if name == "confidence":
            p["confidence"] = CONFIDENCES[i % len(CONFIDENCES)]
        elif name == "extracted":
            p["extracted_amount"] = None if i % 3 == 0 else (p["extracted_amount"] or 100) + 1
        else:
            p["amount"] += 1 if i % 2 else -1
        row["payload"] = json.dumps(p)
    return rows


@FEW
@given(st.lists(st.tuples(st.sampled_from(sorted(EDITS)), st.integers(0, 10**6)), max_size=25))
def test_edited_histories(edits: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory(prefix="review-diff-") as d:
        compare_rows(edited(edits), Path(d))


def test_the_edits_flag_orders(tmp_path: Path) -> None:
    """The edits reach the rule: many edits flag orders on both sides, for each reason."""
    flagged = compare_rows(edited([(n, i * 7919) for n in EDITS for i in range(10)]), tmp_path)
    assert len(flagged) >= 5
    found = audit(tmp_path / "db.duckdb", record=False).findings
    details = " ".join(found.filter(pl.col("check") == "REVIEW_SKIPPED")["detail"].to_list())
    assert "confidence 0.79 < 0.8" in details and "≠ order" in details


# ------------------------------------------------------------------------ REVIEW_OVERDUE
T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


class History:
    """Orders written event by event, each through created, assigned, accepted and a review."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.seqs: dict[str, int] = {}

    def emit(self, order: str, kind: str, at: datetime, **payload: Any) -> str:
        self.seqs[order] = self.seqs.get(order, 0) + 1
        event_id = str(uuid.uuid4())
        self.rows.append(
            {
                "event_id": event_id,
                "position": len(self.rows) + 1,
                "stream": "payment_order",
                "aggregate_id": order,
                "seq": self.seqs[order],
                "kind": f"payment_order.{kind}",
                "schema_version": 1,
                "occurred_at": at,
                "recorded_at": at,
                "correlation_id": f"order:{order}",
                "causation_id": None,
                "payload": json.dumps(payload, default=lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")),
            }
        )
        return event_id

    def reviewed(self, order: str, at: datetime, reason: str = "deadline") -> str:
        """An order accepted 31 minutes before ``at``, its review started at ``at``."""
        t = at - timedelta(minutes=32)
        self.emit(
            order,
            "created",
            t,
            client_id="cl-1",
            direction="payin",
            amount=100_000,
            currency="RUB",
            client_ref="x",
            expires_at=t + timedelta(hours=1),
        )
        self.emit(
            order,
            "assigned",
            t,
            trader_id="tr-1",
            attempt=1,
            rate="100",
            settlement_currency="USDT",
            settlement_amount=10_000_000,
            platform_fee=100_000,
            trader_reward=50_000,
            accept_by=t + timedelta(minutes=2),
        )
        self.emit(
            order,
            "accepted",
            t + timedelta(minutes=1),
            trader_id="tr-1",
            complete_by=t + timedelta(minutes=31),
        )
        return self.emit(order, "review_started", at, reason=reason)

    def db(self, folder: Path) -> Path:
        (folder / "export").mkdir()
        rows = sorted(self.rows, key=lambda r: r["occurred_at"])
        for i, r in enumerate(rows):
            r["position"] = i + 1
        table = pa.Table.from_pylist(rows, schema=ENVELOPE_SCHEMA)
        pq.write_table(table, folder / "export/p.parquet")
        rebuild([folder / "export"], folder / "db.duckdb", progress=False)
        return folder / "db.duckdb"


def overdue(db: Path, **kwargs: Any) -> dict[str, tuple[str, str]]:
    """order -> (offending event, detail) of the REVIEW_OVERDUE findings."""
    found = audit(db, record=False, **kwargs).findings.filter(pl.col("check") == "REVIEW_OVERDUE")
    return {
        s.removeprefix("payment_order:"): (e, d)
        for s, e, d in found.select("subject", "event_id", "detail").iter_rows()
    }


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Five orders: reviews that ended after exactly 24 h, 24 h and one second, and 30 h (by a
    cancel, a receipt attached on the way); one still open since T0 + 1 h; one reviewed twice
    (a second review_started while in review starts nothing). The last event at T0 + 40 h."""
    h, ev = History(), {}
    start = T0 + timedelta(hours=1)
    for order, lasted, end in (
        ("exact", timedelta(hours=24), "completed"),
        ("second", timedelta(hours=24, seconds=1), "completed"),
        ("cancel", timedelta(hours=30), "cancelled"),
    ):
        ev[f"{order}.start"] = h.reviewed(order, start)
        if order == "cancel":
            h.emit(order, "receipt_attached", start + timedelta(hours=2), receipt_id="rc-1")
        payload = (
            {"trader_id": "tr-1", "paid_amount": 100_000}
            if end == "completed"
            else {"reason": "review_rejected"}
        )
        ev[f"{order}.end"] = h.emit(order, end, start + lasted, **payload)
    ev["open.start"] = h.reviewed("open", start, reason="low_confidence")
    ev["twice.start"] = h.reviewed("twice", start)
    h.emit("twice", "review_started", start + timedelta(hours=20), reason="manual")
    ev["twice.end"] = h.emit(
        "twice", "completed", start + timedelta(hours=25), trader_id="tr-1", paid_amount=100_000
    )
    h.emit(
        "last",
        "created",
        T0 + timedelta(hours=40),
        client_id="cl-1",
        direction="payin",
        amount=100_000,
        currency="RUB",
        client_ref="y",
        expires_at=T0 + timedelta(hours=41),
    )
    return h.db(tmp_path_factory.mktemp("overdue")), ev


def test_overdue_edges(edges: tuple[Path, dict[str, str]]) -> None:
    """Exactly the threshold is not overdue, a second more is; a review ends when the order
    leaves in_review (not at a receipt attached; not restarted by a second review_started);
    one still open is judged at the audit's now (the last recorded_at: T0 + 40 h) with its
    review_started."""
    db, ev = edges
    found = overdue(db)
    assert set(found) == {"second", "cancel", "open", "twice"}
    for order in ("second", "cancel", "twice"):
        assert found[order][0] == ev[f"{order}.end"]
    assert found["open"][0] == ev["open.start"]
    assert "ended by payment_order.cancelled after 30.0 h" in found["cancel"][1]
    assert "still open at 2026-11-02 22:00:00 after 39.0 h" in found["open"][1]
    assert "review (low_confidence) started 2026-11-01 07:00:00" in found["open"][1]
    assert "past the 24.0 h threshold" in found["second"][1]


def test_overdue_threshold_and_as_of(edges: tuple[Path, dict[str, str]]) -> None:
    """The threshold is a parameter; --as-of judges the open review then, and a review that
    ended after as_of is open at it."""
    db, ev = edges
    assert set(overdue(db, review_overdue=timedelta(hours=30))) == {"open"}  # 30.0 h is not > 30
    at = T0 + timedelta(hours=25)  # 24 h after the reviews started: nothing overdue yet
    assert overdue(db, as_of=at) == {}
    later = overdue(db, as_of=at + timedelta(hours=5))  # 29 h: the cancel's review still open
    assert set(later) == {"second", "cancel", "open", "twice"}
    assert later["cancel"][0] == ev["cancel.start"] and later["second"][0] == ev["second.end"]
    with pytest.raises(ValueError, match="duration >= 0"):
        audit(db, record=False, review_overdue=timedelta(hours=-1))


def test_review_times_agree_with_the_check(edges: tuple[Path, dict[str, str]]) -> None:
    db, _ = edges
    times = review_times(db)
    by_order = {r["order_id"]: r for r in times.iter_rows(named=True)}
    assert set(by_order) == {"exact", "second", "cancel", "open", "twice"}
    assert by_order["exact"]["hours"] == 24.0 and by_order["cancel"]["hours"] == 30.0
    assert by_order["open"]["still_open"] and by_order["open"]["ended_at"] is None
    assert by_order["open"]["hours"] == 39.0 and by_order["twice"]["reason"] == "deadline"
    assert {o for o, r in by_order.items() if r["hours"] > 24} == set(overdue(db))
    summary = {r["reason"]: r for r in review_time_summary(times).iter_rows(named=True)}
    assert summary["deadline"]["reviews"] == 4 and summary["deadline"]["still_open"] == 0
    assert summary["deadline"]["max_hours"] == 30.0
    assert summary["deadline"]["p50_hours"] == pytest.approx((24 + 24 + 1 / 3600) / 2 + 0.5)
    assert summary["low_confidence"]["still_open"] == 1
    at = review_times(db, as_of=T0 + timedelta(hours=28))
    assert at.filter(pl.col("order_id") == "cancel")["still_open"].to_list() == [True]
    assert at.filter(pl.col("order_id") == "cancel")["hours"].to_list() == [27.0]
