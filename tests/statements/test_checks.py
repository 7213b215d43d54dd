"""The statement checks on hand-made statements of a small payout history: the clean statement
gives no finding; each break gives its finding, of its check only, proven by the payout's key
event, with the money at stake and the lines named; the near misses (a window the statements
do not cover yet, a payout not booked as gone, money back nobody explains) give none. The audit
runs them from the analyst database like every other check, and skips them without lines."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from workbench import models
from workbench.audit import audit
from workbench.audit.run import _live, finding_id
from workbench.domain.violations import CHECK_CODES, STATEMENT_CHECK_CODES
from workbench.replay import readers
from workbench.statements import schema
from workbench.statements.readable import ensure_tables

from .helpers import (
    DAY1,
    STATEMENT_CHECKS,
    USDT,
    Line,
    Scenario,
    back,
    dest,
    out,
    put,
    reader,
    statement_findings,
)


def clean() -> list[Line]:
    """What a clean provider shows for the scenario: every payout sent has its money out (in
    parts, under the provider's own reference where the platform has no bank_ref), and the
    money of the payouts cancelled after they left comes back."""
    return [
        out("ref"),
        out("parts", "L-parts-1", amount=150 * USDT),
        out("parts", "L-parts-2", amount=50 * USDT, day=1),
        Line("L-amount", -77 * USDT, "PRV-a", dest("amount"), DAY1 + timedelta(days=1)),
        Line("L-twin-a", -55 * USDT, "PRV-t", "TRC20:Ttwin****x"),
        out("twin-b"),
        out("missing"),
        out("dup"),
        out("short"),
        out("cancel"),
        back("cancel", day=1),
        out("revert"),
        back("revert", day=2),
        Line("L-revert-plain", -165 * USDT, "PRV-r", dest("revert-plain")),
        Line("B-revert-plain", 165 * USDT, "PRV-r", dest("revert-plain"), DAY1 + timedelta(days=1)),
        out("paid"),
    ]


def _without(lines: list[Line], *ids: str) -> list[Line]:
    return [x for x in lines if x.line_id not in ids]


def _run(
    con: duckdb.DuckDBPyConnection,
    lines: list[Line],
    periods: tuple[tuple[int, int], ...] = ((0, 9),),
    window: int = 3,
) -> pl.DataFrame:
    put(con, lines, [(DAY1 + timedelta(days=a), DAY1 + timedelta(days=b)) for a, b in periods])
    return statement_findings(con, window)


def _keyed(found: pl.DataFrame) -> set[tuple[str, str, str, int]]:
    return {
        (r["check"], r["subject"], r["event_id"], r["amount_delta"])
        for r in found.iter_rows(named=True)
    }


def test_the_clean_statement_gives_no_finding(con: duckdb.DuckDBPyConnection) -> None:
    found = _run(con, clean())
    assert found.is_empty(), found.to_dicts()


def breaks() -> list[Line]:
    """The clean statement with one break per payout."""
    lines = _without(
        clean(),
        "L-missing",  # STATEMENT_MISSING
        "L-short",
        "L-paid",
        "L-parts-2",
        "B-cancel",  # MONEY_LEFT_AFTER_CANCEL
        "B-revert",  # STATEMENT_RETURN_MISSING
        "B-revert-plain",
    )
    return [
        *lines,
        Line("L-x", -5 * USDT, "BR-nobody", "TRC20:Tnobody"),  # STATEMENT_UNEXPECTED
        out("short", amount=130 * USDT - 1),  # one minor unit short
        Line("L-paid", -180_00, "BR-paid", dest("paid"), DAY1, "USD"),  # another currency
        out("dup", "L-dup-2", day=1),  # paid out twice
        out("parts", "L-parts-2", amount=60 * USDT, day=1),  # parts past the payout
        Line("B-revert-plain", 165 * USDT - 1, "PRV-r", dest("revert-plain"), DAY1),  # short back
    ]


def test_each_break_is_found_by_its_check_proven_by_the_payouts_key_event(
    con: duckdb.DuckDBPyConnection, scenario: Scenario
) -> None:
    ev = scenario.events
    found = _run(con, breaks())
    assert _keyed(found) == {
        ("STATEMENT_MISSING", "payout:missing", ev["missing"]["paid"], 300 * USDT),
        ("STATEMENT_UNEXPECTED", "statement_line:L-x", "statement_line:L-x", 5 * USDT),
        ("STATEMENT_AMOUNT_MISMATCH", "payout:short", ev["short"]["paid"], -1),
        ("STATEMENT_AMOUNT_MISMATCH", "payout:paid", ev["paid"]["paid"], -180 * USDT),
        ("STATEMENT_DUPLICATE", "payout:dup", ev["dup"]["paid"], 120 * USDT),
        ("STATEMENT_DUPLICATE", "payout:parts", ev["parts"]["paid"], 10 * USDT),
        ("MONEY_LEFT_AFTER_CANCEL", "payout:cancel", ev["cancel"]["cancelled"], 140 * USDT),
        ("STATEMENT_RETURN_MISSING", "payout:revert", ev["revert"]["cancelled"], 160 * USDT),
        ("STATEMENT_RETURN_MISSING", "payout:revert-plain", ev["revert-plain"]["cancelled"], 1),
    }
    assert set(found["check"]) == set(STATEMENT_CHECKS) == set(STATEMENT_CHECK_CODES)
    assert set(found["currency"]) == {"USDT"}
    rows = {(r["check"], r["subject"]): r for r in found.iter_rows(named=True)}
    # the evidence: the key event first, then the payout's other events
    assert rows["STATEMENT_MISSING", "payout:missing"]["evidence"] == [
        ev["missing"]["paid"],
        ev["missing"]["created"],
    ]
    assert rows["STATEMENT_RETURN_MISSING", "payout:revert"]["evidence"] == [
        ev["revert"][k] for k in ("cancelled", "confirmed", "paid", "created")
    ]
    assert rows["MONEY_LEFT_AFTER_CANCEL", "payout:cancel"]["evidence"] == [
        ev["cancel"][k] for k in ("cancelled", "paid", "created")
    ]
    # the lines are named, the amounts as people read them (format_money)
    details = {k: r["detail"] for k, r in rows.items()}
    assert (
        "no statement line from 2026-11-01 to 2026-11-04"
        in details["STATEMENT_MISSING", "payout:missing"]
    )
    assert (
        "L-short (2026-11-01) 129.999999 USDT under its reference, -0.000001 USDT against"
        in details["STATEMENT_AMOUNT_MISMATCH", "payout:short"]
    )
    assert "L-paid (2026-11-01) 180.00 USD" in details["STATEMENT_AMOUNT_MISMATCH", "payout:paid"]
    assert "not in USDT" in details["STATEMENT_AMOUNT_MISMATCH", "payout:paid"]
    assert (
        "left 2 times: L-dup (2026-11-01) 120.000000 USDT, L-dup-2 (2026-11-02) 120.000000 USDT"
        in details["STATEMENT_DUPLICATE", "payout:dup"]
    )
    assert (
        "5.000000 USDT out to TRC20:Tnobody under reference BR-nobody"
        in details["STATEMENT_UNEXPECTED", "statement_line:L-x"]
    )
    assert (
        "L-cancel (2026-11-01) 140.000000 USDT out and nothing back"
        in details["MONEY_LEFT_AFTER_CANCEL", "payout:cancel"]
    )
    assert (
        "only B-revert-plain (2026-11-01) 164.999999 USDT came back"
        in details["STATEMENT_RETURN_MISSING", "payout:revert-plain"]
    )


def test_only_payouts_booked_as_gone_can_be_missing(
    con: duckdb.DuckDBPyConnection, scenario: Scenario
) -> None:
    """A statement with nothing for the payouts (one return nobody explains: money back is no
    STATEMENT_UNEXPECTED): the paid and confirmed ones are missing; the cancelled, failed and
    unpaid ones are not, and none of their money left."""
    found = _run(con, [Line("B-x", 7 * USDT, "PRV-nobody", "someone")])
    assert set(found["check"]) == {"STATEMENT_MISSING"}
    assert sorted(s.removeprefix("payout:") for s in found["subject"]) == sorted(
        ["ref", "parts", "amount", "twin-a", "twin-b", "missing", "dup", "short", "paid"]
    )
    by = {r["subject"]: r for r in found.iter_rows(named=True)}
    assert by["payout:amount"]["event_id"] == scenario.events["amount"]["confirmed"]
    assert "without a paid event" in by["payout:amount"]["detail"]


@pytest.mark.parametrize(
    ("periods", "judged"),
    [
        (((0, 3),), True),  # the window's last day is covered
        (((0, 2),), False),  # a line may still come on day 3
        (((1, 9),), False),  # the day it was sent is not covered
        (((0, 1), (3, 9)), False),  # a gap inside the window
        (((0, 1), (2, 9)), True),  # two statements, no gap
    ],
)
def test_a_payout_is_missing_only_once_the_statements_cover_its_window(
    con: duckdb.DuckDBPyConnection, periods: tuple[tuple[int, int], ...], judged: bool
) -> None:
    found = _run(con, _without(clean(), "L-missing", "B-revert"), periods)
    missing = found.filter(pl.col("check") == "STATEMENT_MISSING")
    returned = found.filter(pl.col("check") == "STATEMENT_RETURN_MISSING")
    assert missing["subject"].to_list() == (["payout:missing"] if judged else [])
    assert returned["subject"].to_list() == (["payout:revert"] if judged else [])


def test_the_window_is_the_audits_parameter(con: duckdb.DuckDBPyConnection) -> None:
    """With a one-day window, statements to day 1 judge the payouts of day 0."""
    found = _run(con, _without(clean(), "L-missing"), ((0, 1),), window=1)
    assert found["subject"].to_list() == ["payout:missing"]
    assert "from 2026-11-01 to 2026-11-02" in found["detail"][0]


def test_an_ambiguous_line_is_unexpected_and_its_payouts_missing(
    con: duckdb.DuckDBPyConnection, scenario: Scenario
) -> None:
    lines = [
        *_without(clean(), "L-twin-a", "L-twin-b"),
        Line("L-t", -55 * USDT, None, "TRC20:Ttwin****x"),
    ]
    found = _run(con, lines)
    ev = scenario.events
    assert _keyed(found) == {
        ("STATEMENT_UNEXPECTED", "statement_line:L-t", "statement_line:L-t", 55 * USDT),
        ("STATEMENT_MISSING", "payout:twin-a", ev["twin-a"]["confirmed"], 55 * USDT),
        ("STATEMENT_MISSING", "payout:twin-b", ev["twin-b"]["paid"], 55 * USDT),
    }
    unexpected = found.filter(pl.col("check") == "STATEMENT_UNEXPECTED").row(0, named=True)
    assert unexpected["evidence"] == [
        "statement_line:L-t",
        ev["twin-a"]["created"],
        ev["twin-b"]["created"],
    ]
    assert "payouts twin-a, twin-b fit it alike (ambiguous: not matched)" in unexpected["detail"]
    for r in found.filter(pl.col("check") == "STATEMENT_MISSING").iter_rows(named=True):
        assert "L-t fit it, but not it alone" in r["detail"]


def test_as_of_a_time_the_statements_are_read_as_they_stood(
    con: duckdb.DuckDBPyConnection, scenario: Scenario
) -> None:
    """At noon on day 2: the lines of day 1 are known (a line without a booking time counts
    from the end of its value day), later ones not; day 1 is the only day covered."""
    late = Line("L-x", -5 * USDT, "BR-nobody", "TRC20:Tnobody", DAY1 + timedelta(days=3))
    put(con, [*clean(), late])
    noon = datetime.combine(DAY1 + timedelta(days=1), time(12), tzinfo=UTC)
    ev = scenario.events
    assert {(c, s, e) for c, s, e, _ in _keyed(statement_findings(con, 0, noon))} == {
        ("STATEMENT_AMOUNT_MISMATCH", "payout:parts", ev["parts"]["paid"]),  # one part so far
        ("STATEMENT_MISSING", "payout:amount", ev["amount"]["confirmed"]),
        ("MONEY_LEFT_AFTER_CANCEL", "payout:cancel", ev["cancel"]["cancelled"]),
        ("STATEMENT_RETURN_MISSING", "payout:revert", ev["revert"]["cancelled"]),
        ("STATEMENT_RETURN_MISSING", "payout:revert-plain", ev["revert-plain"]["cancelled"]),
    }


# ------------------------------------------------------------------------------ the audit
def test_without_statement_lines_the_audit_skips_the_checks(scenario: Scenario) -> None:
    """No statement tables (or none with a line): the tables are made empty for the models and
    the statement checks are not run at all (they could find nothing)."""
    c = reader(scenario.db)
    try:
        assert ensure_tables(c) == list(schema.TABLES)
        live = _live(c, models.checks())
        assert live.isdisjoint(STATEMENT_CHECKS)
        assert len(live) == len(CHECK_CODES) - len(STATEMENT_CHECKS)
        put(c, [Line("B-x", 1, None, None)])
        assert set(STATEMENT_CHECKS) <= _live(c, models.checks())
    finally:
        c.close()


def test_the_audit_runs_them_on_the_analysts_statements(scenario: Scenario, tmp_path: Path) -> None:
    """From the analyst database, with the window the audit is given: with none, L-amount (a
    day after its payout was sent) fits no payout."""
    db = tmp_path / "audited.duckdb"
    shutil.copy(scenario.db, db)
    analyst = readers.analyst_writer(db)
    for ddl in schema.DDL:
        analyst.execute(ddl).fetchall()
    put(analyst, breaks())
    analyst.close()
    found = audit(db, record=False, statement_window_days=0).findings
    c = reader(db)
    try:
        expected = statement_findings(c, window=0)
    finally:
        c.close()
    assert _keyed(found) == _keyed(expected)
    assert {
        ("STATEMENT_UNEXPECTED", "statement_line:L-amount", "statement_line:L-amount", 77 * USDT),
        ("STATEMENT_MISSING", "payout:amount", scenario.events["amount"]["confirmed"], 77 * USDT),
    } <= _keyed(found)
    severity = models.severity()
    for r in found.iter_rows(named=True):
        assert r["finding_id"] == finding_id(r["check"], r["subject"], r["event_id"])
        assert r["severity"] == severity[r["check"]]
        assert r["evidence"][0] == r["event_id"]
    assert severity["STATEMENT_RETURN_MISSING"] == "medium"
    with pytest.raises(ValueError, match="whole number of days"):
        audit(db, record=False, statement_window_days=-1)
