"""An ISO 20022 camt.053 bank-to-customer statement (any ``camt.053.001.xx`` version): one line
per booked entry (``Document/BkToCstmrStmt/Stmt/Ntry``).

Why these choices (what an analyst reading the bank's XML would expect):

* the amount is ``Amt`` in its ``Ccy``, negative when ``CdtDbtInd`` is ``DBIT`` (money out of
  the platform's account), positive for ``CRDT`` (a return). A reversal (``RvslInd``) is signed
  by its own ``CdtDbtInd`` too: that is the direction of the reversal's booking;
* the value date is ``ValDt/Dt`` (or the date of ``ValDt/DtTm`` as written); ``booked_at`` is
  ``BookgDt/DtTm`` (with its UTC offset; without one it is refused, not guessed), NULL where the
  bank gives only ``BookgDt/Dt``;
* the reference is the first transaction's ``Refs/EndToEndId`` (``NOTPROVIDED``, SEPA's
  placeholder, counts as none), else the entry's ``AcctSvcrRef``; the line id is the entry's
  ``NtryRef``, else its ``AcctSvcrRef``, else derived from the content (see records.derived_id);
* the counterparty is the creditor's account (``RltdPties/CdtrAcct/Id/IBAN`` or ``Othr/Id``)
  for a debit and the debtor's (``DbtrAcct``) for a credit: the destination the money went to
  or came back from;
* an entry whose status (``Sts`` or ``Sts/Cd``) is not booked, or that books several
  transactions at once (more than one ``TxDtls``), is quarantined, not stored;
* the period is the statements' ``FrToDt`` (dates as written), else the lines' value dates;
* a line's ``line_no`` is its entry's position in the file (the n-th ``Ntry``, 1-based): XML
  has no lines worth naming (a bank may write it on one).

Safety: parsed with ``defusedxml``, which refuses a DTD, entity declarations and external
references (the file is quarantined as ``unsafe_xml``), so nothing outside the file is ever read
and no entity can blow up. Each entry's raw text is its bytes as read (located by a second,
plain expat pass, run only on a document already known to have no DTD).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import xml.parsers.expat
from datetime import date

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from .amounts import AmountError, to_minor
from .records import LineError, NotAStatement, Parsed, parse_date, parse_instant

_NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.\d{2}")
_BOOKED = ("BOOK", "Booked")


def parse(data: bytes) -> Parsed:
    """Read a camt.053 file (see the module doc); :class:`NotAStatement` for anything else."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise NotAStatement(
            f"XML with a DTD or entities is refused, never expanded ({type(exc).__name__})",
            reason="unsafe_xml",
        ) from None
    except ET.ParseError as exc:
        raise NotAStatement(f"not well-formed XML ({exc})") from None
    m = re.fullmatch(r"\{([^}]*)\}Document", root.tag)
    if m is None or not _NAMESPACE.fullmatch(m.group(1)):
        raise NotAStatement(
            f"XML root {root.tag!r} is not a camt.053 Document "
            "(namespace urn:iso:std:iso:20022:tech:xsd:camt.053.001.xx)"
        )
    ns = {"c": m.group(1)}
    stmts = root.findall("c:BkToCstmrStmt/c:Stmt", ns)
    if root.find("c:BkToCstmrStmt", ns) is None:
        raise NotAStatement("the camt.053 Document has no BkToCstmrStmt", field="BkToCstmrStmt")
    spans = _entry_spans(data)
    out = Parsed()
    entries = [entry for stmt in stmts for entry in stmt.findall("c:Ntry", ns)]
    if len(spans) != len(entries):  # Ntry elsewhere than under Stmt: not this standard's shape
        raise NotAStatement(f"{len(spans)} Ntry elements, {len(entries)} of them in a Stmt")
    froms: list[date] = []
    tos: list[date] = []
    for stmt in stmts:
        for name, into in (("FrDtTm", froms), ("ToDtTm", tos)):
            text = _text(stmt, f"c:FrToDt/c:{name}", ns)
            if text is not None:
                try:
                    into.append(_date_of(text, f"FrToDt/{name}"))
                except LineError as err:
                    raise NotAStatement(f"the period: {err}", field=err.field) from None
    for line_no, (entry, raw) in enumerate(zip(entries, spans, strict=True), start=1):
        try:
            _entry(out, entry, ns, line_no, raw)
        except LineError as err:
            out.refuse(line_no, raw, err)
    if froms and tos:
        out.period_from, out.period_to = min(froms), max(tos)
    return out


def _entry(out: Parsed, entry: ET.Element, ns: dict[str, str], line_no: int, raw: str) -> None:
    status = _text(entry, "c:Sts/c:Cd", ns) or _text(entry, "c:Sts", ns)
    if status is None:
        raise LineError("missing_field", "Sts", "the entry has no status (Sts)")
    if status not in _BOOKED:
        raise LineError("not_booked", "Sts", f"status {status!r}: not booked, no money moved yet")
    txs = entry.findall("c:NtryDtls/c:TxDtls", ns)
    if len(txs) > 1:
        raise LineError(
            "batch_entry", "TxDtls", f"one entry books {len(txs)} transactions (not split)"
        )
    tx = txs[0] if txs else None
    mark = _text(entry, "c:CdtDbtInd", ns)
    if mark is None:
        raise LineError("missing_field", "CdtDbtInd", "the entry has no CdtDbtInd")
    if mark not in ("CRDT", "DBIT"):
        raise LineError("bad_mark", "CdtDbtInd", f"CdtDbtInd {mark!r} is neither CRDT nor DBIT")
    value = _text(entry, "c:ValDt/c:Dt", ns) or _text(entry, "c:ValDt/c:DtTm", ns)
    if value is None:
        raise LineError("missing_field", "ValDt", "the entry has no value date (ValDt)")
    value_date = _date_of(value, "ValDt")
    booked_at = None
    booked = _text(entry, "c:BookgDt/c:DtTm", ns)
    if booked is not None:
        booked_at = parse_instant(booked, "BookgDt/DtTm")
    elif _text(entry, "c:BookgDt/c:Dt", ns) is not None:
        _date_of(_text(entry, "c:BookgDt/c:Dt", ns) or "", "BookgDt/Dt")  # checked, not stored
    amt = entry.find("c:Amt", ns)
    if amt is None or not (amt.text or "").strip():
        raise LineError("missing_field", "Amt", "the entry has no amount (Amt)")
    currency = amt.get("Ccy")
    if not currency:
        raise LineError("missing_field", "Amt/@Ccy", "the amount has no currency (Ccy)")
    try:
        minor = to_minor(amt.text or "", currency, signed=False, negate=mark == "DBIT")
    except AmountError as exc:
        raise LineError.of_amount(exc, "Amt") from None
    end_to_end = _text(tx, "c:Refs/c:EndToEndId", ns) if tx is not None else None
    if end_to_end == "NOTPROVIDED":
        end_to_end = None
    servicer = _text(entry, "c:AcctSvcrRef", ns)
    party = "c:RltdPties/c:CdtrAcct/c:Id" if mark == "DBIT" else "c:RltdPties/c:DbtrAcct/c:Id"
    counterparty = None
    if tx is not None:
        counterparty = _text(tx, f"{party}/c:IBAN", ns) or _text(tx, f"{party}/c:Othr/c:Id", ns)
    out.add(
        line_id=_text(entry, "c:NtryRef", ns) or servicer,
        line_no=line_no,
        raw=raw,
        value_date=value_date,
        booked_at=booked_at,
        amount_minor=minor,
        currency=currency,
        reference=end_to_end or servicer,
        counterparty=counterparty,
    )


def _text(elem: ET.Element | None, path: str, ns: dict[str, str]) -> str | None:
    """The stripped text at ``path`` under ``elem``; ``None`` where absent or empty."""
    if elem is None:
        return None
    found = elem.find(path, ns)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


_TIME = re.compile(r"T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")


def _date_of(text: str, field: str) -> date:
    """The day of an ISODate, or of an ISODateTime as written (the bank's own calendar day:
    a period's or a value date's day is the bank's, not UTC's)."""
    day = parse_date(text[:10], field)
    if len(text) > 10 and _TIME.fullmatch(text[10:]) is None:
        raise LineError("bad_date", field, f"{field} {text!r} is not an ISO date or date-time")
    return day


def _entry_spans(data: bytes) -> list[str]:
    """The raw text of every ``Ntry`` element, in document order, as read."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    encoding = "utf-8"
    spans: list[str] = []
    open_at: list[int] = []

    def xml_decl(_version: str | None, enc: str | None, _standalone: int) -> None:
        nonlocal encoding
        encoding = enc or "utf-8"

    def start(name: str, _attrs: dict[str, str]) -> None:
        if name.rsplit(" ", 1)[-1] == "Ntry":
            open_at.append(parser.CurrentByteIndex)

    def end(name: str) -> None:
        if name.rsplit(" ", 1)[-1] == "Ntry":
            begin = open_at.pop()
            stop = data.index(b">", parser.CurrentByteIndex) + 1
            spans.append(data[begin:stop].decode(encoding, "backslashreplace"))

    parser.XmlDeclHandler = xml_decl
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.Parse(data, True)
    return spans
