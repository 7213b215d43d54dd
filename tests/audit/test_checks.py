"""Each check on small histories: a clean history with one event changed by one unit (one minor unit,
one microsecond past a deadline) must give a finding of that check, proven by the changed event;
the near miss (the limit itself, the same value written differently) must give none. There is no
tolerance for money."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from workbench.audit.run import run_checks
from workbench.domain.scheduler import SWEEP_DELAY
from workbench.generator import generate
from workbench.replay import bulk, rebuild, store, typed


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clean")
    generate(
        root / "export",
        seed=21,
        days=3,
        orders_per_day=300,
        traders=12,
        clients=4,
        clean=True,
        progress=False,
    )
    db = root / "clean.duckdb"
    rebuild([root / "export"], db, progress=False)
    return db


@pytest.fixture
def db(clean_db: Path, tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    path = tmp_path / "case.duckdb"
    shutil.copy(clean_db, path)
    con = duckdb.connect(str(path))
    yield con
    con.close()


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    rows = con.sql(sql).to_arrow_table().to_pylist()
    assert rows, f"the clean history has no row for: {sql}"
    return dict(rows[0])


def _edit(
    con: duckdb.DuckDBPyConnection, event_id: str, change: Callable[[dict[str, Any]], None]
) -> None:
    payload = json.loads(
        _one(con, f"SELECT payload FROM events WHERE event_id = '{event_id}'")["payload"]
    )
    change(payload)
    con.execute(
        "UPDATE events SET payload = ? WHERE event_id = ?", [json.dumps(payload), event_id]
    ).fetchall()


def _build(con: duckdb.DuckDBPyConnection) -> None:
    """The projections again after a test edited ``events`` by hand: the typed payloads are
    decoded again first (the models read them, not the JSON text)."""
    typed.sync(con)
    bulk.build(con)


def _findings(con: duckdb.DuckDBPyConnection, check: str) -> pl.DataFrame:
    _build(con)
    found, _ = run_checks(con)
    return found.filter(pl.col("check") == check)


def _proven_by(found: pl.DataFrame, event_id: str) -> bool:
    return any(ev[0] == event_id for ev in found["evidence"])


def test_the_clean_history_has_no_finding(db: duckdb.DuckDBPyConnection) -> None:
    found, _ = run_checks(db)
    assert found.is_empty()


# ------------------------------------------------------------------------------ pricing
ASSIGNED = "SELECT event_id, payload FROM events WHERE kind = 'payment_order.assigned' ORDER BY position LIMIT 1"


@pytest.mark.parametrize("delta", [1, -1])
def test_fx_one_minor_unit_off(db: duckdb.DuckDBPyConnection, delta: int) -> None:
    e = _one(db, ASSIGNED)
    _edit(db, e["event_id"], lambda p: p.update(settlement_amount=p["settlement_amount"] + delta))
    found = _findings(db, "FX_MISMATCH")
    assert _proven_by(found, e["event_id"]) and found["amount_delta"].to_list() == [delta]


def test_fx_rate_written_with_a_trailing_zero_is_the_same_rate(
    db: duckdb.DuckDBPyConnection,
) -> None:
    e = _one(db, ASSIGNED)
    _edit(
        db,
        e["event_id"],
        lambda p: p.update(rate=p["rate"] + "0" if "." in p["rate"] else p["rate"] + ".0"),
    )
    assert _findings(db, "FX_MISMATCH").is_empty()


@pytest.mark.parametrize("field", ["platform_fee", "trader_reward"])
def test_fee_or_reward_one_minor_unit_off(db: duckdb.DuckDBPyConnection, field: str) -> None:
    e = _one(db, ASSIGNED)
    _edit(db, e["event_id"], lambda p: p.update({field: p[field] + 1}))
    assert _proven_by(_findings(db, "FEE_MISMATCH"), e["event_id"])


# ------------------------------------------------------------------------------ deadlines
ACCEPTED = """
SELECT c.event_id, (a.payload->>'accept_by')::TIMESTAMPTZ AS accept_by
FROM events c JOIN events a ON a.aggregate_id = c.aggregate_id AND a.kind = 'payment_order.assigned'
 AND a.position < c.position
WHERE c.kind = 'payment_order.accepted'
QUALIFY row_number() OVER (PARTITION BY c.event_id ORDER BY a.position DESC) = 1
ORDER BY c.position LIMIT 1
"""


@pytest.mark.parametrize(
    ("late", "expected"), [(timedelta(microseconds=1), True), (timedelta(0), False)]
)
def test_acceptance_after_accept_by(
    db: duckdb.DuckDBPyConnection, late: timedelta, expected: bool
) -> None:
    e = _one(db, ACCEPTED)
    db.execute(
        "UPDATE events SET occurred_at = ? WHERE event_id = ?",
        [e["accept_by"] + late, e["event_id"]],
    ).fetchall()
    assert _proven_by(_findings(db, "DEADLINE_MISSED"), e["event_id"]) is expected


EXPIRED = """
SELECT x.event_id, (c.payload->>'expires_at')::TIMESTAMPTZ AS expires_at
FROM events x JOIN events c ON c.aggregate_id = x.aggregate_id AND c.kind = 'payment_order.created'
WHERE x.kind = 'payment_order.cancelled' AND x.payload LIKE '%expired%'
ORDER BY x.position LIMIT 1
"""


@pytest.mark.parametrize(
    ("late", "expected"), [(timedelta(microseconds=1), True), (timedelta(0), False)]
)
def test_order_cancelled_later_than_the_sweep_after_expiry(
    db: duckdb.DuckDBPyConnection, late: timedelta, expected: bool
) -> None:
    e = _one(db, EXPIRED)
    at = e["expires_at"] + SWEEP_DELAY + late
    db.execute(
        "UPDATE events SET occurred_at = ?, recorded_at = ? WHERE event_id = ?",
        [at, at, e["event_id"]],
    ).fetchall()
    assert _proven_by(_findings(db, "DEADLINE_MISSED"), e["event_id"]) is expected


# ------------------------------------------------------------------------------ receipts
APPROVED = """
SELECT u.event_id AS uploaded, a.event_id AS approved, u.payload->>'order_id' AS order_id
FROM events u JOIN events a ON a.aggregate_id = u.aggregate_id AND a.kind = 'receipt.approved'
WHERE u.kind = 'receipt.uploaded' ORDER BY u.position LIMIT 2
"""


@pytest.mark.parametrize(("delta", "expected"), [(-1, True), (1, True), (0, False)])
def test_approved_receipt_amount_differs_from_its_order(
    db: duckdb.DuckDBPyConnection, delta: int, expected: bool
) -> None:
    e = _one(db, APPROVED)
    _edit(db, e["uploaded"], lambda p: p.update(amount=p["amount"] + delta))
    assert _proven_by(_findings(db, "RECEIPT_AMOUNT_MISMATCH"), e["approved"]) is expected


def test_receipt_file_used_for_another_order(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.sql(APPROVED).to_arrow_table().to_pylist()
    first, second = rows[0], rows[1]
    sha = json.loads(
        _one(db, f"SELECT payload FROM events WHERE event_id = '{first['uploaded']}'")["payload"]
    )["file_sha256"]
    _edit(db, second["uploaded"], lambda p: p.update(file_sha256=sha))
    assert _proven_by(_findings(db, "RECEIPT_REUSED"), second["uploaded"])


def test_payout_order_completed_without_approved_receipt(db: duckdb.DuckDBPyConnection) -> None:
    e = _one(
        db,
        """SELECT a.event_id AS approved, c.event_id AS completed FROM events a
        JOIN events u ON u.aggregate_id = a.aggregate_id AND u.kind = 'receipt.uploaded'
        JOIN events c ON c.aggregate_id = u.payload->>'order_id' AND c.kind = 'payment_order.completed'
        JOIN events o ON o.aggregate_id = c.aggregate_id AND o.kind = 'payment_order.created'
        WHERE a.kind = 'receipt.approved' AND o.payload LIKE '%"payout"%' ORDER BY a.position LIMIT 1""",
    )
    db.execute("DELETE FROM events WHERE event_id = ?", [e["approved"]]).fetchall()
    assert _proven_by(_findings(db, "RECEIPT_MISSING"), e["completed"])


# ------------------------------------------------------------------------------ ledger
@pytest.mark.parametrize("delta", [1, -1])
def test_trader_stream_one_minor_unit_from_the_ledger(
    db: duckdb.DuckDBPyConnection, delta: int
) -> None:
    e = _one(
        db,
        "SELECT event_id FROM events WHERE kind IN ('trader.deposit_credited', 'trader.hold_captured') "
        "ORDER BY position LIMIT 1",
    )
    _edit(db, e["event_id"], lambda p: p.update(amount=p["amount"] + delta))
    assert _proven_by(_findings(db, "TRADER_LEDGER_DRIFT"), e["event_id"])


def test_order_plan_posting_one_minor_unit_moved(db: duckdb.DuckDBPyConnection) -> None:
    e = _one(
        db,
        "SELECT event_id FROM events WHERE kind = 'ledger_plan.batch_held' AND aggregate_id LIKE 'order:%' "
        "AND json_array_length(payload, '$.postings') = 2 ORDER BY position LIMIT 1",
    )

    def shift(p: dict[str, Any]) -> None:
        p["postings"][0]["amount"] -= 1
        p["postings"][1]["amount"] += 1

    _edit(db, e["event_id"], shift)
    found = _findings(db, "ORDER_SETTLEMENT_MISMATCH")
    assert _proven_by(found, e["event_id"]) and found["amount_delta"].to_list() == [-1]


def test_attempt_plan_never_rolled_back_is_a_hold_leak(db: duckdb.DuckDBPyConnection) -> None:
    e = _one(
        db,
        """SELECT r.event_id AS rollback, d.event_id AS ended FROM events r
        JOIN events d ON d.kind IN ('payment_order.assignment_declined', 'payment_order.assignment_expired')
         AND r.aggregate_id LIKE 'order:' || d.aggregate_id || ':%' AND d.position < r.position
        WHERE r.kind = 'ledger_plan.rolled_back'
        QUALIFY row_number() OVER (PARTITION BY r.event_id ORDER BY d.position DESC) = 1
        ORDER BY r.position LIMIT 1""",
    )
    db.execute("DELETE FROM events WHERE event_id = ?", [e["rollback"]]).fetchall()
    assert _proven_by(_findings(db, "HOLD_LEAK"), e["ended"])


# ------------------------------------------------------------------------------ scheduler
def test_order_one_minor_unit_above_the_traders_limit(db: duckdb.DuckDBPyConnection) -> None:
    e = _one(
        db,
        """SELECT a.event_id AS assigned, c.event_id AS created,
           coalesce(r.payload->>'$.limits.max_amount', r.payload->>'max_amount')::BIGINT AS max_amount
        FROM events a JOIN events c ON c.aggregate_id = a.aggregate_id AND c.kind = 'payment_order.created'
        JOIN events r ON r.aggregate_id = a.payload->>'trader_id' AND r.kind = 'trader.registered'
        WHERE a.kind = 'payment_order.assigned'
          AND NOT EXISTS (SELECT 1 FROM events l WHERE l.kind = 'trader.limits_changed' AND l.aggregate_id = r.aggregate_id)
        ORDER BY a.position LIMIT 1""",
    )

    def amount(value: int) -> Callable[[dict[str, Any]], None]:
        def change(p: dict[str, Any]) -> None:
            if "money" in p:
                p["money"]["amount"] = value
            else:
                p["amount"] = value

        return change

    _edit(db, e["created"], amount(e["max_amount"]))
    assert not _proven_by(_findings(db, "ASSIGNMENT_VIOLATION"), e["assigned"])  # at the limit
    _edit(db, e["created"], amount(e["max_amount"] + 1))
    found = _findings(db, "ASSIGNMENT_VIOLATION")
    assert _proven_by(found, e["assigned"]) and "amount_limits" in found["detail"][0]


# ------------------------------------------------------------------------------ ratings
RATING = "SELECT event_id FROM events WHERE kind = 'trader_rating.published' ORDER BY position DESC LIMIT 1"


def test_published_score_one_hundredth_off(db: duckdb.DuckDBPyConnection) -> None:
    e = _one(db, RATING)
    row = _one(db, f"SELECT payload FROM events WHERE event_id = '{e['event_id']}'")
    score = json.loads(row["payload"], parse_float=str)["score"]
    text = (
        row["payload"]
        .replace(f'"score": {score}', '"score": X')
        .replace(f'"score":{score}', '"score":X')
    )
    assert "X" in text
    from decimal import Decimal

    db.execute(
        "UPDATE events SET payload = ? WHERE event_id = ?",
        [text.replace("X", str(Decimal(score) + Decimal("0.01"))), e["event_id"]],
    ).fetchall()
    assert _proven_by(_findings(db, "RATING_MISMATCH"), e["event_id"])


def test_published_count_one_off(db: duckdb.DuckDBPyConnection) -> None:
    e = _one(db, RATING)
    _edit(db, e["event_id"], lambda p: p.update(assignments=p["assignments"] + 1))
    assert _proven_by(_findings(db, "RATING_MISMATCH"), e["event_id"])


# ------------------------------------------------------------------------------ reconciliation and runs
def test_reconciliation_balances_on_a_clean_history_and_shows_one_minor_unit(
    db: duckdb.DuckDBPyConnection,
) -> None:
    from workbench.audit import reconcile_payouts

    clean = reconcile_payouts(db)
    assert clean.height > 0
    assert clean.filter(
        (pl.col("orders_difference") != 0) | (pl.col("payouts_difference") != 0)
    ).is_empty()
    test_order_plan_posting_one_minor_unit_moved(db)  # moves one unit from a client leg to revenue
    broken = reconcile_payouts(db).filter(pl.col("orders_difference") != 0)
    assert broken["orders_difference"].abs().to_list() == [1]


def test_runs_mark_findings_new_open_resolved_and_reopened(clean_db: Path, tmp_path: Path) -> None:
    from workbench.audit import audit

    path = tmp_path / "runs.duckdb"
    shutil.copy(clean_db, path)
    con = duckdb.connect(str(path))
    e = _one(con, ASSIGNED)
    original = _one(con, f"SELECT payload FROM events WHERE event_id = '{e['event_id']}'")[
        "payload"
    ]
    _edit(con, e["event_id"], lambda p: p.update(platform_fee=p["platform_fee"] + 1))
    _build(con)
    con.close()
    first = audit(path).findings
    assert set(first["status"]) == {"new"} and first.height >= 1
    second = audit(path).findings
    assert second["finding_id"].to_list() == first["finding_id"].to_list()  # stable ids
    assert set(second["status"]) == {"open"} and set(second["age_runs"]) == {2}
    con = duckdb.connect(str(path))
    con.execute(
        "UPDATE events SET payload = ? WHERE event_id = ?", [original, e["event_id"]]
    ).fetchall()
    _build(con)
    con.close()
    assert audit(path).findings.is_empty()
    con = store.connect(path, read_only=True)  # the runs live in the analyst database beside it
    resolved = con.execute(
        "SELECT DISTINCT status FROM audit_findings WHERE audit_run_id = 3"
    ).fetchall()
    con.close()
    assert resolved == [("resolved",)]
    con = duckdb.connect(str(path))
    _edit(con, e["event_id"], lambda p: p.update(platform_fee=p["platform_fee"] + 1))
    _build(con)
    con.close()
    assert set(audit(path).findings["status"]) == {"reopened"}


# ------------------------------------------------------------------------------ payouts and reviews
@pytest.mark.parametrize(
    ("gap", "expected"),
    [(timedelta(minutes=10), True), (timedelta(minutes=10, microseconds=1), False)],
)
def test_duplicate_payout_within_ten_minutes(
    db: duckdb.DuckDBPyConnection, gap: timedelta, expected: bool
) -> None:
    rows = (
        db.sql(
            "SELECT event_id, occurred_at, payload FROM events WHERE kind = 'payout.created' ORDER BY position LIMIT 2"
        )
        .to_arrow_table()
        .to_pylist()
    )
    assert len(rows) == 2, "the clean history has fewer than two payouts"
    a, b = rows
    first = json.loads(a["payload"])

    def same(p: dict[str, Any]) -> None:
        p.update({k: first[k] for k in ("owner", "amount", "currency", "destination_masked")})

    _edit(db, b["event_id"], same)
    db.execute(
        "UPDATE events SET occurred_at = ? WHERE event_id = ?",
        [a["occurred_at"] + gap, b["event_id"]],
    ).fetchall()
    found = _findings(db, "PAYOUT_MISMATCH").filter(pl.col("detail").str.contains("same owner"))
    assert _proven_by(found, b["event_id"]) is expected


def test_payout_cancelled_after_confirmation_without_revert(db: duckdb.DuckDBPyConnection) -> None:
    """A cancel appended after a confirmation, with no revert plan booked."""
    f = _one(
        db,
        """SELECT f.*, (SELECT max(position) FROM events) + 1 AS next_position FROM events f
        WHERE f.kind = 'payout.confirmed' ORDER BY f.position LIMIT 1""",
    )
    cancel = "00000000-0000-4000-8000-00000000cafe"
    db.execute(
        """INSERT INTO events SELECT ?, ?, stream, aggregate_id, seq + 1, 'payout.cancelled', 1,
               occurred_at + INTERVAL 1 HOUR, recorded_at + INTERVAL 1 HOUR, correlation_id, event_id,
               '{"details":"customer complaint"}', source
           FROM events WHERE event_id = ?""",
        [cancel, f["next_position"], f["event_id"]],
    ).fetchall()
    found = _findings(db, "PAYOUT_MISMATCH")
    assert _proven_by(found, cancel) and any("revert" in d for d in found["detail"])


def test_confirmed_payout_whose_plan_was_rolled_back(db: duckdb.DuckDBPyConnection) -> None:
    e = _one(
        db,
        """SELECT f.event_id AS confirmed, k.event_id AS commit FROM events f
        JOIN events k ON k.kind = 'ledger_plan.committed' AND k.aggregate_id = 'payout:' || f.aggregate_id
        WHERE f.kind = 'payout.confirmed' AND NOT EXISTS (SELECT 1 FROM events c WHERE c.kind = 'payout.cancelled'
          AND c.aggregate_id = f.aggregate_id)
        ORDER BY f.position LIMIT 1""",
    )
    db.execute(
        "UPDATE events SET kind = 'ledger_plan.rolled_back' WHERE event_id = ?", [e["commit"]]
    ).fetchall()
    assert _proven_by(_findings(db, "PAYOUT_MISMATCH"), e["confirmed"])


COMPLETED_IN_TIME = """
SELECT c.event_id, (a.payload->>'complete_by')::TIMESTAMPTZ AS complete_by
FROM events c JOIN events a ON a.aggregate_id = c.aggregate_id AND a.kind = 'payment_order.accepted'
 AND a.position < c.position
WHERE c.kind = 'payment_order.completed'
  AND NOT EXISTS (SELECT 1 FROM events r WHERE r.kind = 'payment_order.review_started' AND r.aggregate_id = c.aggregate_id)
QUALIFY row_number() OVER (PARTITION BY c.event_id ORDER BY a.position DESC) = 1
ORDER BY c.position LIMIT 1
"""


@pytest.mark.parametrize(
    ("late", "expected"), [(timedelta(microseconds=1), True), (timedelta(0), False)]
)
def test_in_progress_past_complete_by_without_review(
    db: duckdb.DuckDBPyConnection, late: timedelta, expected: bool
) -> None:
    e = _one(db, COMPLETED_IN_TIME)
    at = e["complete_by"] + SWEEP_DELAY + late
    db.execute(
        "UPDATE events SET occurred_at = ? WHERE event_id = ?", [at, e["event_id"]]
    ).fetchall()
    assert _proven_by(_findings(db, "DEADLINE_MISSED"), e["event_id"]) is expected


# ------------------------------------------------------------------------------ rules the fold judges
@pytest.mark.parametrize(("amount", "expected"), [(0, True), (1, False)])
def test_posting_of_zero_is_a_plan_mismatch(
    db: duckdb.DuckDBPyConnection, amount: int, expected: bool
) -> None:
    e = _one(
        db,
        "SELECT event_id FROM events WHERE kind = 'ledger_plan.batch_held' AND aggregate_id LIKE 'topup:%' "
        "ORDER BY position LIMIT 1",
    )

    def set_amount(p: dict[str, Any]) -> None:
        p["postings"][0]["amount"] = amount

    _edit(db, e["event_id"], set_amount)
    assert _proven_by(_findings(db, "LEDGER_PLAN_MISMATCH"), e["event_id"]) is expected


def test_a_skipped_seq_is_a_gap(db: duckdb.DuckDBPyConnection) -> None:
    e = _one(
        db,
        "SELECT event_id FROM events WHERE stream = 'payment_order' "
        "QUALIFY seq = max(seq) OVER (PARTITION BY aggregate_id) AND seq > 1 ORDER BY position LIMIT 1",
    )
    db.execute("UPDATE events SET seq = seq + 1 WHERE event_id = ?", [e["event_id"]]).fetchall()
    assert _proven_by(_findings(db, "SEQUENCE_GAP"), e["event_id"])


def test_unblocking_a_trader_who_is_not_blocked(db: duckdb.DuckDBPyConnection) -> None:
    e = _one(
        db,
        "SELECT event_id FROM events WHERE kind = 'trader.went_online' AND aggregate_id NOT IN "
        "(SELECT aggregate_id FROM events WHERE kind = 'trader.blocked') ORDER BY position LIMIT 1",
    )
    db.execute(
        "UPDATE events SET kind = 'trader.unblocked' WHERE event_id = ?", [e["event_id"]]
    ).fetchall()
    assert _proven_by(_findings(db, "INVALID_TRANSITION"), e["event_id"])


# ------------------------------------------------ what the replay sets aside, seen by the audit
def _export_rows(clean_db: Path, kind: str) -> tuple[list[dict[str, Any]], Any]:
    import pyarrow.parquet as pq

    files = sorted((clean_db.parent / "export").rglob("*.parquet"))
    table = pq.read_table(files[0])
    rows = [r for r in table.to_pylist() if r["kind"] == kind]
    assert rows, f"no {kind} in {files[0]}"
    return rows, table.schema


def _audit_with(
    clean_db: Path, tmp_path: Path, extra: list[dict[str, Any]], schema: Any
) -> pl.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from workbench.audit import audit

    more = tmp_path / "redelivery"
    more.mkdir()
    pq.write_table(pa.Table.from_pylist(extra, schema=schema), more / "part-0.parquet")
    db = tmp_path / "mixed.duckdb"
    rebuild([clean_db.parent / "export", more], db, progress=False)
    return audit(db, record=False).findings


def test_a_payload_missing_a_field_is_malformed_and_named(clean_db: Path, tmp_path: Path) -> None:
    rows, schema = _export_rows(clean_db, "payment_order.assigned")
    bad = dict(rows[0])
    payload = json.loads(bad["payload"])
    del payload["settlement_amount"]
    bad["payload"] = json.dumps(payload)
    bad["event_id"] = bad["event_id"][:-4] + "beef"
    bad["seq"] = 999
    found = _audit_with(clean_db, tmp_path, [bad], schema)
    hits = found.filter(pl.col("check") == "MALFORMED_EVENT")
    assert hits.height == 1, found
    assert hits["evidence"][0][0] == bad["event_id"]
    assert "settlement_amount" in hits["detail"][0]


def test_an_identical_redelivery_is_no_finding(clean_db: Path, tmp_path: Path) -> None:
    rows, schema = _export_rows(clean_db, "payment_order.assigned")
    found = _audit_with(clean_db, tmp_path, [dict(rows[0])], schema)
    assert found.height == 0, found


def test_one_event_id_with_two_contents_is_a_conflicting_duplicate(
    clean_db: Path, tmp_path: Path
) -> None:
    rows, schema = _export_rows(clean_db, "payment_order.assigned")
    other = dict(rows[0])
    payload = json.loads(other["payload"])
    payload["settlement_amount"] += 1  # one minor unit: a different content under the same id
    other["payload"] = json.dumps(payload)
    found = _audit_with(clean_db, tmp_path, [other], schema)
    hits = found.filter(pl.col("check") == "CONFLICTING_DUPLICATE")
    assert hits.height >= 1, found
    assert any(rows[0]["event_id"] in ev for ev in hits["evidence"])


def test_two_events_at_one_seq_are_a_conflicting_duplicate(clean_db: Path, tmp_path: Path) -> None:
    rows, schema = _export_rows(clean_db, "trader.went_online")
    twin = dict(rows[0])
    twin["event_id"] = twin["event_id"][:-4] + "cafe"
    twin["position"] = twin["position"] + 1_000_000_000
    found = _audit_with(clean_db, tmp_path, [twin], schema)
    hits = found.filter(pl.col("check") == "CONFLICTING_DUPLICATE")
    assert hits.height >= 1, found
