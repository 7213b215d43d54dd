"""Statement lines matched to payouts (``statement_matches``), rule by rule: by reference, a
transfer in parts, by amount, currency and counterparty inside the value-date window (and not
outside it), never a guess between two candidates; money coming back by reference. And a
property: on any statement, the model agrees with the rules written out in Python."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.statements import schema
from workbench.statements.matching import match_lines, match_statements
from workbench.statements.rules import RULES, WINDOW_DAYS

from .helpers import (
    BY_PID,
    DAY1,
    STORIES,
    USDT,
    Line,
    Scenario,
    back,
    dest,
    out,
    put,
    reader,
)


def _match(
    con: duckdb.DuckDBPyConnection, lines: list[Line], window: int = WINDOW_DAYS
) -> dict[str, dict[str, object]]:
    put(con, lines)
    return {r["line_id"]: r for r in match_lines(con, window).lines.iter_rows(named=True)}


def test_by_reference(con: duckdb.DuckDBPyConnection) -> None:
    got = _match(con, [out("ref"), out("paid")])
    assert (got["L-ref"]["payout_id"], got["L-ref"]["rule"]) == ("ref", "reference")
    assert (got["L-paid"]["payout_id"], got["L-paid"]["status"]) == ("paid", "matched")


def test_a_reference_is_matched_whatever_the_amount_counterparty_or_day(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """The reference proves whose money it is; the amount is the checks' business."""
    line = Line("L-1", -1, BY_PID["short"].bank_ref, "elsewhere", DAY1 + timedelta(days=30))
    assert _match(con, [line])["L-1"]["payout_id"] == "short"


def test_parts_that_sum_to_the_payout_are_one_transfer(con: duckdb.DuckDBPyConnection) -> None:
    got = _match(
        con,
        [
            out("parts", "L-a", amount=150 * USDT),
            out("parts", "L-b", amount=30 * USDT, day=1),
            out("parts", "L-c", amount=20 * USDT, day=2),
        ],
    )
    assert {(r["payout_id"], r["rule"]) for r in got.values()} == {("parts", "reference_parts")}


def test_parts_that_do_not_sum_stay_linked_by_reference(con: duckdb.DuckDBPyConnection) -> None:
    got = _match(
        con,
        [out("parts", "L-a", amount=150 * USDT), out("parts", "L-b", amount=50 * USDT - 1)],
    )
    assert {(r["payout_id"], r["rule"]) for r in got.values()} == {("parts", "reference")}


@pytest.mark.parametrize("day", [0, 1, WINDOW_DAYS])
def test_by_amount_and_counterparty_inside_the_window(
    con: duckdb.DuckDBPyConnection, day: int
) -> None:
    """No bank_ref (confirmed straight from unpaid): the provider's own reference is no use."""
    line = Line("L-1", -77 * USDT, "PRV-1", dest("amount"), DAY1 + timedelta(days=day))
    got = _match(con, [line])["L-1"]
    assert (got["payout_id"], got["rule"]) == ("amount", "amount_counterparty")


@pytest.mark.parametrize("day", [-1, WINDOW_DAYS + 1])
def test_not_by_amount_outside_the_window(con: duckdb.DuckDBPyConnection, day: int) -> None:
    line = Line("L-1", -77 * USDT, None, dest("amount"), DAY1 + timedelta(days=day))
    got = _match(con, [line])["L-1"]
    assert (got["payout_id"], got["status"]) == (None, "unmatched")


def test_the_window_is_a_parameter(con: duckdb.DuckDBPyConnection) -> None:
    line = Line("L-1", -77 * USDT, None, dest("amount"), DAY1 + timedelta(days=2))
    assert _match(con, [line], window=1)["L-1"]["status"] == "unmatched"
    con.execute("DELETE FROM statement_lines").fetchall()
    assert _match(con, [line], window=2)["L-1"]["status"] == "matched"
    with pytest.raises(ValueError, match="whole number of days"):
        match_lines(con, -1)


@pytest.mark.parametrize(
    "change",
    [
        {"amount": -77 * USDT - 1},  # one minor unit more
        {"amount": -77 * USDT + 1},
        {"currency": "USD"},
        {"counterparty": dest("ref")},
        {"counterparty": None},
    ],
    ids=["more", "less", "currency", "counterparty", "no-counterparty"],
)
def test_by_amount_only_on_an_exact_fit(
    con: duckdb.DuckDBPyConnection, change: dict[str, object]
) -> None:
    fields = {"amount": -77 * USDT, "currency": "USDT", "counterparty": dest("amount")}
    fields.update(change)
    line = Line("L-1", fields["amount"], None, fields["counterparty"], DAY1, fields["currency"])  # type: ignore[arg-type]
    assert _match(con, [line])["L-1"]["status"] == "unmatched"


def test_a_blank_or_unknown_reference_is_no_reference(con: duckdb.DuckDBPyConnection) -> None:
    got = _match(
        con,
        [
            Line("L-blank", -77 * USDT, "   ", dest("amount")),
            Line("L-unknown", -165 * USDT, "BR-nobody", dest("revert-plain")),
        ],
    )
    assert (got["L-blank"]["payout_id"], got["L-blank"]["rule"]) == (
        "amount",
        "amount_counterparty",
    )
    assert got["L-unknown"]["payout_id"] == "revert-plain"


def test_two_payouts_that_fit_alike_are_never_guessed(con: duckdb.DuckDBPyConnection) -> None:
    got = _match(con, [Line("L-1", -55 * USDT, None, "TRC20:Ttwin****x")])["L-1"]
    assert (got["status"], got["payout_id"], got["candidates"]) == (
        "ambiguous",
        None,
        ["twin-a", "twin-b"],
    )


def test_once_its_twin_is_claimed_by_reference_the_payout_fits_alone(
    con: duckdb.DuckDBPyConnection,
) -> None:
    got = _match(con, [out("twin-b"), Line("L-1", -55 * USDT, None, "TRC20:Ttwin****x")])
    assert (got["L-1"]["payout_id"], got["L-1"]["rule"]) == ("twin-a", "amount_counterparty")
    assert got["L-twin-b"]["payout_id"] == "twin-b"


def test_two_lines_that_fit_one_payout_alike_are_never_guessed(
    con: duckdb.DuckDBPyConnection,
) -> None:
    got = _match(
        con,
        [
            Line("L-1", -77 * USDT, None, dest("amount")),
            Line("L-2", -77 * USDT, None, dest("amount"), DAY1 + timedelta(days=1)),
        ],
    )
    assert {(r["status"], tuple(r["candidates"])) for r in got.values()} == {
        ("ambiguous", ("amount",))
    }


def test_a_payout_its_reference_claimed_is_no_candidate_by_amount(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """A second line for a payout already matched by its reference is not quietly its own."""
    got = _match(con, [out("ref"), Line("L-again", -100 * USDT, None, dest("ref"))])
    assert got["L-ref"]["payout_id"] == "ref"
    assert got["L-again"]["status"] == "unmatched"


def test_money_back_by_reference(con: duckdb.DuckDBPyConnection) -> None:
    got = _match(
        con,
        [
            out("cancel"),
            back("cancel"),
            # no bank_ref: the return carries the reference of the money out
            Line("L-rp", -165 * USDT, "PRV-9", dest("revert-plain")),
            Line("B-rp", 165 * USDT, "PRV-9", dest("revert-plain"), DAY1 + timedelta(days=1)),
            Line("B-x", 5 * USDT, "PRV-unknown", "someone"),
        ],
    )
    assert (got["B-cancel"]["payout_id"], got["B-cancel"]["rule"]) == ("cancel", "return")
    assert (got["B-rp"]["payout_id"], got["B-rp"]["rule"]) == ("revert-plain", "return")
    assert got["B-x"]["status"] == "unmatched"


def test_match_statements_reads_the_analyst_database(scenario: Scenario, tmp_path: Path) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(scenario.db, db)
    assert match_statements(db).lines.is_empty()  # no statement tables at all
    from workbench.replay import readers

    analyst = readers.analyst_writer(db)
    for ddl in schema.DDL:
        analyst.execute(ddl).fetchall()
    put(
        analyst,
        [
            out("ref"),
            Line("L-x", -5 * USDT, "X", "y"),
            Line("L-tw", -55 * USDT, None, "TRC20:Ttwin****x"),
        ],
    )
    analyst.close()
    m = match_statements(db, window_days=2)
    assert m.window_days == 2
    assert m.matches["line_id"].to_list() == ["L-ref"]
    assert m.unmatched["line_id"].to_list() == ["L-x"]
    assert m.ambiguous["line_id"].to_list() == ["L-tw"]
    assert m.counts()["matched:reference"] == 1
    with pytest.raises(FileNotFoundError):
        match_statements(tmp_path / "nothing.duckdb")


# ----------------------------------------------------------------------- the rules as a spec
def _expected(lines: list[Line], window: int) -> dict[str, tuple[str, str | None, str | None]]:
    """The matching rules written out in Python, line by line: (status, payout, rule)."""
    stories = [s for s in STORIES]
    sent = {s.pid: DAY1 for s in stories if s.steps and s.steps[0] in ("paid", "confirmed")}
    ref_of = {s.bank_ref: s.pid for s in stories if s.bank_ref}
    outs = [x for x in lines if x.amount < 0]
    by_ref = {x.line_id: ref_of[x.reference] for x in outs if x.reference in ref_of}
    claimed = set(by_ref.values())
    result: dict[str, tuple[str, str | None, str | None]] = {}
    for x in outs:
        if x.line_id in by_ref:
            pid = by_ref[x.line_id]
            mine = [y for y in outs if by_ref.get(y.line_id) == pid]
            parts = (
                len(mine) > 1
                and sum(-y.amount for y in mine) == BY_PID[pid].amount * USDT
                and all(y.currency == "USDT" for y in mine)
            )
            result[x.line_id] = ("matched", pid, "reference_parts" if parts else "reference")

    def fits(x: Line) -> list[str]:
        return [
            s.pid
            for s in stories
            if s.pid in sent
            and s.pid not in claimed
            and s.amount * USDT == -x.amount
            and x.currency == "USDT"
            and s.to == x.counterparty
            and sent[s.pid] <= x.day <= sent[s.pid] + timedelta(days=window)
        ]

    loose = [x for x in outs if x.line_id not in by_ref]
    for x in loose:
        cands = fits(x)
        rivals = [y for y in loose if cands and cands[0] in fits(y)]
        if len(cands) == 1 and len(rivals) == 1:
            result[x.line_id] = ("matched", cands[0], "amount_counterparty")
        elif cands:
            result[x.line_id] = ("ambiguous", None, None)
    keys: dict[str, set[str]] = {}
    for s in stories:
        if s.bank_ref:
            keys.setdefault(s.bank_ref, set()).add(s.pid)
    for x in outs:
        got = result.get(x.line_id)
        if got and got[0] == "matched" and x.reference:
            keys.setdefault(x.reference, set()).add(got[1])  # type: ignore[arg-type]
    for x in lines:
        if x.amount > 0 and x.reference in keys:
            pids = keys[x.reference]
            result[x.line_id] = (
                ("matched", next(iter(pids)), "return")
                if len(pids) == 1
                else ("ambiguous", None, None)
            )
    return {x.line_id: result.get(x.line_id, ("unmatched", None, None)) for x in lines}


def _line(draw: st.DrawFn, n: int) -> Line:
    s = draw(st.sampled_from(STORIES))
    amount = (
        s.amount * USDT if draw(st.booleans()) else draw(st.sampled_from([55, 77, 100, 165])) * USDT
    )
    amount += draw(st.sampled_from([0, 0, 0, 1]))
    sign = -1 if draw(st.integers(0, 4)) else 1
    ref = draw(st.sampled_from([s.bank_ref, None, "PRV-1", "BR-ref", "BR-cancel"]))
    party = draw(st.sampled_from([s.to, "TRC20:Ttwin****x", dest("amount")]))
    day = DAY1 + timedelta(days=draw(st.integers(-1, 5)))
    return Line(f"L{n:02d}", sign * amount, ref, party, day)


@st.composite
def statements(draw: st.DrawFn) -> list[Line]:
    return [_line(draw, n) for n in range(draw(st.integers(1, 8)))]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=statements(), window=st.sampled_from([0, 1, 3]))
def test_the_model_is_the_rules(scenario: Scenario, lines: list[Line], window: int) -> None:
    c = reader(scenario.db)
    try:
        got = _match(c, lines, window)
    finally:
        c.close()
    assert {k: (v["status"], v["payout_id"], v["rule"]) for k, v in got.items()} == _expected(
        lines, window
    )
    assert {v["rule"] for v in got.values()} <= {*RULES, None}


def test_the_lines_come_back_as_polars_frames(con: duckdb.DuckDBPyConnection) -> None:
    put(con, [out("ref")])
    m = match_lines(con)
    assert isinstance(m.lines, pl.DataFrame)
    assert m.lines.schema["amount_minor"] == pl.Int64


def test_the_match_command_lists_the_lines(
    scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``workbench statements match`` (its parser added to the importer's ``statements``
    command when the two are merged; a parser of its own here)."""
    import argparse

    from workbench.cli.statement_match import add_match_parser
    from workbench.replay import readers

    db = tmp_path / "copy.duckdb"
    shutil.copy(scenario.db, db)
    analyst = readers.analyst_writer(db)
    for ddl in schema.DDL:
        analyst.execute(ddl).fetchall()
    put(analyst, [out("ref"), Line("L-tw", -55 * USDT, None, "TRC20:Ttwin****x")])
    analyst.close()
    parser = argparse.ArgumentParser(prog="workbench statements")
    add_match_parser(parser.add_subparsers(dest="sub"))

    args = parser.parse_args(["match", "--db", str(db)])
    assert args.run(args) == 0
    shown = capsys.readouterr()
    assert "L-ref" in shown.out and "-100.000000" in shown.out and "reference" in shown.out
    assert "? twin-a, twin-b" in shown.out
    assert "1 matched (reference 1), 1 ambiguous, 0 unmatched (window 3 day(s))" in shown.err

    args = parser.parse_args(
        ["match", "--db", str(db), "--format", "csv", "--status", "ambiguous", "--window-days", "0"]
    )
    assert args.run(args) == 0
    body = capsys.readouterr().out.splitlines()
    assert body[0].startswith("line_id,value_date") and len(body) == 2
    assert body[1].startswith("L-tw,2026-11-01,") and "-55000000" in body[1]
    with pytest.raises(SystemExit):
        parser.parse_args(["match", "--db", str(db), "--window-days", "-1"])
