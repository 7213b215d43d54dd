"""The payout provider's statements for a generated history (``workbench generate --statements``).

What the provider's bank shows is derived from the finished history, after the events, with its
own seeded random numbers, so asking for statements never changes the events of a ``--clean``
history (without ``--clean`` the history also gets the payouts the breaks are planted on:
:mod:`.statement_breaks`). The statement is the one a clean platform would get:

* every payout the platform says was sent (a ``payout.paid``, else a ``payout.confirmed``) is a
  line of money out (negative) of exactly its ``amount`` in its currency (the fee stays with the
  platform), to its ``destination_masked``, booked from two minutes to three hours after it was
  sent, so its value date is that day or the next, inside the matching window;
* under its ``bank_ref``; a payout without one (confirmed straight from unpaid) carries the
  provider's own reference, which the platform never learnt (``PRV…``), and so do a few paid
  payouts whose amount, currency and destination no other payout has, so the
  amount-and-counterparty rule is exercised; a few paid payouts leave in two parts under one
  reference;
* a payout cancelled after it was paid, or cancelled after confirmation with its revert plan
  booked, has its money come back (a positive line, under the reference of its money out) from
  ten minutes to six hours after the cancel.

The files, one statement per UTC day from the history's first day to :data:`TRAILING_DAYS` after
its last (the provider keeps sending them; a payout is only judged missing once the statements
cover the matching window after it), each in two formats describing the same lines:

``<out>/statements/YYYY-MM-DD.csv``
    the default columns ``line_id,value_date,booked_at,amount,currency,reference,counterparty``,
    ``amount`` a decimal string in major units with the currency's decimals, negative for money
    out (an empty day has the header only);
``<out>/statements/YYYY-MM-DD.camt053.xml``
    ISO 20022 camt.053.001.02: one ``Stmt`` per currency with its ``FrToDt`` (the day), opening
    and closing balances, one ``Ntry`` per line (``NtryRef`` the line id, ``Amt Ccy``,
    ``CdtDbtInd``, ``BookgDt/DtTm``, ``ValDt/Dt``, ``NtryDtls/TxDtls/Refs/EndToEndId`` the
    reference, ``RltdPties/CdtrAcct`` (money out) or ``DbtrAcct`` (money back) ``/Id/Othr/Id``
    the counterparty).

Import one format per day (the line ids are the same in both). Everything is a function of the
history and the seed: the same arguments give byte-identical files.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from ..domain.events import Event
from ..domain.money import exponent
from ..statements.rules import WINDOW_DAYS
from .truth import TruthRow

#: Statements go on this many days past the history's last day: the matching window (the
#: audit's default), so every payout of the history is judged.
TRAILING_DAYS = WINDOW_DAYS
#: The provider's account the payouts leave from, per currency.
ACCOUNT = "PROVIDER-PAYOUTS-{currency}"
#: Its balance at the opening of the first statement, in major units.
OPENING_MAJOR = 50_000_000
#: Shares of paid payouts sent in two parts, and sent under the provider's reference.
PARTS_SHARE = 0.1
PROVIDER_REF_SHARE = 0.08
CSV_COLUMNS = (
    "line_id",
    "value_date",
    "booked_at",
    "amount",
    "currency",
    "reference",
    "counterparty",
)
CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


@dataclass
class Trail:
    """What the statements need of one payout, from its events."""

    payout_id: str
    amount: int
    currency: str
    destination: str
    created: Event
    paid: Event | None = None
    confirmed: Event | None = None
    ended: Event | None = None  # its cancel or failure
    cancelled_from: str | None = None
    revert_booked: bool = False
    status: str = "unpaid"

    @property
    def bank_ref(self) -> str | None:
        return None if self.paid is None else str(self.paid.payload.bank_ref)  # type: ignore[attr-defined]

    @property
    def sent(self) -> Event | None:
        """The event that says the money left: ``payout.paid``, else ``payout.confirmed``."""
        return self.paid or self.confirmed

    @property
    def returns(self) -> bool:
        """Whether its money comes back: cancelled after it was paid (before confirmation), or
        after confirmation with its revert plan booked."""
        if self.status != "cancelled" or self.sent is None:
            return False
        return self.cancelled_from == "paid" or (
            self.cancelled_from == "confirmed" and self.revert_booked
        )


class PayoutRecorder:
    """Collects the payouts' stories from the events as the generator's sink sees them (a
    redelivered event is seen once)."""

    def __init__(self) -> None:
        self.trails: dict[str, Trail] = {}
        self._seen: set[str] = set()

    def see(self, e: Event) -> None:
        if e.event_id in self._seen:
            return
        if e.stream == "payout":
            self._seen.add(e.event_id)
            self._payout(e)
        elif e.kind == "ledger_plan.committed" and e.aggregate_id.startswith("revert:payout:"):
            self._seen.add(e.event_id)
            t = self.trails.get(e.aggregate_id.removeprefix("revert:payout:"))
            if t is not None:
                t.revert_booked = True

    def _payout(self, e: Event) -> None:
        p: Any = e.payload
        if e.kind == "payout.created":
            self.trails[e.aggregate_id] = Trail(
                e.aggregate_id, p.amount, p.currency, p.destination_masked, e
            )
            return
        t = self.trails.get(e.aggregate_id)
        if t is None:
            return
        if e.kind == "payout.paid":
            t.paid, t.status = e, "paid"
        elif e.kind == "payout.confirmed":
            t.confirmed, t.status = e, "confirmed"
        elif e.kind in ("payout.cancelled", "payout.failed"):
            t.ended, t.cancelled_from = e, t.status
            t.status = "cancelled" if e.kind == "payout.cancelled" else "failed"


@dataclass
class Line:
    """One statement line; ``line_id`` is given once every line is known (:func:`number`)."""

    booked_at: datetime
    amount_minor: int
    currency: str
    reference: str
    counterparty: str
    payout_id: str | None
    line_id: str = ""

    @property
    def value_date(self) -> date:
        return self.booked_at.date()


@dataclass
class Statements:
    """The statement lines of a history (``first_day`` to ``last_day``, its UTC days), before
    and after the breaks are planted."""

    lines: list[Line]
    first_day: date
    last_day: date
    trails: list[Trail] = field(default_factory=list)


def provider_ref(rng: random.Random) -> str:
    return f"PRV{rng.getrandbits(48):012X}"


def _later(rng: random.Random, at: datetime, lo_s: int, hi_s: int) -> datetime:
    return at + timedelta(seconds=rng.randint(lo_s, hi_s))


def clean_lines(trails: list[Trail], rng: random.Random) -> list[Line]:
    """The lines a clean provider shows for these payouts (see the module doc)."""
    keys = Counter((t.amount, t.currency, t.destination) for t in trails)
    lines: list[Line] = []
    for t in trails:
        sent = t.sent
        if sent is None:
            continue
        ref = t.bank_ref
        unique = keys[(t.amount, t.currency, t.destination)] == 1
        if ref is None or (unique and rng.random() < PROVIDER_REF_SHARE):
            ref = provider_ref(rng)
        booked = _later(rng, sent.occurred_at, 120, 3 * 3600)
        if t.paid is not None and ref == t.bank_ref and t.amount > 1 and rng.random() < PARTS_SHARE:
            first = max(1, min(t.amount - 1, t.amount * rng.randint(30, 70) // 100))
            lines.append(Line(booked, -first, t.currency, ref, t.destination, t.payout_id))
            again = _later(rng, booked, 1, 600)
            lines.append(
                Line(again, -(t.amount - first), t.currency, ref, t.destination, t.payout_id)
            )
        else:
            lines.append(Line(booked, -t.amount, t.currency, ref, t.destination, t.payout_id))
        if t.returns:
            assert t.ended is not None
            back = _later(rng, max(t.ended.occurred_at, booked), 600, 6 * 3600)
            lines.append(Line(back, t.amount, t.currency, ref, t.destination, t.payout_id))
    return lines


def make(
    trails: list[Trail], first_day: date, last_day: date, seed: int, *, breaks: bool
) -> tuple[Statements, list[TruthRow]]:
    """The statements of a finished history: the clean lines, with the breaks planted unless
    ``breaks`` is false, numbered; and the truth of the breaks."""
    from .statement_breaks import BreakPlanter

    rng = random.Random(seed)
    st = Statements(clean_lines(trails, rng), first_day, last_day, trails)
    planter = BreakPlanter(st, seed * 31 + 7) if breaks else None
    if planter is not None:
        planter.plant()
    st.lines = number(st.lines)
    return st, planter.truth() if planter is not None else []


def number(lines: list[Line]) -> list[Line]:
    """Order the lines by booking time and give each its id: ``ST<yyyymmdd>-<n>``, numbered
    within its day."""
    ordered = sorted(lines, key=lambda x: (x.booked_at, x.amount_minor, x.reference))
    per_day: Counter[date] = Counter()
    for x in ordered:
        per_day[x.value_date] += 1
        x.line_id = f"ST{x.value_date:%Y%m%d}-{per_day[x.value_date]:05d}"
    return ordered


# ------------------------------------------------------------------------------- the files
def decimal_text(minor: int, currency: str) -> str:
    """Minor units as a plain decimal string in major units, the currency's decimals, signed."""
    exp = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole}" + (f".{frac:0{exp}d}" if exp else "")


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_text(lines: list[Line]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for x in lines:
        w.writerow(
            [
                x.line_id,
                x.value_date.isoformat(),
                stamp(x.booked_at),
                decimal_text(x.amount_minor, x.currency),
                x.currency,
                x.reference,
                x.counterparty,
            ]
        )
    return buf.getvalue()


def camt_text(day: date, lines: list[Line], opening: dict[str, int], currencies: list[str]) -> str:
    """One day's camt.053 document: a ``Stmt`` per currency (every currency the provider pays
    out in, empty or not), ``opening`` the balances at the day's start (updated to its close)."""
    start = datetime.combine(day, time(0, 0))
    end = datetime.combine(day, time(23, 59, 59))
    created = stamp(datetime.combine(day + timedelta(days=1), time(1, 0)))
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<Document xmlns="{CAMT_NS}">',
        "  <BkToCstmrStmt>",
        f"    <GrpHdr><MsgId>STMT-{day:%Y%m%d}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>",
    ]
    for ccy in currencies:
        mine = [x for x in lines if x.currency == ccy]
        before = opening[ccy]
        after = before + sum(x.amount_minor for x in mine)
        opening[ccy] = after
        out += [
            "    <Stmt>",
            f"      <Id>STMT-{day:%Y%m%d}-{ccy}</Id>",
            f"      <CreDtTm>{created}</CreDtTm>",
            f"      <FrToDt><FrDtTm>{start:%Y-%m-%dT%H:%M:%S}Z</FrDtTm>"
            f"<ToDtTm>{end:%Y-%m-%dT%H:%M:%S}Z</ToDtTm></FrToDt>",
            f"      <Acct><Id><Othr><Id>{ACCOUNT.format(currency=ccy)}</Id></Othr></Id>"
            f"<Ccy>{ccy}</Ccy></Acct>",
            _balance("OPBD", before, ccy, day),
            _balance("CLBD", after, ccy, day),
        ]
        for x in mine:
            debit = x.amount_minor < 0
            party = "CdtrAcct" if debit else "DbtrAcct"
            out += [
                "      <Ntry>",
                f"        <NtryRef>{escape(x.line_id)}</NtryRef>",
                f'        <Amt Ccy="{ccy}">{decimal_text(abs(x.amount_minor), ccy)}</Amt>',
                f"        <CdtDbtInd>{'DBIT' if debit else 'CRDT'}</CdtDbtInd>",
                "        <Sts>BOOK</Sts>",
                f"        <BookgDt><DtTm>{stamp(x.booked_at)}</DtTm></BookgDt>",
                f"        <ValDt><Dt>{x.value_date.isoformat()}</Dt></ValDt>",
                "        <BkTxCd><Prtry><Cd>"
                + ("PAYOUT" if debit else "RETURN")
                + "</Cd></Prtry></BkTxCd>",
                "        <NtryDtls><TxDtls>",
                f"          <Refs><EndToEndId>{escape(x.reference)}</EndToEndId></Refs>",
                f"          <RltdPties><{party}><Id><Othr><Id>{escape(x.counterparty)}</Id>"
                f"</Othr></Id></{party}></RltdPties>",
                "        </TxDtls></NtryDtls>",
                "      </Ntry>",
            ]
        out.append("    </Stmt>")
    out += ["  </BkToCstmrStmt>", "</Document>", ""]
    return "\n".join(out)


def _balance(code: str, minor: int, ccy: str, day: date) -> str:
    ind = "CRDT" if minor >= 0 else "DBIT"
    return (
        f"      <Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
        f'<Amt Ccy="{ccy}">{decimal_text(abs(minor), ccy)}</Amt><CdtDbtInd>{ind}</CdtDbtInd>'
        f"<Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>"
    )


def write(folder: Path, st: Statements) -> list[Path]:
    """One CSV and one camt.053 per day from the history's first day to :data:`TRAILING_DAYS`
    after its last (and any later day a line falls on); returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    trailing = st.last_day + timedelta(days=TRAILING_DAYS)
    last = max([trailing, *(x.value_date for x in st.lines)])
    currencies = sorted({t.currency for t in st.trails} | {x.currency for x in st.lines})
    opening = {c: OPENING_MAJOR * 10 ** exponent(c) for c in currencies}
    by_day: dict[date, list[Line]] = {}
    for x in st.lines:
        by_day.setdefault(x.value_date, []).append(x)
    files = []
    day = st.first_day
    while day <= last:
        lines = by_day.get(day, [])
        for path, text in (
            (folder / f"{day.isoformat()}.csv", csv_text(lines)),
            (folder / f"{day.isoformat()}.camt053.xml", camt_text(day, lines, opening, currencies)),
        ):
            path.write_bytes(text.encode("utf-8"))
            files.append(path)
        day += timedelta(days=1)
    return files
