"""The audit: every reconciliation check of the platform over a replayed database, each finding
proven by its events (:func:`audit`), explained (:func:`explain`), with ratings recomputed and
payouts reconciled, and the daily books (:func:`account_ledger`, :func:`revenue`)."""

from .books import AccountLedger, account_ledger, revenue
from .explain import Explanation, explain
from .ratings import recompute as recompute_ratings
from .reconcile import reconcile_payouts
from .run import AuditResult, audit, finding_id

__all__ = [
    "AccountLedger",
    "AuditResult",
    "Explanation",
    "account_ledger",
    "audit",
    "explain",
    "finding_id",
    "recompute_ratings",
    "reconcile_payouts",
    "revenue",
]
