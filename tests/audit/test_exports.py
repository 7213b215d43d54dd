"""What analysts take away: the Excel workbooks of findings, reconciliation, rating differences,
ledger and revenue read back with openpyxl (one sheet per table; every money cell the exact
minor amount in major units, formatted with exactly its currency's decimals), and the terminal
tables of reconcile, ratings, ledger and revenue (no line past 120 columns, no frame repr)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest

from workbench.audit import account_ledger, audit, recompute_ratings, reconcile_payouts, revenue
from workbench.cli import main
from workbench.domain.money import EXPONENTS, format_money
from workbench.generator import generate
from workbench.replay import rebuild, store

RECONCILED = (
    "orders_settled",
    "ledger_orders",
    "paid_out",
    "ledger_paid_out",
    "top_ups",
    "orders_difference",
    "payouts_difference",
)
#: A frame repr's dtype row, or its box characters.
DTYPES = {"i64", "i32", "i16", "i8", "u32", "f64", "str", "bool", "date", "null", "---"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("exports")
    generate(
        root / "export", seed=9, days=2, orders_per_day=80, traders=6, clients=3, progress=False
    )
    path = root / "exports.duckdb"
    rebuild([root / "export"], path, progress=False)
    return path


def _sheets(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Each sheet as rows of cells by header."""
    book = openpyxl.load_workbook(path)
    out = {}
    for ws in book.worksheets:
        rows = list(ws.iter_rows())
        heads = [c.value for c in rows[0]]
        out[ws.title] = [dict(zip(heads, row, strict=True)) for row in rows[1:]]
    return out


def _check_money(rows: list[dict[str, Any]], frame: pl.DataFrame, money: dict[str, str]) -> int:
    """Every money cell of ``rows`` (the sheet of ``frame``) is the frame's minor amount in major
    units, to the last minor unit, with exactly the currency's decimals shown; the integer minor
    units beside it. Returns how many non-empty money cells there were."""
    assert len(rows) == frame.height
    seen = 0
    for row, want in zip(rows, frame.iter_rows(named=True), strict=True):
        for column, currency_column in money.items():
            minor = want[column]
            major = row[column.removesuffix("_minor")]
            exact = row[column if column.endswith("_minor") else f"{column}_minor"]
            if minor is None:
                assert major.value is None and exact.value is None
                continue
            exp = EXPONENTS[want[currency_column]]
            assert isinstance(major.value, int | float), (column, major.value)
            shown = Decimal(major.value).quantize(Decimal(1).scaleb(-exp))
            assert shown == Decimal(minor).scaleb(-exp), (column, minor, major.value)
            assert major.number_format == ("#,##0." + "0" * exp if exp else "#,##0")
            assert exact.value == minor
            seen += 1
    return seen


def test_findings_to_excel(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "findings.xlsx"
    assert (
        main(["audit", "--db", str(db), "--no-record", "--format", "xlsx", "--out", str(out)]) == 1
    )
    found = audit(db, record=False).findings
    sheets = _sheets(out)
    assert list(sheets) == ["findings"]
    by_id = {r["finding_id"].value: r for r in sheets["findings"]}
    assert set(by_id) == set(found["finding_id"])
    rows = [by_id[f] for f in found["finding_id"]]
    assert _check_money(rows, found, {"amount_delta": "currency"}) > 0
    for row, want in zip(rows, found.iter_rows(named=True), strict=True):
        assert row["evidence"].value == " ".join(want["evidence"])  # full ids, joined


def test_reconciliation_and_rating_differences_to_excel(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "reconcile.xlsx"
    code = main(["reconcile", "--db", str(db), "--format", "xlsx", "--out", str(out)])
    frame = reconcile_payouts(db)
    sheets = _sheets(out)
    assert list(sheets) == ["reconciliation"]
    assert _check_money(sheets["reconciliation"], frame, dict.fromkeys(RECONCILED, "currency"))
    bad = frame.filter((pl.col("orders_difference") != 0) | (pl.col("payouts_difference") != 0))
    assert code == (1 if bad.height else 0)

    out = tmp_path / "ratings.xlsx"
    code = main(
        ["ratings", "--db", str(db), "--differences", "--format", "xlsx", "--out", str(out)]
    )
    con = store.connect(db, read_only=True)
    try:
        differing = recompute_ratings(con).filter(~pl.col("matches"))
    finally:
        con.close()
    sheets = _sheets(out)
    assert list(sheets) == ["rating differences"]
    rows = sheets["rating differences"]
    assert [r["event_id"].value for r in rows] == differing["event_id"].to_list()
    assert code == (1 if differing.height else 0)


def test_ledger_and_revenue_to_excel(db: Path, tmp_path: Path) -> None:
    account = "platform:revenue"
    out = tmp_path / "ledger.xlsx"
    assert main(["ledger", account, "--db", str(db), "--format", "xlsx", "--out", str(out)]) == 0
    books = account_ledger(db, account)
    sheets = _sheets(out)
    assert list(sheets) == ["statement", "days", "balances"]
    money = ("amount_in_minor", "amount_out_minor", "balance_minor")
    assert _check_money(sheets["statement"], books.statement(), dict.fromkeys(money, "currency"))
    figures = ("opening_minor", "in_minor", "out_minor", "closing_minor")
    assert _check_money(sheets["days"], books.days, dict.fromkeys(figures, "currency"))
    assert _check_money(sheets["balances"], books.balances, dict.fromkeys(figures, "currency"))

    out = tmp_path / "revenue.xlsx"
    assert main(["revenue", "--db", str(db), "--format", "xlsx", "--out", str(out)]) == 0
    frame = revenue(db)
    sheets = _sheets(out)
    assert list(sheets) == ["revenue"]
    money = [c for c in frame.columns if c.endswith("_minor")]
    assert _check_money(sheets["revenue"], frame, dict.fromkeys(money, "currency"))


@pytest.mark.parametrize(
    "args",
    [
        ["reconcile"],
        ["reconcile", "--differences"],
        ["ratings"],
        ["ledger", "platform:revenue"],
        ["ledger", "client:cl-01", "--daily"],
        ["revenue"],
    ],
)
def test_terminal_tables_fit_120_columns_without_frame_reprs(
    db: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    main([*args, "--db", str(db)])
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert len(lines) > 3, text
    for line in lines:
        assert len(line) <= 120, line
        tokens = set(re.split(r"[\s│┆|]+", line))
        assert not tokens & DTYPES, line
        assert "shape: (" not in line and "┆" not in line, line
        assert not UUID.search(line), line  # ids shortened; csv keeps them whole


def test_the_ledger_table_reads_money_in_major_units(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account = "platform:revenue"
    assert main(["ledger", account, "--db", str(db)]) == 0
    text = capsys.readouterr().out
    books = account_ledger(db, account)
    for b in books.balances.iter_rows(named=True):
        assert format_money(b["closing_minor"], b["currency"]) in text
        assert format_money(b["opening_minor"], b["currency"]) in text
    last = books.postings.row(-1, named=True)
    line = next(
        x for x in text.splitlines() if x.startswith(f"{last['committed_at']:%Y-%m-%d %H:%M:%S}")
    )
    whole, frac = divmod(last["balance_minor"], 10 ** EXPONENTS[last["currency"]])
    assert f"{whole:,}.{frac:0{EXPONENTS[last['currency']]}d}" in line
