"""The audit's findings cut for a reconciliation: by check, by day, by amount, the largest ones,
per account, and exported.

Money stays in integer minor units of its currency: sums are Int64 sums of ``amount_delta``,
one currency at a time (amounts of different currencies are never added). Every frame is
sorted on a full key, so the same findings give the same frame in every run.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..domain.money import EXPONENTS, format_major
from .database import connect, read

#: Severities from worst to mildest (the order tables and charts use).
SEVERITIES: tuple[str, ...] = ("high", "medium", "low")

_RANK = pl.col("severity").replace_strict(
    {s: i for i, s in enumerate(SEVERITIES)}, default=len(SEVERITIES), return_dtype=pl.Int64
)

#: When each offending event occurred: from ``events``, or for a quarantined row from the
#: ``occurred_at`` its raw row carries (when that is readable).
TIMES_SQL = """
WITH q AS (
    SELECT event_id,
           min(TRY_CAST(CASE WHEN json_valid(raw) THEN json_extract_string(raw, '$.occurred_at') END
                        AS TIMESTAMPTZ)) AS occurred_at
    FROM quarantine WHERE event_id IN (SELECT event_id FROM wanted) GROUP BY event_id
),
e AS (
    SELECT event_id, min(occurred_at) AS occurred_at
    FROM events WHERE event_id IN (SELECT event_id FROM wanted) GROUP BY event_id
)
SELECT w.event_id, coalesce(e.occurred_at, q.occurred_at) AS occurred_at
FROM wanted w LEFT JOIN e USING (event_id) LEFT JOIN q USING (event_id)
ORDER BY w.event_id
"""


def with_time(db: str | Path, findings: pl.DataFrame) -> pl.DataFrame:
    """``findings`` with ``occurred_at`` (UTC) of each offending event and its ``day``; both
    null for an event whose time is unknown (a quarantined row too broken to tell)."""
    wanted = findings.select(pl.col("event_id").unique().sort())
    con = connect(db)
    try:
        con.register("wanted", wanted.to_arrow())
        times = read(con, TIMES_SQL)
    finally:
        con.close()
    times = times.with_columns(pl.col("occurred_at").dt.convert_time_zone("UTC"))
    out = findings.join(times, on="event_id", how="left", maintain_order="left")
    return out.with_columns(pl.col("occurred_at").dt.date().alias("day"))


def worst_first(findings: pl.DataFrame) -> pl.DataFrame:
    """``findings`` in the order an analyst works them: worst severity first, then the most
    money at stake (``|amount_delta|``, compared within a currency only by size of minor units),
    then check and ``finding_id``."""
    return findings.sort(
        _RANK,
        pl.col("amount_delta").abs(),
        pl.col("check"),
        pl.col("finding_id"),
        descending=[False, True, False, False],
        nulls_last=True,
    )


def breaks_by_check(findings: pl.DataFrame) -> pl.DataFrame:
    """Per check: its severity, the number of findings, of distinct subjects, and of findings
    with money at stake; worst severity first, then most findings."""
    return (
        findings.group_by("check")
        .agg(
            pl.col("severity").first(),
            pl.len().cast(pl.Int64).alias("findings"),
            pl.col("subject").n_unique().cast(pl.Int64).alias("subjects"),
            pl.col("amount_delta").is_not_null().sum().cast(pl.Int64).alias("with_money"),
        )
        .sort(_RANK, pl.col("findings"), pl.col("check"), descending=[False, True, False])
    )


def money_at_stake(findings: pl.DataFrame) -> pl.DataFrame:
    """Per check and currency, over the findings that put money at stake: their number, the
    money at stake (the sum of ``|amount_delta|``, minor units) and the largest single one."""
    money = findings.filter(pl.col("amount_delta").is_not_null())
    return (
        money.group_by("check", "currency")
        .agg(
            pl.col("severity").first(),
            pl.len().cast(pl.Int64).alias("findings"),
            pl.col("amount_delta").abs().sum().cast(pl.Int64).alias("at_stake"),
            pl.col("amount_delta").abs().max().cast(pl.Int64).alias("largest"),
        )
        .sort(
            pl.col("currency"), pl.col("at_stake"), pl.col("check"), descending=[False, True, False]
        )
    )


def breaks_by_day(timed: pl.DataFrame, by: str = "severity") -> pl.DataFrame:
    """Findings per day of their offending event (a frame from :func:`with_time`) and ``by``
    (``severity`` or ``check``); a null day for events whose time is unknown comes last."""
    out = timed.group_by("day", by).agg(pl.len().cast(pl.Int64).alias("findings"))
    key = _RANK if by == "severity" else pl.col(by)
    return out.with_columns(key.alias("_k")).sort("day", "_k", nulls_last=True).drop("_k")


def amount_band(digits: int, currency: str | None = None) -> str:
    """The band of amounts with ``digits`` decimal digits in minor units, e.g. 3 →
    ``"100–999"``; with a known ``currency``, in its major units, exactly: 3 digits of USDT →
    ``"0.0001 to < 0.001"`` (an upper bound written as the next power of ten, not as
    ``0.000999``)."""
    if digits < 1:
        raise ValueError(f"a band has at least one digit, got {digits}")
    if currency in EXPONENTS:
        return f"{_trimmed(10 ** (digits - 1), currency)} to < {_trimmed(10**digits, currency)}"
    return f"{10 ** (digits - 1):,}–{10**digits - 1:,}"


def _trimmed(minor: int, currency: str) -> str:
    text = format_major(minor, currency)
    return text.rstrip("0").rstrip(".") if "." in text else text


def breaks_by_amount(findings: pl.DataFrame) -> pl.DataFrame:
    """Findings with money at stake, per currency and band of ``|amount_delta|`` (by its number
    of decimal digits in minor units: 1–9, 10–99, …; ``band`` says it in major units of the
    currency): their number and the money at stake (minor units)."""
    money = findings.filter(pl.col("amount_delta").is_not_null()).with_columns(
        pl.col("amount_delta").abs().cast(pl.String).str.len_chars().cast(pl.Int64).alias("digits")
    )
    out = (
        money.group_by("currency", "digits")
        .agg(
            pl.len().cast(pl.Int64).alias("findings"),
            pl.col("amount_delta").abs().sum().cast(pl.Int64).alias("at_stake"),
        )
        .sort("currency", "digits")
    )
    bands = [amount_band(d, c) for c, d in out.select("currency", "digits").iter_rows()]
    return out.with_columns(pl.Series("band", bands, pl.String)).select(
        "currency", "band", "digits", "findings", "at_stake"
    )


def largest_breaks(
    findings: pl.DataFrame,
    n: int = 5,
    *,
    currency: str | None = None,
    one_per_check: bool = False,
) -> pl.DataFrame:
    """The ``n`` findings with the most money at stake (``|amount_delta|``) in each currency
    (amounts of different currencies are not compared), or in ``currency`` only; worst
    severity and then ``finding_id`` break ties. ``one_per_check``: only the largest finding
    of each check, so one kind of break does not fill the list."""
    money = findings.filter(pl.col("amount_delta").is_not_null())
    if currency is not None:
        money = money.filter(pl.col("currency") == currency)
    money = money.sort(
        pl.col("currency"),
        pl.col("amount_delta").abs(),
        _RANK,
        pl.col("finding_id"),
        descending=[False, True, False, False],
    )
    if one_per_check:
        money = money.unique(subset=["currency", "check"], keep="first", maintain_order=True)
    return money.filter(pl.int_range(pl.len()).over("currency") < n)


def account_totals(reconciliation: pl.DataFrame) -> pl.DataFrame:
    """The reconciliation (:func:`workbench.audit.reconcile_payouts`) summed per account and
    currency over its days: ``kind`` (client, trader, …), the days, the days that do not
    reconcile, and each column's total (minor units)."""
    money = [
        "orders_settled",
        "ledger_orders",
        "orders_difference",
        "paid_out",
        "ledger_paid_out",
        "payouts_difference",
        "top_ups",
    ]
    off = (pl.col("orders_difference") != 0) | (pl.col("payouts_difference") != 0)
    return (
        reconciliation.group_by("account", "currency")
        .agg(
            pl.len().cast(pl.Int64).alias("days"),
            off.sum().cast(pl.Int64).alias("days_off"),
            *[pl.col(c).sum().cast(pl.Int64) for c in money],
        )
        .with_columns(pl.col("account").str.split(":").list.first().alias("kind"))
        .select("account", "kind", "currency", "days", "days_off", *money)
        .sort("account", "currency")
    )


def account_drift(reconciliation: pl.DataFrame) -> pl.DataFrame:
    """Per account that does not reconcile on some day: each day's difference (orders plus
    payouts, minor units) and the running ``drift`` since the first day."""
    diff = reconciliation.with_columns(
        (pl.col("orders_difference") + pl.col("payouts_difference")).alias("difference")
    )
    off = diff.group_by("account", "currency").agg((pl.col("difference") != 0).any().alias("off"))
    keep = off.filter(pl.col("off")).select("account", "currency")
    return (
        diff.join(keep, on=["account", "currency"])
        .sort("account", "currency", "day")
        .select(
            "account",
            "currency",
            "day",
            "difference",
            pl.col("difference").cum_sum().over("account", "currency").alias("drift"),
        )
    )


def trader_drift(timed: pl.DataFrame) -> pl.DataFrame:
    """Per trader, the ``TRADER_LEDGER_DRIFT`` findings (a frame from :func:`with_time`) in
    time order: what the trader stream moved minus what the ledger booked, per ``ref``
    (``amount_delta``), and the running ``drift`` of the trader's deposit against the ledger."""
    drift = timed.filter(pl.col("check") == "TRADER_LEDGER_DRIFT")
    return (
        drift.with_columns(pl.col("subject").str.strip_prefix("trader:").alias("trader_id"))
        .sort("trader_id", "currency", "occurred_at", "finding_id", nulls_last=True)
        .select(
            "trader_id",
            "currency",
            "occurred_at",
            "finding_id",
            "amount_delta",
            pl.col("amount_delta").cum_sum().over("trader_id", "currency").alias("drift"),
        )
    )


def export_findings(findings: pl.DataFrame, path: str | Path) -> Path:
    """Write ``findings`` sorted by check, subject and event: ``.csv`` (evidence as one
    space-separated field), ``.parquet``, or ``.jsonl`` (one finding a line), by the file's
    suffix. Creates the directory; returns the path."""
    out = Path(path)
    frame = findings.sort("check", "subject", "event_id", "finding_id")
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        flat = frame.with_columns(pl.col("evidence").list.join(" "))
        flat.write_csv(out)
    elif suffix == ".parquet":
        frame.write_parquet(out)
    elif suffix in (".jsonl", ".ndjson"):
        frame.write_ndjson(out)
    else:
        raise ValueError(f"{out}: write findings to a .csv, .parquet or .jsonl file")
    return out
