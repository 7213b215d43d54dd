"""A SWIFT MT940 customer statement: one line per ``:61:`` statement line (with the ``:86:``
that follows it), in one or more statements (each from ``:20:``).

The fields of ``:61:`` and of the balances are split by the grammar of the ``mt-940`` package
(:class:`mt940.tags.Statement`, :class:`mt940.tags.FinalOpeningBalance`): its regular
expressions, kept up by that project against many banks' files. Its models are not used: they
turn the amount into a ``Decimal`` without the currency's exponent, read a reversal of a credit
as positive by default, and stop at the first field that does not match, so one bad line would
lose the file. Here every value is taken as the text the grammar found and checked like the
other formats: the amount exactly (comma decimals, :mod:`.amounts`), each line on its own (a
line that does not match is quarantined as ``bad_line``, the rest are read). Where the grammar
would cut a reference longer than the standard's 16 (customer) or 23 (bank) characters and call
the rest "supplementary details", the line is quarantined instead: a cut reference would match
the wrong payout.

Mapping (what an analyst expects of a payout account's statement):

* amount: the ``:61:`` amount in the currency of the statement's opening balance (``:60F:``,
  or ``:60M:``), signed by the mark: ``D`` (debit, money out) and ``RC`` (reversal of a credit)
  negative, ``C`` (credit, a return) and ``RD`` (reversal of a debit, money back) positive;
* value date: ``YYMMDD`` read as 20YY; the entry date (``MMDD``) is checked but not stored
  (``booked_at`` stays NULL: MT940 gives no time);
* reference: the customer reference (before ``//``; ``NONREF`` counts as none); line id: the
  bank reference (after ``//``), else derived from the content (see records.derived_id);
* counterparty: from ``:86:``, the account after ``/CNTP/`` (SWIFT structured) or after ``?31``
  (German structured), else none;
* period: the statements' opening (``:60F:``) to closing (``:62F:``/``:62M:``) balance dates.

A SWIFT envelope (``{1:...}{2:...}{4:`` ... ``-}``) is skipped; any other text outside a field
makes the file not a statement (nothing is silently dropped). ``line_no`` is the physical line
of the ``:61:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from mt940 import tags as mt_tags

from .amounts import AmountError, to_minor
from .records import LineError, NotAStatement, Parsed, parse_date

_LINE = mt_tags.Statement().re
_BALANCE = mt_tags.FinalOpeningBalance().re
_TAG = re.compile(r":(?P<tag>[0-9]{2}[A-Z]?|NS):(?P<value>.*)", re.S)
_BLOCK = r"\{[0-9A-Z]+:(?:[^{}]|\{[^{}]*\})*\}"
_ENVELOPE = re.compile(rf"(?:{_BLOCK})*\{{4:")
_TRAILER = re.compile(rf"-?\}}?(?:{_BLOCK})*\}}?")
_MARKS = {"D": True, "RC": True, "C": False, "RD": False}
_COUNTERPARTY = (re.compile(r"/CNTP/([^/]+)/"), re.compile(r"\?31([^?]+)"))


@dataclass
class _Field:
    tag: str
    value: str
    line_no: int
    raw: list[str] = field(default_factory=list)


@dataclass
class _Statement:
    currency: str | None = None
    opened: date | None = None
    closed: date | None = None


def looks_like(text: str) -> bool:
    """Whether ``text`` starts like an MT940 file: an envelope or a ``:20:`` field."""
    head = text.lstrip("\ufeff \t\r\n")
    return head.startswith(":20:") or bool(_ENVELOPE.match(head))


def parse(data: bytes) -> Parsed:
    """Read an MT940 file (see the module doc); :class:`NotAStatement` for anything else."""
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    fields = _fields(text)
    if not any(f.tag == "20" for f in fields):
        raise NotAStatement("no :20: field: not an MT940 statement", field=":20:")
    out = Parsed()
    opens: list[date] = []
    closes: list[date] = []
    stmt = _Statement()
    pending: list[_Field] = []
    for f in fields:
        if f.tag == "86" and len(pending) == 1:
            pending.append(f)
            continue
        if pending:
            _line(out, stmt, pending)
            pending = []
        if f.tag == "20":
            stmt = _Statement()
        elif f.tag in ("60F", "60M", "60"):
            stmt.currency, stmt.opened = _balance(f)
            if f.tag == "60F":
                opens.append(stmt.opened)
        elif f.tag in ("62F", "62M", "62"):
            stmt.closed = _balance(f)[1]
            closes.append(stmt.closed)
        elif f.tag == "61":
            pending = [f]
    if pending:
        _line(out, stmt, pending)
    if opens and closes:
        out.period_from, out.period_to = min(opens), max(closes)
    return out


def _fields(text: str) -> list[_Field]:
    """The file's fields in order, each with its value (continuation lines joined with a line
    break), the physical line it starts on and its raw lines."""
    fields: list[_Field] = []
    for no, physical in enumerate(text.split("\n"), start=1):
        line = physical.rstrip("\r")
        envelope = _ENVELOPE.match(line)
        if envelope:
            line = line[envelope.end() :]
            if not line.strip():
                continue
        if line.strip() and _TRAILER.fullmatch(line.strip()):
            continue
        m = _TAG.fullmatch(line)
        if m:
            fields.append(_Field(m.group("tag"), m.group("value"), no, [line]))
        elif fields and fields[-1].tag in ("61", "86", "NS"):
            fields[-1].value += "\n" + line
            fields[-1].raw.append(line)
        elif line.strip():
            shown = line.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise NotAStatement(f"line {no}: {shown[:60]!r} is outside any MT940 field")
    return fields


def _balance(f: _Field) -> tuple[str, date]:
    """A balance's currency and date (as the statement's currency and period)."""
    m = _BALANCE.match(f.value)
    if m is None:
        raise NotAStatement(
            f"line {f.line_no}: :{f.tag}:{f.value!r} is not a balance", field=f":{f.tag}:"
        )
    try:
        when = parse_date(f"20{m['year']}-{m['month']}-{m['day']}", f":{f.tag}:")
    except LineError as err:
        raise NotAStatement(f"line {f.line_no}: {err}", field=f":{f.tag}:") from None
    return m["currency"], when


def _line(out: Parsed, stmt: _Statement, parts: list[_Field]) -> None:
    """One ``:61:`` (and its ``:86:``): stored or quarantined."""
    first = parts[0]
    raw = "\n".join(line for p in parts for line in p.raw)
    if any("\udc80" <= ch <= "\udcff" for ch in raw):
        shown = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        out.refuse(first.line_no, shown, LineError("bad_encoding", None, "not UTF-8 text"))
        return
    try:
        _read(out, stmt, parts, raw)
    except LineError as err:
        out.refuse(first.line_no, raw, err)


def _read(out: Parsed, stmt: _Statement, parts: list[_Field], raw: str) -> None:
    m = _LINE.match(parts[0].value)
    if m is None:
        raise LineError("bad_line", ":61:", "not a :61: statement line (date, mark, amount, ...)")
    g = m.groupdict()
    first_line = parts[0].value.split("\n", 1)[0]
    read_to = (
        m.end("bank_reference") if g["bank_reference"] is not None else m.end("customer_reference")
    )
    if read_to < len(first_line):
        # the grammar would cut an over-long reference and call the rest supplementary details
        raise LineError(
            "bad_line",
            ":61:",
            f"{first_line[read_to:]!r} after the references: a customer reference past 16 "
            "characters or a bank reference past 23 (never cut)",
        )
    value_date = parse_date(f"20{g['year']}-{g['month']}-{g['day']}", "value date")
    _check_entry_date(g["entry_month"], g["entry_day"], value_date)
    mark = g["status"]
    if mark not in _MARKS:
        raise LineError("bad_mark", "mark", f"mark {mark!r} is none of D, C, RD, RC")
    if stmt.currency is None:
        raise LineError("missing_field", "currency", "no :60F: opening balance gives the currency")
    try:
        minor = to_minor(g["amount"], stmt.currency, decimal=",", signed=False, negate=_MARKS[mark])
    except AmountError as exc:
        raise LineError.of_amount(exc, "amount") from None
    reference = (g["customer_reference"] or "").strip()
    details = parts[1].value if len(parts) > 1 else ""
    out.add(
        line_id=g["bank_reference"],
        line_no=parts[0].line_no,
        raw=raw,
        value_date=value_date,
        booked_at=None,
        amount_minor=minor,
        currency=stmt.currency,
        reference=None if reference.upper() == "NONREF" else reference,
        counterparty=_counterparty(details),
    )


def _check_entry_date(month: str | None, day: str | None, value_date: date) -> None:
    """An entry date (MMDD) must be a day of the value date's year or a neighbour (a booking
    across New Year); blanks mean none."""
    if not (month or "").strip() and not (day or "").strip():
        return
    for year in (value_date.year, value_date.year - 1, value_date.year + 1):
        try:
            date(year, int(month or "0"), int(day or "0"))
            return
        except ValueError:
            continue
    raise LineError("bad_date", "entry date", f"entry date {month}{day} (MMDD) is not a day")


def _counterparty(details: str) -> str | None:
    flat = details.replace("\n", "")
    for pattern in _COUNTERPARTY:
        m = pattern.search(flat)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return None
