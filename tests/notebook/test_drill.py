"""From a figure to what makes it up, on the sample: a reconciliation row's orders, payouts,
plans and postings add up to the row (read again from the projections, not through the
reconciliation's SQL); the parameters that point a notebook at an account, days, a trader,
checks and severities; a finding's timeline as a table and a chart."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import plotly.io as pio
import polars as pl
import pytest

from workbench.audit import reconcile_payouts
from workbench.domain.money import format_money
from workbench.notebook import drill, largest_differences, scope, timeline, with_time

FIGURES = (
    "orders_settled",
    "ledger_orders",
    "paid_out",
    "ledger_paid_out",
    "top_ups",
    "orders_difference",
    "payouts_difference",
)


@pytest.fixture(scope="module")
def reconciliation(sample_db: Path) -> pl.DataFrame:
    return reconcile_payouts(sample_db)


@pytest.fixture(scope="module")
def timed(sample_db: Path, sample_findings: pl.DataFrame) -> pl.DataFrame:
    return with_time(sample_db, sample_findings)


def test_the_parts_add_up_to_each_row(sample_db: Path, reconciliation: pl.DataFrame) -> None:
    """Every row that does not reconcile, and every 9th of the rest (trader and client
    accounts, days with top-ups, payouts, reverted payouts and reversed disputes)."""
    off = (pl.col("orders_difference") != 0) | (pl.col("payouts_difference") != 0)
    rows = pl.concat(
        [reconciliation.filter(off), reconciliation.filter(~off).gather_every(9)]
    ).to_dicts()
    assert len(rows) > 25 and {r["account"].split(":")[0] for r in rows} == {"client", "trader"}
    assert any(r["top_ups"] for r in rows) and any(r["paid_out"] for r in rows)
    for row in rows:
        parts = drill(sample_db, row["account"], row["day"], row["currency"])
        assert parts.totals() == {k: row[k] for k in FIGURES}, row
        assert parts.matches(row)
        # each order's and payout's own share of the ledger adds up too
        assert int(parts.orders["ledger"].sum()) == row["ledger_orders"], row
        assert int(parts.payouts["ledger"].sum()) == row["ledger_paid_out"], row
        plans = int(parts.plans["amount"].sum())
        assert plans == row["ledger_orders"] + row["top_ups"] - row["ledger_paid_out"], row


def test_a_client_short_on_a_day_leads_to_the_payout_behind_it(
    sample_db: Path, reconciliation: pl.DataFrame, timed: pl.DataFrame
) -> None:
    worst = largest_differences(reconciliation, 1).row(0, named=True)
    assert worst["payouts_difference"] == -501_000_000  # 501 USDT more left in the ledger
    behind = drill(sample_db, worst["account"], worst["day"], worst["currency"]).behind()
    (payout,) = behind.payouts.to_dicts()
    con = duckdb.connect(str(sample_db), read_only=True)
    try:
        owner, status, cancelled_from = con.execute(
            "SELECT owner, status, cancelled_from FROM payouts WHERE payout_id = ?",
            [payout["payout_id"]],
        ).fetchone()  # type: ignore[misc]
    finally:
        con.close()
    assert owner == worst["account"]
    assert (status, cancelled_from) == ("cancelled", "confirmed")  # its revert plan is missing
    assert payout["difference"] == -501_000_000
    assert set(behind.plans["plan_id"]) >= {f"payout:{payout['payout_id']}"}
    assert int(behind.postings.filter(pl.col("category") == "payouts")["amount"].sum()) == (
        -501_000_000
    )
    about = timed.filter(pl.col("subject").is_in(behind.subjects()))
    assert "PAYOUT_MISMATCH" in about["check"].to_list()
    assert (
        "-501.000000 USDT"
        in drill(sample_db, worst["account"], worst["day"], worst["currency"]).summary()
    )
    tables = behind.tables(timed)
    assert [t.title for t in tables] == [
        "Payouts (1)",
        "Orders (0)",  # no order of that day left the account short: the payout alone did
        f"Their ledger postings on {worst['account']} (2)",
        "The audit's findings about them (1)",
    ]
    assert "-501.000000" in tables[0].text()


def test_a_day_that_reconciles_says_so(sample_db: Path, reconciliation: pl.DataFrame) -> None:
    fine = reconciliation.filter(
        (pl.col("orders_difference") == 0) & (pl.col("payouts_difference") == 0)
    ).row(0, named=True)
    parts = drill(sample_db, fine["account"], fine["day"].isoformat())
    assert parts.summary().endswith("reconciles: orders and payouts match the ledger.")
    behind = parts.behind()
    assert behind.orders.is_empty() and behind.payouts.is_empty() and behind.plans.is_empty()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"account": "cl-01"}, "KIND:ID"),
        ({"account": "bank:x"}, "KIND:ID"),
        ({"day_from": "2026-13-01"}, "day_from='2026-13-01': a day is YYYY-MM-DD"),
        ({"day_from": "2026-11-05", "day_to": "2026-11-02"}, "after day_to"),
        ({"check": "PAYOUT_MISMACH"}, "no check PAYOUT_MISMACH"),
        ({"severity": ["high", "urgent"]}, "no severity urgent"),
        ({"check": []}, "give a name"),
    ],
)
def test_a_parameter_that_cannot_mean_anything_is_an_error(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        scope(**kwargs)  # type: ignore[arg-type]


def test_an_account_or_trader_that_is_not_there_is_an_error(sample_db: Path) -> None:
    assert scope("client:cl-01", trader="tr-03").verify(sample_db).trader == "tr-03"
    assert scope("platform:revenue").verify(sample_db).account == "platform:revenue"
    with pytest.raises(LookupError, match="no account client:cl-99"):
        scope("client:cl-99").verify(sample_db)
    with pytest.raises(LookupError, match="no account trader:tr-99"):
        scope(trader="tr-99").verify(sample_db)


def test_the_scope_filters_what_a_notebook_shows(
    sample_db: Path, reconciliation: pl.DataFrame, timed: pl.DataFrame
) -> None:
    everything = scope()
    assert everything.everything and str(everything).startswith("everything")
    assert everything.findings(sample_db, timed).height == timed.height

    where = scope("client:cl-01", "2026-11-02", date(2026, 11, 4), check="payout_mismatch")
    assert str(where) == (
        "only account client:cl-01; days 2026-11-02 to 2026-11-04 (UTC); check PAYOUT_MISMATCH"
    )
    rows = where.reconciliation(reconciliation)
    assert set(rows["account"]) == {"client:cl-01"}
    assert rows["day"].min() == date(2026, 11, 2) and rows["day"].max() == date(2026, 11, 4)

    shown = where.findings(sample_db, timed)
    con = duckdb.connect(str(sample_db), read_only=True)
    try:
        mine = {
            f"payout:{p}"
            for (p,) in con.execute(
                "SELECT payout_id FROM payouts WHERE owner = 'client:cl-01'"
            ).fetchall()
        }
    finally:
        con.close()
    expected = timed.filter(
        (pl.col("check") == "PAYOUT_MISMATCH")
        & pl.col("subject").is_in(mine)
        & pl.col("day").is_between(date(2026, 11, 2), date(2026, 11, 4))
    )
    assert shown.height > 0
    assert sorted(shown["finding_id"]) == sorted(expected["finding_id"])

    trader = scope(trader="trader:tr-01", severity="low")
    assert trader.trader == "tr-01"
    found = trader.findings(sample_db, timed)
    assert set(found["severity"]) == {"low"}
    assert "trader_rating:tr-01" in set(found["subject"])
    assert not any(s.startswith("trader_rating:tr-02") for s in found["subject"])


def test_a_finding_timeline_as_a_table_and_a_chart(
    sample_db: Path, sample_findings: pl.DataFrame
) -> None:
    negative = sample_findings.filter(pl.col("check") == "NEGATIVE_AVAILABLE").row(0, named=True)
    t = timeline(sample_db, negative["finding_id"], findings=sample_findings)
    frame = t.frame
    offending = frame["mark"].to_list().index(">>")
    table = t.table()
    assert table.highlight == [offending]
    assert "Available (USDT)" in table.headers
    after = frame["available_after"][offending]
    cells = dict(zip(table.headers, table.rows()[offending], strict=True))
    assert cells["Mark"] == "offending"
    assert cells["Available (USDT)"].endswith(format_money(after, "USDT").removesuffix(" USDT"))
    rows = re.findall(r"<tr>(.*?)</tr>", table.html(), re.S)
    marked = [i for i, r in enumerate(rows) if "background-color: #fde8e8;" in r]
    assert marked == [offending]  # the offending row stands out

    fig = t.figure()
    available = next(tr for tr in fig.data if tr.name == "available")
    assert format_money(after, "USDT") in available.customdata  # hover exact
    assert "USDT" in fig.layout.yaxis.title.text
    assert pio.to_json(fig) == pio.to_json(t.figure())  # deterministic

    payout = sample_findings.filter(pl.col("check") == "PAYOUT_MISMATCH").row(0, named=True)
    p = timeline(sample_db, payout["finding_id"], findings=sample_findings)
    assert "Status" in p.table().headers and "Balance (USDT)" not in p.table().headers
    marks = p.figure().data[0].marker.symbol
    assert list(marks).count("x") == 1  # the offending event
    assert p.summary().splitlines()[0].startswith(payout["finding_id"])
