"""The findings cut by check, day and amount, the largest ones, per account, and exported: on
small frames worked by hand (money beyond a float's 53 bits stays exact) and on the sample."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from workbench.notebook import breaks

BIG = 2**53 + 1  # not representable as a float: sums must stay integers

SCHEMA = {
    "finding_id": pl.String,
    "check": pl.String,
    "severity": pl.String,
    "subject": pl.String,
    "event_id": pl.String,
    "amount_delta": pl.Int64,
    "currency": pl.String,
    "detail": pl.String,
    "evidence": pl.List(pl.String),
}


def _findings(*rows: tuple[str, str, str, int | None, str | None]) -> pl.DataFrame:
    """(check, severity, subject, amount_delta, currency) per finding, ids in order."""
    return pl.DataFrame(
        [
            {
                "finding_id": f"F-{i:012d}",
                "check": check,
                "severity": severity,
                "subject": subject,
                "event_id": f"e{i}",
                "amount_delta": amount,
                "currency": currency,
                "detail": f"finding {i}",
                "evidence": [f"e{i}", "x"],
            }
            for i, (check, severity, subject, amount, currency) in enumerate(rows)
        ],
        schema=SCHEMA,
    )


FINDINGS = _findings(
    ("FX_MISMATCH", "high", "payment_order:a", 1, "USDT"),
    ("FX_MISMATCH", "high", "payment_order:b", -1, "USDT"),
    ("NEGATIVE_AVAILABLE", "high", "client:c1", -BIG, "USDT"),
    ("NEGATIVE_AVAILABLE", "high", "client:c1", -BIG, "USDT"),
    ("RECEIPT_AMOUNT_MISMATCH", "high", "receipt:r", -100, "KZT"),
    ("DEADLINE_MISSED", "low", "payment_order:a", None, None),
    ("SEQUENCE_GAP", "medium", "trader:t1", None, None),
    ("SEQUENCE_GAP", "medium", "trader:t2", None, None),
    ("TRADER_LEDGER_DRIFT", "high", "trader:t2", 100, "USDT"),
    ("TRADER_LEDGER_DRIFT", "high", "trader:t1", 100, "USDT"),
    ("TRADER_LEDGER_DRIFT", "high", "trader:t2", -30, "USDT"),
)


def test_by_check_worst_severity_first_then_most_findings() -> None:
    out = breaks.breaks_by_check(FINDINGS)
    assert out["check"].to_list() == [
        "TRADER_LEDGER_DRIFT",
        "FX_MISMATCH",
        "NEGATIVE_AVAILABLE",
        "RECEIPT_AMOUNT_MISMATCH",
        "SEQUENCE_GAP",
        "DEADLINE_MISSED",
    ]
    row = out.filter(pl.col("check") == "NEGATIVE_AVAILABLE").row(0, named=True)
    assert row == {
        "check": "NEGATIVE_AVAILABLE",
        "severity": "high",
        "findings": 2,
        "subjects": 1,
        "with_money": 2,
    }
    assert out.filter(pl.col("check") == "SEQUENCE_GAP")["with_money"].item() == 0


def test_money_at_stake_is_an_exact_integer_sum_per_currency() -> None:
    out = breaks.money_at_stake(FINDINGS)
    assert out.schema["at_stake"] == pl.Int64
    rows = {(r["check"], r["currency"]): r for r in out.iter_rows(named=True)}
    assert rows[("NEGATIVE_AVAILABLE", "USDT")]["at_stake"] == 2 * BIG  # exact, not 2**54
    assert rows[("NEGATIVE_AVAILABLE", "USDT")]["largest"] == BIG
    assert rows[("FX_MISMATCH", "USDT")]["at_stake"] == 2  # |1| + |-1|, not 0
    assert rows[("TRADER_LEDGER_DRIFT", "USDT")]["at_stake"] == 230
    assert rows[("RECEIPT_AMOUNT_MISMATCH", "KZT")]["at_stake"] == 100
    assert ("DEADLINE_MISSED", None) not in rows
    # currencies in order, the most at stake first within one
    assert out["currency"].to_list() == ["KZT", "USDT", "USDT", "USDT"]
    assert out["at_stake"].to_list()[1:] == [2 * BIG, 230, 2]


@pytest.mark.parametrize(
    ("digits", "band"),
    [(1, "1–9"), (2, "10–99"), (4, "1,000–9,999"), (10, "1,000,000,000–9,999,999,999")],
)
def test_amount_bands(digits: int, band: str) -> None:
    assert breaks.amount_band(digits) == band


@pytest.mark.parametrize(
    ("digits", "currency", "band"),
    [
        (1, "USDT", "0.000001 to < 0.00001"),
        (7, "USDT", "1 to < 10"),
        (10, "USDT", "1,000 to < 10,000"),
        (3, "KZT", "1 to < 10"),
        (1, "RUB", "0.01 to < 0.1"),
        (3, "XYZ", "100–999"),  # an unknown currency is not guessed into major units
    ],
)
def test_amount_bands_in_major_units(digits: int, currency: str, band: str) -> None:
    assert breaks.amount_band(digits, currency) == band


def test_amount_band_needs_a_digit() -> None:
    with pytest.raises(ValueError):
        breaks.amount_band(0)


def test_by_amount_counts_each_band_per_currency() -> None:
    out = breaks.breaks_by_amount(FINDINGS)
    assert out.select("currency", "band", "digits", "findings", "at_stake").rows() == [
        ("KZT", "1 to < 10", 3, 1, 100),
        ("USDT", "0.000001 to < 0.00001", 1, 2, 2),
        ("USDT", "0.00001 to < 0.0001", 2, 1, 30),
        ("USDT", "0.0001 to < 0.001", 3, 2, 200),
        ("USDT", "1,000,000,000 to < 10,000,000,000", 16, 2, 2 * BIG),
    ]


def test_largest_breaks_per_currency_with_ties_broken_by_id() -> None:
    out = breaks.largest_breaks(FINDINGS, 2)
    assert out.select("finding_id", "currency").rows() == [
        ("F-000000000004", "KZT"),
        ("F-000000000002", "USDT"),
        ("F-000000000003", "USDT"),
    ]
    one = breaks.largest_breaks(FINDINGS, 3, currency="USDT", one_per_check=True)
    assert one["check"].to_list() == ["NEGATIVE_AVAILABLE", "TRADER_LEDGER_DRIFT", "FX_MISMATCH"]
    assert one["finding_id"].to_list() == ["F-000000000002", "F-000000000008", "F-000000000000"]
    assert breaks.largest_breaks(FINDINGS, 5, currency="EUR").is_empty()


def test_breaks_by_day_puts_unknown_days_last() -> None:
    timed = FINDINGS.head(4).with_columns(
        pl.Series("day", [date(2026, 11, 2), None, date(2026, 11, 1), date(2026, 11, 2)])
    )
    out = breaks.breaks_by_day(timed)
    assert out.rows() == [
        (date(2026, 11, 1), "high", 1),
        (date(2026, 11, 2), "high", 2),
        (None, "high", 1),
    ]
    by_check = breaks.breaks_by_day(timed, by="check")
    assert by_check.columns == ["day", "check", "findings"]


RECON = pl.DataFrame(
    {
        "account": ["client:c1"] * 3 + ["trader:t1"] * 2,
        "currency": ["USDT"] * 5,
        "day": [date(2026, 11, d) for d in (1, 2, 3, 1, 2)],
        "orders_settled": [10, 20, BIG, 5, 5],
        "ledger_orders": [10, 19, BIG, 5, 5],
        "paid_out": [0, 7, 0, 0, 1],
        "ledger_paid_out": [0, 7, 3, 0, 1],
        "top_ups": [100, 0, 0, 50, 0],
    }
).with_columns(
    (pl.col("orders_settled") - pl.col("ledger_orders")).alias("orders_difference"),
    (pl.col("paid_out") - pl.col("ledger_paid_out")).alias("payouts_difference"),
)


def test_account_totals_sum_each_column_and_count_the_days_off() -> None:
    out = breaks.account_totals(RECON)
    c1 = out.filter(pl.col("account") == "client:c1").row(0, named=True)
    assert c1["kind"] == "client" and c1["days"] == 3 and c1["days_off"] == 2
    assert c1["orders_settled"] == 30 + BIG and c1["ledger_orders"] == 29 + BIG
    assert c1["orders_difference"] == 1 and c1["payouts_difference"] == -3
    assert c1["top_ups"] == 100
    t1 = out.filter(pl.col("account") == "trader:t1").row(0, named=True)
    assert t1["kind"] == "trader" and t1["days_off"] == 0


def test_account_drift_runs_over_the_accounts_that_do_not_reconcile() -> None:
    out = breaks.account_drift(RECON)
    assert out["account"].unique().to_list() == ["client:c1"]
    assert out["difference"].to_list() == [0, 1, -3]
    assert out["drift"].to_list() == [0, 1, -2]


def test_trader_drift_runs_per_trader_in_time_order() -> None:
    timed = FINDINGS.with_columns(
        pl.Series(
            "occurred_at",
            [None] * 8 + ["2026-11-03 10:00", "2026-11-01 09:00", "2026-11-02 12:00"],
        )
        .str.to_datetime("%Y-%m-%d %H:%M")
        .dt.replace_time_zone("UTC")
    )
    out = breaks.trader_drift(timed)
    assert out.select("trader_id", "amount_delta", "drift").rows() == [
        ("t1", 100, 100),
        ("t2", -30, -30),
        ("t2", 100, 70),
    ]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_export_round_trips(tmp_path: Path, suffix: str) -> None:
    path = breaks.export_findings(FINDINGS, tmp_path / "sub" / f"findings{suffix}")
    assert path.exists()
    if suffix == ".csv":
        back = pl.read_csv(path, schema_overrides={"amount_delta": pl.Int64})
        assert back["evidence"].to_list()[0] == "e5 x"
    elif suffix == ".parquet":
        back = pl.read_parquet(path)
        assert back["evidence"].to_list()[0] == ["e5", "x"]
    else:
        back = pl.read_ndjson(path, schema=SCHEMA)
    assert back.height == FINDINGS.height
    assert back["check"].to_list() == sorted(FINDINGS["check"].to_list())
    assert sorted(back["amount_delta"].drop_nulls().to_list()) == sorted(
        FINDINGS["amount_delta"].drop_nulls().to_list()
    )


def test_export_refuses_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.csv, \.parquet or \.jsonl"):
        breaks.export_findings(FINDINGS, tmp_path / "findings.xlsx")


# --- on the sample --------------------------------------------------------------------------
def test_every_finding_of_the_sample_gets_its_time(
    sample_db: Path, sample_findings: pl.DataFrame
) -> None:
    timed = breaks.with_time(sample_db, sample_findings)
    assert timed.height == sample_findings.height
    assert timed["finding_id"].to_list() == sample_findings["finding_id"].to_list()
    assert timed.schema["occurred_at"] == pl.Datetime("us", "UTC")
    assert timed["day"].null_count() == 0  # quarantined rows too, from their raw occurred_at
    assert timed["day"].min() == date(2026, 11, 1) and timed["day"].max() == date(2026, 11, 7)
    by_day = breaks.breaks_by_day(timed)
    assert by_day["findings"].sum() == sample_findings.height


def test_the_sample_money_at_stake(sample_findings: pl.DataFrame) -> None:
    at_stake = breaks.money_at_stake(sample_findings)
    money = sample_findings.filter(pl.col("amount_delta").is_not_null())
    assert at_stake["findings"].sum() == money.height
    for (currency,), part in money.group_by("currency"):
        total = sum(abs(v) for v in part["amount_delta"].to_list())
        assert at_stake.filter(pl.col("currency") == currency)["at_stake"].sum() == total
