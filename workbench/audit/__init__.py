"""The audit: every reconciliation check of the platform over a replayed database, each finding
proven by its events (:func:`audit`), explained (:func:`explain`), with ratings recomputed and
payouts reconciled."""

from .explain import Explanation, explain
from .ratings import recompute as recompute_ratings
from .reconcile import reconcile_payouts
from .run import AuditResult, audit, finding_id

__all__ = [
    "AuditResult",
    "Explanation",
    "audit",
    "explain",
    "finding_id",
    "recompute_ratings",
    "reconcile_payouts",
]
