"""The matching rules' names and the one parameter they take: the value-date window.

A statement line is matched to a payout by the first rule that applies (the SQL is one model,
``workbench/models/audit/statement_matches.sql``; ``docs/audit.md`` says why each rule is what it
is). The window is a parameter of the models (``statement_window_days``, default
:data:`WINDOW_DAYS`), so the audit, :func:`workbench.statements.matching.match_statements` and a
notebook judge with the same number.
"""

from __future__ import annotations

from typing import Final

#: Days after the payout was sent (its ``payout.paid``, else its ``payout.confirmed``, as a UTC
#: day) within which a line without a usable reference may carry its money: the provider books
#: most transfers the same day, some the next, a few after a weekend.
WINDOW_DAYS: Final = 3

#: Every rule a match can have, in the order they are tried, with what it means.
RULES: Final[dict[str, str]] = {
    "reference": "money out whose reference is the payout's bank_ref (one line, or several that "
    "do not sum to the payout: linked, and the difference is a finding)",
    "reference_parts": "several lines of money out with the payout's bank_ref that sum exactly "
    "to its amount: one transfer in parts",
    "amount_counterparty": "money out without a usable reference, of exactly the payout's amount "
    "and currency, to its destination_masked, with a value date from the day it was sent to "
    "the window's end; the only payout that fits and the only line that fits it",
    "return": "money coming back whose reference is the payout's bank_ref or the reference of "
    "its money out",
}

#: The statuses of a line in the matching.
STATUSES: Final = ("matched", "ambiguous", "unmatched")


def window_days(value: object) -> int:
    """``value`` as a window in whole days, refused unless a non-negative integer (it is written
    into SQL, and a window of ``True`` or ``2.5`` days would be a silent guess)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"the statement window must be a whole number of days >= 0, not {value!r}")
    return value
