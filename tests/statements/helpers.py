"""What the statement tests share: a small payout history made with the platform's processors
(every payout story a statement can meet), statement lines put where the models read them, the
statement checks run on their own, and a loader of the generator's statement files.

The loader stands in for the importer (``workbench statements import``, built beside this work):
it reads the files the generator writes into the analyst database's tables of
``workbench/statements/schema.py``, the CSV's period its lines' value dates, the camt.053's its
``FrToDt``. When the importer lands, the end-to-end tests call it instead.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from workbench import models
from workbench.audit import shared
from workbench.domain.money import EXPONENTS
from workbench.domain.processors import IdSource, Platform
from workbench.domain.violations import STATEMENT_CHECK_CODES
from workbench.export import ExportWriter
from workbench.replay import rebuild, store
from workbench.statements.readable import ensure_tables

USDT = 10**6
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
DAY1 = date(2026, 11, 1)
STATEMENT_CHECKS = STATEMENT_CHECK_CODES


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def dest(pid: str) -> str:
    """Each payout's own destination, unless a test shares one."""
    return f"TRC20:T{pid}****x"


@dataclass(frozen=True)
class Story:
    """A payout made in the scenario: its amount (major USDT), bank_ref and how it ended."""

    pid: str
    amount: int
    steps: tuple[str, ...]  # in order: paid, confirmed, cancelled, failed
    destination: str | None = None

    @property
    def bank_ref(self) -> str | None:
        return f"BR-{self.pid}" if "paid" in self.steps else None

    @property
    def to(self) -> str:
        return self.destination or dest(self.pid)


#: Every payout story a statement meets, each created on 2026-11-01 and sent (paid, or confirmed
#: without a paid event) the same day.
STORIES = (
    Story("ref", 100, ("paid", "confirmed")),
    Story("parts", 200, ("paid", "confirmed")),
    Story("amount", 77, ("confirmed",)),
    Story("twin-a", 55, ("confirmed",), "TRC20:Ttwin****x"),
    Story("twin-b", 55, ("paid", "confirmed"), "TRC20:Ttwin****x"),
    Story("missing", 300, ("paid", "confirmed")),
    Story("dup", 120, ("paid", "confirmed")),
    Story("short", 130, ("paid", "confirmed")),
    Story("cancel", 140, ("paid", "cancelled")),
    Story("failed", 150, ("failed",)),
    Story("revert", 160, ("paid", "confirmed", "cancelled")),
    Story("revert-plain", 165, ("confirmed", "cancelled")),
    Story("unpaid", 170, ()),
    Story("paid", 180, ("paid",)),
)
BY_PID = {s.pid: s for s in STORIES}


@dataclass(frozen=True)
class Scenario:
    db: Path
    #: payout id -> kind (``created``, ``paid``, ...) -> event id
    events: dict[str, dict[str, str]]


def build_scenario(folder: Path) -> Scenario:
    """The stories through the platform's processors, exported and replayed into a database."""
    p = Platform(ids=IdSource(seed=18))
    p.register_client("cl-1", "Merchant", "USDT", 150, at(0))
    p.top_up_client("cl-1", "tu-1", 1_000_000 * USDT, at(0.1))
    for i, s in enumerate(STORIES):
        h = 0.5 + i * 0.5
        p.create_payout(s.pid, "client:cl-1", s.amount * USDT, USDT, "USDT", s.to, at(h))
        for k, step in enumerate(s.steps, start=1):
            when = at(h + 0.1 * k)
            if step == "paid":
                assert s.bank_ref is not None
                p.mark_payout_paid(s.pid, s.bank_ref, when)
            elif step == "confirmed":
                p.confirm_payout(s.pid, when)
            elif step == "cancelled":
                p.cancel_payout(s.pid, "cancelled", when)
            else:
                p.fail_payout(s.pid, "rejected", when)
    events: dict[str, dict[str, str]] = {}
    writer = ExportWriter(folder / "export", seed=0, shuffle=False)
    for e in p.log:
        writer.add_event(e)
        if e.stream == "payout":
            events.setdefault(e.aggregate_id, {})[e.kind.split(".")[1]] = e.event_id
    writer.close()
    db = folder / "scenario.duckdb"
    rebuild([folder / "export"], db, progress=False)
    return Scenario(db, events)


@dataclass(frozen=True)
class Line:
    """A statement line as a test writes it: ``amount`` in minor units, signed (negative out)."""

    line_id: str
    amount: int
    reference: str | None = None
    counterparty: str | None = None
    day: date = DAY1
    currency: str = "USDT"


def out(pid: str, line_id: str | None = None, *, day: int = 0, amount: int | None = None) -> Line:
    """The money out a payout's story would show: its amount, under its bank_ref."""
    s = BY_PID[pid]
    return Line(
        line_id or f"L-{pid}",
        -(amount if amount is not None else s.amount * USDT),
        s.bank_ref,
        s.to,
        DAY1 + timedelta(days=day),
    )


def back(pid: str, line_id: str | None = None, *, day: int = 0) -> Line:
    s = BY_PID[pid]
    return Line(
        line_id or f"B-{pid}", s.amount * USDT, s.bank_ref, s.to, DAY1 + timedelta(days=day)
    )


def put(
    con: duckdb.DuckDBPyConnection,
    lines: Sequence[Line],
    periods: Iterable[tuple[date, date]] = ((DAY1, DAY1 + timedelta(days=9)),),
) -> None:
    """``lines`` and statement files covering ``periods`` into the statement tables ``con``
    reads (empty temp tables made first where it has none)."""
    ensure_tables(con)
    for i, (a, b) in enumerate(periods):
        con.execute(
            "INSERT OR IGNORE INTO statement_files VALUES (?, ?, 'csv', ?, ?, ?, 0, 0, 0, 0, 0)",
            [f"sha-{i}", f"s{i}.csv", a, b, T0],
        ).fetchall()
    for n, x in enumerate(lines, start=1):
        con.execute(
            "INSERT INTO statement_lines VALUES (?, 'sha-0', ?, ?, NULL, ?, ?, ?, ?, '')",
            [x.line_id, n, x.day, x.amount, x.currency, x.reference, x.counterparty],
        ).fetchall()


def reader(db: Path) -> duckdb.DuckDBPyConnection:
    return store.connect(db, read_only=True)


def statement_findings(
    con: duckdb.DuckDBPyConnection, window: int = 3, as_of: datetime | None = None
) -> pl.DataFrame:
    """The six statement checks alone over ``con`` (the audit runs all of them the same way:
    ``tests/statements/test_checks.py`` holds the two to each other); ``as_of`` as an audit
    ``--as-of`` reads the statements."""
    context = {"statement_window_days": window}
    if as_of is not None:
        context["statement_as_of"] = f"'{as_of.isoformat()}'::TIMESTAMPTZ"  # type: ignore[assignment]
    shared.prepare(con, ["statement_matches", "statement_totals"], **context)
    names = ", ".join(f'"{c}"' for c in models.FINDING_COLUMNS)
    frames = []
    for code in STATEMENT_CHECKS:
        sql = models.checks()[code].sql(**context)
        frame = pl.from_arrow(con.sql(f"SELECT * FROM ({sql}) AS t({names})").to_arrow_table())
        assert isinstance(frame, pl.DataFrame)
        frames.append(frame.cast({"amount_delta": pl.Int64}))
    for name in ("statement_totals", "statement_matches", "statement_payouts"):
        con.execute(f"DROP TABLE IF EXISTS temp.main.{name}").fetchall()
    return pl.concat(frames).sort("check", "subject")


# ------------------------------------------------------------------- the generator's files
def _minor(text: str, currency: str) -> int:
    exp = EXPONENTS[currency]
    value = Decimal(text) * 10**exp
    assert value == value.to_integral_value(), f"{text} has more decimals than {currency} allows"
    return int(value)


def _day(text: str) -> date:
    return date.fromisoformat(text[:10])


def read_csv(path: Path) -> list[dict[str, object]]:
    """A statement CSV's lines as rows of ``statement_lines`` (the default columns)."""
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for n, r in enumerate(csv.DictReader(f), start=1):
            rows.append(
                {
                    "line_id": r["line_id"],
                    "line_no": n,
                    "value_date": date.fromisoformat(r["value_date"]),
                    "booked_at": datetime.fromisoformat(r["booked_at"].replace("Z", "+00:00")),
                    "amount_minor": _minor(r["amount"], r["currency"]),
                    "currency": r["currency"],
                    "reference": r["reference"] or None,
                    "counterparty": r["counterparty"] or None,
                    "raw": ",".join(r.values()),
                }
            )
    return rows


NS = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"}


def read_camt(path: Path) -> tuple[tuple[date, date], list[dict[str, object]]]:
    """A camt.053 file's period (``FrToDt`` of its statements) and its entries as rows."""
    root = ET.parse(path).getroot()
    froms, tos, rows = [], [], []
    n = 0
    for stmt in root.iterfind("c:BkToCstmrStmt/c:Stmt", NS):
        froms.append(_day(stmt.findtext("c:FrToDt/c:FrDtTm", namespaces=NS) or ""))
        tos.append(_day(stmt.findtext("c:FrToDt/c:ToDtTm", namespaces=NS) or ""))
        for ntry in stmt.iterfind("c:Ntry", NS):
            n += 1
            amt = ntry.find("c:Amt", NS)
            assert amt is not None and amt.text is not None
            ccy = amt.attrib["Ccy"]
            sign = -1 if ntry.findtext("c:CdtDbtInd", namespaces=NS) == "DBIT" else 1
            tx = "c:NtryDtls/c:TxDtls/"
            party = "CdtrAcct" if sign < 0 else "DbtrAcct"
            rows.append(
                {
                    "line_id": ntry.findtext("c:NtryRef", namespaces=NS),
                    "line_no": n,
                    "value_date": _day(ntry.findtext("c:ValDt/c:Dt", namespaces=NS) or ""),
                    "booked_at": datetime.fromisoformat(
                        (ntry.findtext("c:BookgDt/c:DtTm", namespaces=NS) or "").replace(
                            "Z", "+00:00"
                        )
                    ),
                    "amount_minor": sign * _minor(amt.text, ccy),
                    "currency": ccy,
                    "reference": ntry.findtext(tx + "c:Refs/c:EndToEndId", namespaces=NS),
                    "counterparty": ntry.findtext(
                        tx + f"c:RltdPties/c:{party}/c:Id/c:Othr/c:Id", namespaces=NS
                    ),
                    "raw": ET.tostring(ntry, encoding="unicode"),
                }
            )
    return (min(froms), max(tos)), rows


def load_statements(db: Path, paths: Sequence[Path]) -> int:
    """The statement files into ``db``'s analyst database with the importer (as `workbench
    statements import` does); returns the lines stored, after checking nothing was refused."""
    from workbench.statements.importer import import_statements

    summary = import_statements(list(paths), db)
    assert summary.quarantined == 0 and summary.conflicts == 0, summary
    return summary.stored
