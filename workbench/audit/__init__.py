"""The audit: every reconciliation check of the platform over a replayed database, each finding
proven by its events (:func:`audit`), explained (:func:`explain`), each business process followed
across its streams (:func:`process`), with ratings recomputed and payouts reconciled, and the
daily books (:func:`account_ledger`, :func:`revenue`); how long orders sit in review (:func:`review_times`, :func:`review_time_summary`); how often the
scheduler did not assign the production policy's pick (:func:`policy_deviation_shares`); analysts'
triage of findings (:func:`triage`) and what changed since the last recorded run
(:func:`since_last`) are kept in the analyst database beside the projections."""

from .books import AccountLedger, account_ledger, revenue
from .changes import SinceLast, since_last
from .explain import Explanation, explain
from .policy import DeviationShares, policy_deviation_shares
from .process_view import ProcessView, process
from .ratings import recompute as recompute_ratings
from .reconcile import reconcile_payouts
from .review_times import review_time_summary, review_times
from .run import AuditResult, audit, finding_id
from .triage_log import STATUSES as TRIAGE_STATUSES
from .triage_log import TriageError, triage
from .triage_log import history as triage_history

__all__ = [
    "TRIAGE_STATUSES",
    "AccountLedger",
    "AuditResult",
    "DeviationShares",
    "Explanation",
    "ProcessView",
    "SinceLast",
    "TriageError",
    "account_ledger",
    "audit",
    "explain",
    "finding_id",
    "policy_deviation_shares",
    "process",
    "recompute_ratings",
    "reconcile_payouts",
    "revenue",
    "review_time_summary",
    "review_times",
    "since_last",
    "triage",
    "triage_history",
]
