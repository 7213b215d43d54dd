"""Violations: facts that broke a rule of the catalog.

An event that is illegal where it stands is still a fact, so appliers never raise and never drop
it: they apply it and attach a :class:`Violation` that names the event. The codes are the audit's
check codes, so a violation found while folding is already a finding in the audit's vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MALFORMED_EVENT: Final = "MALFORMED_EVENT"
CONFLICTING_DUPLICATE: Final = "CONFLICTING_DUPLICATE"
SEQUENCE_GAP: Final = "SEQUENCE_GAP"
INVALID_TRANSITION: Final = "INVALID_TRANSITION"
LEDGER_PLAN_MISMATCH: Final = "LEDGER_PLAN_MISMATCH"
NEGATIVE_AVAILABLE: Final = "NEGATIVE_AVAILABLE"
TRADER_LEDGER_DRIFT: Final = "TRADER_LEDGER_DRIFT"
#: An event whose ``occurred_at`` passes its ``recorded_at`` by more than the tolerance, or with
#: a timestamp outside the platform's era (:mod:`.clock`).
CLOCK_SKEW: Final = "CLOCK_SKEW"
#: A summed money figure (a trader's deposit balance, held or available; an account's own, held
#: or available) whose exact value left the int64 range: its BIGINT column holds NULL meanwhile.
AMOUNT_OVERFLOW: Final = "AMOUNT_OVERFLOW"

#: The checks that compare the payout provider's statements with the payouts (issue 18,
#: ``workbench/statements/``): the audit runs them once statement lines are imported, the
#: generator plants them with ``--statements``.
STATEMENT_CHECK_CODES: Final[tuple[str, ...]] = (
    "STATEMENT_MISSING",
    "STATEMENT_UNEXPECTED",
    "STATEMENT_AMOUNT_MISMATCH",
    "STATEMENT_DUPLICATE",
    "MONEY_LEFT_AFTER_CANCEL",
    "STATEMENT_RETURN_MISSING",
)

#: Every check code of the audit (the audit issue's table), in its order.
CHECK_CODES: Final[tuple[str, ...]] = (
    "MALFORMED_EVENT",
    "CONFLICTING_DUPLICATE",
    "SEQUENCE_GAP",
    "INVALID_TRANSITION",
    "LEDGER_PLAN_MISMATCH",
    "NEGATIVE_AVAILABLE",
    "TRADER_LEDGER_DRIFT",
    "ORDER_SETTLEMENT_MISMATCH",
    "FX_MISMATCH",
    "FEE_MISMATCH",
    "RECEIPT_MISSING",
    "RECEIPT_AMOUNT_MISMATCH",
    "RECEIPT_REUSED",
    "ASSIGNMENT_VIOLATION",
    "DEADLINE_MISSED",
    "HOLD_LEAK",
    "PAYOUT_MISMATCH",
    "RATING_MISMATCH",
    "CLOCK_SKEW",
    "AMOUNT_OVERFLOW",
    *STATEMENT_CHECK_CODES,
    "REVIEW_SKIPPED",
    "REVIEW_OVERDUE",
    "PROCESS_BROKEN",
    "POLICY_DEVIATION",
)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: which check, which event broke it, on what subject, and why."""

    code: str
    event_id: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code} {self.subject} ({self.event_id}): {self.detail}"
