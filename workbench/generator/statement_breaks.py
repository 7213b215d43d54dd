"""Breaks planted in the provider's statements, one of each statement check per day, each with
its ground truth (``workbench generate --statements`` without ``--clean``).

Each break changes the clean statement (:mod:`.statements`) in one way, on a payout no other
break touches, so it sets off its own check only:

``STATEMENT_MISSING`` (``statement_missing``)
    a paid or confirmed payout's money-out line left off;
``STATEMENT_UNEXPECTED`` (``statement_unexpected``)
    a line of money out under a reference no payout has, to a destination no payout has;
``STATEMENT_AMOUNT_MISMATCH`` (``statement_amount_mismatch``)
    a payout's only line one minor unit more than its amount;
``STATEMENT_DUPLICATE`` (``statement_duplicate``)
    a payout's line booked a second time, under the same reference;
``MONEY_LEFT_AFTER_CANCEL`` (``money_left_after_cancel``)
    the return of a payout cancelled after it was paid left off;
``STATEMENT_RETURN_MISSING`` (``statement_return_missing``)
    the return of a payout cancelled after confirmation (revert booked) left off.

The truth names the payout's key event, the one the finding's evidence starts with: its
``payout.paid`` (else ``payout.confirmed``) for the first four, its ``payout.cancelled`` for the
last two. A ``STATEMENT_UNEXPECTED`` line belongs to no payout: its ``event_id`` (and subject) is
``statement_line:<line_id>``, as the finding names it.

Each day's breaks need payouts a short history may not have (a few per week, fewer paid ones
than the first four breaks use), so while the history is made :class:`StatementSites` adds each
day one payout paid then cancelled, one paid, confirmed, then cancelled with its revert booked,
and three paid and confirmed: ordinary stories of the platform, which break no rule.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from ..domain.events import Event
from ..domain.violations import STATEMENT_CHECK_CODES
from .statements import Line, Statements, Trail, provider_ref
from .truth import TruthRow

if TYPE_CHECKING:
    from .history import HistoryGenerator

#: The checks the breaks plant (every statement check), in the order they are planted each day.
PLANTED = STATEMENT_CHECK_CODES


class StatementSites:
    """Adds, each simulated day, the payout stories the breaks need (see the module doc), with
    random numbers of its own."""

    def __init__(self, gen: HistoryGenerator, seed: int) -> None:
        self.gen = gen
        self.rng = random.Random(seed)

    def plan_day(self, start: datetime) -> None:
        for story in ("cancel_after_paid", "revert_after_confirm", *("confirmed",) * 3):
            when = start + timedelta(hours=self.rng.uniform(2, 16))
            self.gen.at(when, self._begin, story)

    def _begin(self, story: str) -> None:
        g = self.gen
        w = g.platform.world
        cid = self.rng.choice(g.client_ids)
        if cid not in w.clients:
            return
        unit = 10**6  # USDT, the settlement currency payouts are in
        amount = self.rng.randint(20, 400) * unit
        if w.book.available(f"client:{cid}", "USDT") < amount + unit:
            return
        pid, _ = g.payout(f"client:{cid}", amount, lifecycle=False)
        ref = f"BR{self.rng.getrandbits(40):010X}"
        paid = timedelta(minutes=self.rng.uniform(10, 30))
        g.after(paid, self._step, pid, "pay", ref)
        if story == "cancel_after_paid":
            g.after(paid + timedelta(minutes=self.rng.uniform(5, 25)), self._step, pid, "cancel")
        elif story == "confirmed":
            g.after(paid + timedelta(minutes=self.rng.uniform(5, 25)), self._step, pid, "confirm")
        else:
            confirm = paid + timedelta(minutes=self.rng.uniform(5, 25))
            g.after(confirm, self._step, pid, "confirm")
            g.after(
                confirm + timedelta(minutes=self.rng.uniform(30, 120)), self._step, pid, "revert"
            )

    def _step(self, pid: str, step: str, ref: str = "") -> None:
        p, now = self.gen.platform, self.gen.now
        if step == "pay":
            p.mark_payout_paid(pid, ref, now)
        elif step == "confirm":
            p.confirm_payout(pid, now)
        elif step == "cancel":
            p.cancel_payout(pid, "cancelled after payment: the bank returned the transfer", now)
        else:
            p.cancel_payout(pid, "cancelled after confirmation: funds returned by the bank", now)


@dataclass
class _Planted:
    check: str
    trail: Trail | None
    line: Line | None  # the unexpected line
    detail: str


class BreakPlanter:
    """Plants the breaks into clean statement lines; :attr:`truth` once the lines have ids."""

    def __init__(self, st: Statements, seed: int) -> None:
        self.st = st
        self.rng = random.Random(seed)
        self.used: set[str] = set()
        self.planted: list[_Planted] = []
        self.refs = {t.bank_ref for t in st.trails if t.bank_ref}
        self.destinations = {t.destination for t in st.trails}

    def plant(self) -> None:
        day = self.st.first_day
        while day <= self.st.last_day:
            for check in PLANTED:
                getattr(self, f"_{check.lower()}")(day)
            day += timedelta(days=1)

    def truth(self) -> list[TruthRow]:
        rows = []
        for p in self.planted:
            variant = p.check.lower()
            if p.line is not None:
                name = f"statement_line:{p.line.line_id}"
                rows.append(TruthRow(p.check, name, name, variant, p.detail))
                continue
            assert p.trail is not None
            key = _key_event(p.check, p.trail)
            rows.append(
                TruthRow(p.check, key.event_id, f"payout:{p.trail.payout_id}", variant, p.detail)
            )
        return rows

    # ------------------------------------------------------------------ choosing a payout
    def _lines(self, t: Trail, *, out: bool) -> list[Line]:
        return [
            x for x in self.st.lines if x.payout_id == t.payout_id and (x.amount_minor < 0) == out
        ]

    def _pick(self, day: date, fits: Callable[[Trail], bool]) -> Trail | None:
        found = [
            t
            for t in self.st.trails
            if t.payout_id not in self.used and fits(t) and _day_of(t, t.sent) == day
        ]
        if not found:
            return None
        t = self.rng.choice(found)
        self.used.add(t.payout_id)
        return t

    def _sent_by_ref(self, t: Trail) -> bool:
        """Paid, still paid or confirmed, its money out one line under its bank_ref."""
        outs = self._lines(t, out=True)
        return (
            t.status in ("paid", "confirmed")
            and t.bank_ref is not None
            and len(outs) == 1
            and outs[0].reference == t.bank_ref
        )

    # ------------------------------------------------------------------------- the breaks
    def _statement_missing(self, day: date) -> None:
        t = self._pick(day, self._sent_by_ref)
        if t is not None:
            for x in self._lines(t, out=True):
                self.st.lines.remove(x)
            self._record("STATEMENT_MISSING", t, "its money-out line left off the statement")

    def _statement_unexpected(self, day: date) -> None:
        unit = 10**6
        ref = provider_ref(self.rng)
        while ref in self.refs:
            ref = provider_ref(self.rng)
        dest = f"TRC20:T{self.rng.getrandbits(16):04x}****{self.rng.getrandbits(16):04x}"
        while dest in self.destinations:
            dest = f"TRC20:T{self.rng.getrandbits(16):04x}****{self.rng.getrandbits(16):04x}"
        at = datetime.combine(day, time(0, 0), tzinfo=UTC) + timedelta(
            seconds=self.rng.randint(3600, 20 * 3600)
        )
        line = Line(at, -self.rng.randint(10, 500) * unit, "USDT", ref, dest, None)
        self.st.lines.append(line)
        self.planted.append(
            _Planted("STATEMENT_UNEXPECTED", None, line, "money out that no payout explains")
        )

    def _statement_amount_mismatch(self, day: date) -> None:
        t = self._pick(day, self._sent_by_ref)
        if t is not None:
            self._lines(t, out=True)[0].amount_minor -= 1
            self._record(
                "STATEMENT_AMOUNT_MISMATCH", t, "one minor unit more left than the payout's amount"
            )

    def _statement_duplicate(self, day: date) -> None:
        t = self._pick(day, self._sent_by_ref)
        if t is not None:
            first = self._lines(t, out=True)[0]
            again = first.booked_at + timedelta(seconds=self.rng.randint(600, 6 * 3600))
            self.st.lines.append(
                Line(again, first.amount_minor, first.currency, first.reference,
                     first.counterparty, t.payout_id)
            )  # fmt: skip
            self._record("STATEMENT_DUPLICATE", t, "its money-out line booked twice")

    def _drop_return(self, check: str, day: date, cancelled_from: str, detail: str) -> None:
        def fits(t: Trail) -> bool:
            return (
                t.returns
                and t.cancelled_from == cancelled_from
                and bool(self._lines(t, out=False))
                and _day_of(t, t.ended) == day
            )

        found = [t for t in self.st.trails if t.payout_id not in self.used and fits(t)]
        if not found:
            return
        t = self.rng.choice(found)
        self.used.add(t.payout_id)
        for x in self._lines(t, out=False):
            self.st.lines.remove(x)
        self._record(check, t, detail)

    def _money_left_after_cancel(self, day: date) -> None:
        self._drop_return(
            "MONEY_LEFT_AFTER_CANCEL", day, "paid", "cancelled after it was paid; no return"
        )

    def _statement_return_missing(self, day: date) -> None:
        self._drop_return(
            "STATEMENT_RETURN_MISSING", day, "confirmed", "reverted after confirmation; no return"
        )

    def _record(self, check: str, t: Trail, detail: str) -> None:
        self.planted.append(_Planted(check, t, None, detail))


def _day_of(t: Trail, e: Event | None) -> date | None:
    return None if e is None else e.occurred_at.date()


def _key_event(check: str, t: Trail) -> Event:
    """The event a finding of ``check`` on ``t`` names first."""
    if check in ("MONEY_LEFT_AFTER_CANCEL", "STATEMENT_RETURN_MISSING"):
        assert t.ended is not None
        return t.ended
    sent = t.sent
    assert sent is not None
    return sent
