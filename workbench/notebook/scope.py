"""What a notebook is pointed at: an account, a day range, a trader, checks and severities, from
its parameters (``None``: all), checked once and applied to every frame it shows.

A report run gives them as ``-p account=client:cl-01 -p day_from=2026-11-02``; a value that
cannot mean anything (a day that is not ``YYYY-MM-DD``, an unknown check or severity, an account
without its kind) is an error naming the parameter, never an empty report that looks clean.
Filters narrow together (an account *and* a trader: what concerns both).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

from .breaks import SEVERITIES
from .database import connect, read

#: The kinds of account the ledger knows (``kind:id``).
ACCOUNT_KINDS: tuple[str, ...] = ("client", "trader", "platform")


def as_day(value: date | str | None, name: str) -> date | None:
    """A parameter's day: a date, or text ``YYYY-MM-DD``; ``None`` stays ``None``."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{name}={value!r}: a day is YYYY-MM-DD (UTC)") from None


def _names(value: str | Sequence[str] | None, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    out = tuple(str(v).strip() for v in items if str(v).strip())
    if not out:
        raise ValueError(f"{name}={value!r}: give a name, a list of names, or None for all")
    return out


@dataclass(frozen=True)
class Scope:
    """The filters a notebook applies (``None``: no filter on that)."""

    account: str | None = None
    day_from: date | None = None
    day_to: date | None = None
    trader: str | None = None
    checks: tuple[str, ...] | None = None
    severities: tuple[str, ...] | None = None

    @property
    def everything(self) -> bool:
        return all(
            v is None
            for v in (
                self.account,
                self.day_from,
                self.day_to,
                self.trader,
                self.checks,
                self.severities,
            )
        )

    @property
    def accounts(self) -> tuple[str, ...]:
        """The accounts the scope names (its account, its trader's account)."""
        out = [self.account] if self.account else []
        if self.trader:
            out.append(f"trader:{self.trader}")
        return tuple(out)

    def __str__(self) -> str:
        if self.everything:
            return "everything: all accounts, days, traders, checks and severities"
        parts = []
        if self.account:
            parts.append(f"account {self.account}")
        if self.trader:
            parts.append(f"trader {self.trader}")
        if self.day_from or self.day_to:
            first = self.day_from.isoformat() if self.day_from else "the start"
            last = self.day_to.isoformat() if self.day_to else "the end"
            parts.append(f"days {first} to {last} (UTC)")
        if self.checks:
            parts.append("check " + ", ".join(self.checks))
        if self.severities:
            parts.append("severity " + ", ".join(self.severities))
        return "only " + "; ".join(parts)

    def verify(self, db: str | Path) -> Scope:
        """This scope, after checking that its account and trader exist in ``db`` (a typo must
        not give a clean, empty report); raises :class:`LookupError` naming what is missing."""
        if not self.accounts:
            return self
        con = connect(db)
        try:
            known = read(con, KNOWN_ACCOUNTS_SQL, {"accounts": list(self.accounts)})
        finally:
            con.close()
        missing = sorted(set(self.accounts) - set(known["account"]))
        if missing:
            raise LookupError(
                f"{db}: no account {', '.join(missing)} (not a client, trader or ledger account "
                "there)"
            )
        return self

    def _days(self, col: pl.Expr) -> pl.Expr:
        keep = pl.lit(True)
        if self.day_from is not None:
            keep = keep & (col >= self.day_from)
        if self.day_to is not None:
            keep = keep & (col <= self.day_to)
        return keep.fill_null(False)

    def reconciliation(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Rows of a reconciliation (``account``, ``day``) in scope (checks and severities do not
        apply to it)."""
        keep = self._days(pl.col("day"))
        for account in self.accounts:
            keep = keep & (pl.col("account") == account)
        return frame.filter(keep)

    def ratings(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Ratings (``trader_id``, ``as_of``) in scope: the trader's (or the account's, when it is
        a trader's; a client account has none), published within the days."""
        keep = self._days(pl.col("as_of").dt.convert_time_zone("UTC").dt.date())
        for account in self.accounts:
            kind, _, who = account.partition(":")
            keep = keep & (pl.col("trader_id") == who if kind == "trader" else pl.lit(False))
        return frame.filter(keep)

    def reviews(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Reviews (a frame from :func:`workbench.audit.review_times`) that started within the
        days (an account or trader does not narrow them: a review is the order's)."""
        return frame.filter(self._days(pl.col("started_at").dt.convert_time_zone("UTC").dt.date()))

    def assignments(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Judged assignments (:func:`workbench.audit.policy.judged_assignments`: ``day``,
        ``trader_id``, ``pick_id``) within the days and, for a trader's account, those it was
        given or was the pick of (a client's account does not narrow them)."""
        keep = self._days(pl.col("day"))
        for account in self.accounts:
            kind, _, who = account.partition(":")
            if kind == "trader":
                keep = keep & ((pl.col("trader_id") == who) | (pl.col("pick_id") == who))
        return frame.filter(keep)

    def findings(self, db: str | Path, timed: pl.DataFrame) -> pl.DataFrame:
        """Findings (a frame from :func:`.breaks.with_time`) in scope: of the checks and
        severities, whose offending event's day is within the days (unknown days are left out
        of a day range), and that concern the account and trader (:func:`subject_accounts`)."""
        keep = pl.lit(True)
        if self.checks is not None:
            keep = keep & pl.col("check").is_in(list(self.checks))
        if self.severities is not None:
            keep = keep & pl.col("severity").is_in(list(self.severities))
        if self.day_from is not None or self.day_to is not None:
            keep = keep & self._days(pl.col("day"))
        out = timed.filter(keep)
        if self.accounts and out.height:
            related = subject_accounts(db, out["subject"].unique().to_list())
            for account in self.accounts:
                subjects = related.filter(pl.col("account") == account)["subject"]
                out = out.filter(pl.col("subject").is_in(subjects.implode()))
        return out


def scope(
    account: str | None = None,
    day_from: date | str | None = None,
    day_to: date | str | None = None,
    trader: str | None = None,
    check: str | Sequence[str] | None = None,
    severity: str | Sequence[str] | None = None,
) -> Scope:
    """A :class:`Scope` from a notebook's parameters, checked: ``account`` is ``kind:id``
    (``client:cl-01``); ``trader`` an id, with or without ``trader:``; days ``YYYY-MM-DD``
    (inclusive, UTC), not reversed; ``check`` one check code or a list (the audit's codes);
    ``severity`` one of ``high``, ``medium``, ``low`` or a list."""
    if account is not None:
        account = str(account).strip()
        kind, sep, who = account.partition(":")
        if not sep or not who or kind not in ACCOUNT_KINDS:
            raise ValueError(
                f"account={account!r}: an account is KIND:ID with KIND one of "
                f"{', '.join(ACCOUNT_KINDS)} (e.g. client:cl-01)"
            )
    if trader is not None:
        trader = str(trader).strip().removeprefix("trader:")
        if not trader:
            raise ValueError("trader='': give a trader id (e.g. tr-01) or None for all")
    first, last = as_day(day_from, "day_from"), as_day(day_to, "day_to")
    if first is not None and last is not None and first > last:
        raise ValueError(f"day_from={first} is after day_to={last}")
    checks = _names(check, "check")
    if checks is not None:
        from ..models import severity as known_checks

        known = known_checks()
        checks = tuple(c.upper() for c in checks)
        unknown = sorted(set(checks) - set(known))
        if unknown:
            raise ValueError(
                f"check={check!r}: no check {', '.join(unknown)}; the checks are "
                f"{', '.join(sorted(known))}"
            )
    severities = _names(severity, "severity")
    if severities is not None:
        severities = tuple(s.lower() for s in severities)
        unknown = sorted(set(severities) - set(SEVERITIES))
        if unknown:
            raise ValueError(
                f"severity={severity!r}: no severity {', '.join(unknown)}; "
                f"the severities are {', '.join(SEVERITIES)}"
            )
    return Scope(account, first, last, trader, checks, severities)


KNOWN_ACCOUNTS_SQL = """
SELECT DISTINCT account FROM (
    SELECT 'client:' || client_id AS account FROM clients
    UNION ALL SELECT 'trader:' || trader_id FROM traders
    UNION ALL SELECT from_account FROM ledger_postings
    UNION ALL SELECT to_account FROM ledger_postings
    UNION ALL SELECT owner FROM payouts
)
WHERE account IN (SELECT unnest($accounts::VARCHAR[]))
"""

SUBJECT_ACCOUNTS_SQL = """
WITH s AS (
    SELECT subject, split_part(subject, ':', 1) AS kind,
           substr(subject, strpos(subject, ':') + 1) AS id
    FROM wanted
)
SELECT subject, 'client:' || id AS account FROM s WHERE kind = 'client'
UNION SELECT subject, 'trader:' || id FROM s WHERE kind IN ('trader', 'trader_rating')
UNION SELECT s.subject, p.owner FROM s JOIN payouts p ON p.payout_id = s.id WHERE kind = 'payout'
UNION SELECT s.subject, 'client:' || o.client_id
      FROM s JOIN payment_orders o ON o.order_id = s.id WHERE kind = 'payment_order'
UNION SELECT s.subject, 'trader:' || a.trader_id
      FROM s JOIN order_attempts a ON a.order_id = s.id WHERE kind = 'payment_order'
UNION SELECT s.subject, 'trader:' || r.trader_id
      FROM s JOIN receipts r ON r.receipt_id = s.id WHERE kind = 'receipt'
UNION SELECT s.subject, 'client:' || o.client_id
      FROM s JOIN receipts r ON r.receipt_id = s.id JOIN payment_orders o ON o.order_id = r.order_id
      WHERE kind = 'receipt'
UNION SELECT s.subject, x.account
      FROM s JOIN (SELECT plan_id, from_account AS account FROM ledger_postings
                   UNION SELECT plan_id, to_account FROM ledger_postings) x ON x.plan_id = s.id
      WHERE kind = 'ledger_plan'
ORDER BY subject, account
"""


def subject_accounts(db: str | Path, subjects: Sequence[str]) -> pl.DataFrame:
    """Which accounts each finding subject concerns (``subject``, ``account``): a client or
    trader itself (a trader's ratings too), a payout's owner, an order's client and every
    trader it was assigned to, a receipt's trader and its order's client, the accounts a
    ledger plan posts to."""
    wanted = pl.DataFrame({"subject": sorted(set(subjects))}, schema={"subject": pl.String})
    con = connect(db)
    try:
        con.register("wanted", wanted.to_arrow())
        return read(con, SUBJECT_ACCOUNTS_SQL)
    finally:
        con.close()
