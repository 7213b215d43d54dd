"""What a statement parser hands the importer: parsed lines and quarantined ones, and the rules
every format shares (dates, the line id of a line that has none, what "the same line" means).

Why one place: the three formats differ in layout, not in what a statement line is. A line is
stored only with a value date, a catalog currency, an exact amount and something to identify it
(its own line id, else a payment reference); anything less is quarantined with its raw text, the
field at fault and the reason, so every line of a file is accounted for.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from .amounts import AmountError

#: The reasons a line (or a whole file, at line 0) is quarantined.
REASONS = {
    "bad_date": "a date or time that is not one, or not in the format's form",
    "bad_amount": "an amount that is not a number in the layout's form",
    "too_many_decimals": "more decimals than the currency has (never rounded)",
    "unknown_currency": "a currency the catalog does not know",
    "missing_reference": "neither a line id nor a payment reference to identify the line",
    "missing_field": "a field the line needs is empty or absent",
    "bad_mark": "a debit/credit mark that is none of the format's",
    "bad_line": "a line that does not have the format's shape",
    "bad_encoding": "bytes that are not text in the file's encoding",
    "not_booked": "a camt.053 entry whose status is not booked (pending or information)",
    "batch_entry": "a camt.053 entry booking several transactions at once (not split)",
    "not_a_statement": "the whole file: not a statement of the format it was read as",
    "unsafe_xml": "the whole file: XML with a DTD or entities (refused, never expanded)",
}


class LineError(ValueError):
    """A line cannot be stored: the quarantine ``reason``, the ``field`` at fault, a sentence."""

    def __init__(self, reason: str, field: str | None, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.field = field
        self.detail = detail

    @classmethod
    def of_amount(cls, exc: AmountError, field: str) -> LineError:
        return cls(
            exc.reason, "currency" if exc.reason == "unknown_currency" else field, exc.detail
        )


class NotAStatement(ValueError):
    """The whole file cannot be read as a statement of its format: it is quarantined as one
    record at line 0 (``not_a_statement`` or ``unsafe_xml``), with the field at fault if any."""

    def __init__(
        self, detail: str, *, reason: str = "not_a_statement", field: str | None = None
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.field = field
        self.detail = detail
        self.raw: str | None = None  # the file's text, set by the importer


@dataclass(frozen=True)
class Line:
    """A statement line as stored (see ``statement_lines`` in :mod:`.schema`)."""

    line_id: str
    line_no: int
    value_date: date
    booked_at: datetime | None  # aware, UTC
    amount_minor: int
    currency: str
    reference: str | None
    counterparty: str | None
    raw: str

    def content(self) -> tuple[object, ...]:
        """The stored fields but the line id, the raw text and the position (see
        :func:`same_content`)."""
        return (
            self.value_date,
            self.booked_at,
            self.amount_minor,
            self.currency,
            self.reference,
            self.counterparty,
        )


def same_content(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Whether two lines with one id (:meth:`Line.content`) are the same line: every stored
    field equal but the raw text and the position, so one line in a CSV and a camt.053 of the
    same day (or in a daily and a weekly statement) is a duplicate, not a conflict. A booking
    time only one of them has is no difference: MT940 (and a camt.053 ``BookgDt/Dt``) carries
    none, so that line read from an MT940 and from a camt.053 is one line."""
    if a[1] is None or b[1] is None:
        return a[:1] + a[2:] == b[:1] + b[2:]
    return a == b


@dataclass(frozen=True)
class Quarantined:
    """A line (line_no 0: the whole file) that could not be read, and why."""

    line_no: int
    raw: str
    field: str | None
    reason: str
    detail: str


@dataclass
class Parsed:
    """A parser's answer for one file: its lines in file order, what it quarantined, and the
    period the statement says it covers (``None`` where it does not say: then the importer
    takes the lines' value dates)."""

    lines: list[Line] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    period_from: date | None = None
    period_to: date | None = None
    _derived: Counter[str] = field(default_factory=Counter)

    def refuse(self, line_no: int, raw: str, err: LineError) -> None:
        self.quarantined.append(Quarantined(line_no, raw, err.field, err.reason, err.detail))

    def add(
        self,
        *,
        line_id: str | None,
        line_no: int,
        raw: str,
        value_date: date,
        booked_at: datetime | None,
        amount_minor: int,
        currency: str,
        reference: str | None,
        counterparty: str | None,
    ) -> None:
        """Store a line, or quarantine it as ``missing_reference`` when it has neither a line id
        nor a payment reference. A line with a reference but no id of its own gets a derived id
        (:func:`derived_id`); one with an id but no reference is stored as it is (the matcher
        goes by amount and counterparty)."""
        line_id, reference, counterparty = _text(line_id), _text(reference), _text(counterparty)
        if line_id is None and reference is None:
            self.refuse(
                line_no,
                raw,
                LineError(
                    "missing_reference",
                    "line_id",
                    "the line has neither a line id nor a payment reference to identify it",
                ),
            )
            return
        if line_id is None:
            key = _content_key(
                value_date, booked_at, amount_minor, currency, reference, counterparty
            )
            self._derived[key] += 1
            line_id = derived_id(key, self._derived[key])
        self.lines.append(
            Line(
                line_id,
                line_no,
                value_date,
                booked_at,
                amount_minor,
                currency,
                reference,
                counterparty,
                raw,
            )
        )


def _text(value: str | None) -> str | None:
    """A text field without its surrounding blanks; empty is absent."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def _content_key(*fields: object) -> str:
    text = "\x1f".join("" if f is None else str(f) for f in fields)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def derived_id(key: str, occurrence: int) -> str:
    """The id of a line that has none of its own: ``derived:<16 hex of its content>:<n>``, the
    n-th line of that content in its file. Deterministic, so the same line in an overlapping
    statement is a duplicate; counted, so two equal transfers in one file stay two lines."""
    return f"derived:{key}:{occurrence}"


# --- dates ------------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})?"
)


def parse_date(text: str, field: str, fmt: str = "%Y-%m-%d") -> date:
    """A calendar date written exactly in ``fmt`` (``2026-11-05``; ``2026-11-5`` is refused,
    as is the 31st of November), else :class:`LineError` ``bad_date``."""
    try:
        value = datetime.strptime(text, fmt).date()
    except ValueError:
        value = None
    if value is None or value.strftime(fmt) != text:
        raise LineError("bad_date", field, f"{field} {text!r} is not a date like {_example(fmt)}")
    return value


def _example(fmt: str) -> str:
    return date(2026, 11, 5).strftime(fmt)


def parse_instant(text: str, field: str) -> datetime:
    """An RFC 3339 time with its UTC offset (``2026-11-05T14:03:00Z``,
    ``2026-11-05T15:03:00.25+01:00``) as an aware UTC datetime. Refused (``bad_date``): no
    offset (the instant would be a guess), or finer than a microsecond (DuckDB would cut it)."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise LineError(
            "bad_date", field, f"{field} {text!r} is not an RFC 3339 time like 2026-11-05T14:03:00Z"
        )
    if m.group("zone") is None:
        raise LineError(
            "bad_date", field, f"{field} {text!r} has no UTC offset (Z or +hh:mm): which instant?"
        )
    frac = m.group("frac") or ""
    if len(frac) > 6:
        raise LineError(
            "bad_date", field, f"{field} {text!r} is finer than a microsecond (never cut)"
        )
    zone = "+00:00" if m.group("zone") in "Zz" else m.group("zone")
    try:
        value = datetime.fromisoformat(
            f"{m.group('date')}T{m.group('time')}{'.' + frac.ljust(6, '0') if frac else ''}{zone}"
        )
    except ValueError:
        raise LineError("bad_date", field, f"{field} {text!r} is not a valid time") from None
    return value.astimezone(UTC)
