"""The review variants of the planted anomalies (``review_skipped``, ``review_overdue``), kept
beside :mod:`.anomalies` (whose :class:`~.anomalies.Planter` has them) so that module stays small.

``review_skipped`` (a payout): the receipt's analysis is doubtful (a confidence below
``REVIEW_CONFIDENCE``, or an extracted amount off the order's) and the platform does not send the
order to review; the receipt is approved automatically and the order completes before its
deadline review. ``review_overdue`` (a payin): the order's deadline review lasts past
``REVIEW_OVERDUE``: it completes 10 to 50 minutes later than that, or never (judged at the
audit's now). Neither sets off another check: the uploaded amount is the order's, the
completion is on time or after a review, the holds and plans are booked as usual.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..domain.events import Event
from ..domain.receipt import REVIEW_CONFIDENCE, REVIEW_OVERDUE
from .truth import PlanterPart

if TYPE_CHECKING:
    pass

_HOURS = f"{REVIEW_OVERDUE / timedelta(hours=1):g}"


class ReviewVariants(PlanterPart):
    """The hooks the history generator calls for the review variants."""

    #: order -> why its review was due (``review_skipped``), until it completes
    skipped: dict[str, str]

    def complete_review(self, oid: str, tags: set[str]) -> bool:
        """Complete a planted order (its truth the ``completed``); False if it is none."""
        if "review_skipped" in tags and oid in self.skipped:
            tags.discard("review_skipped")
            self._variant = "review_skipped"
            events = self.gen.complete_with(oid)
            why = self.skipped.pop(oid)
            self.record("REVIEW_SKIPPED", events[0], f"completed with no review after {why}")
            return True
        if "review_overdue" in tags:
            tags.discard("review_overdue")
            self._variant = "review_overdue"
            events = self.gen.complete_with(oid)
            self.record("REVIEW_OVERDUE", events[0], f"completed over {_HOURS} h in review")
            return True
        return False

    def work_hook(
        self, plan: Any, complete_by: datetime, work: timedelta | None
    ) -> timedelta | None:
        """How long the trader works on an accepted order before completing it (None: never).

        ``review_skipped``: the story (upload, analysis, approval, completion) ends before the
        scheduler's deadline review, which would review the order after the receipt.
        ``review_overdue`` (a payin): the deadline review starts one second after
        ``complete_by``; the order completes 10 to 50 minutes past ``REVIEW_OVERDUE`` after it,
        or (every other time) never, judged at the audit's now (the history's last event).
        Either needs the history to go on two hours after it (the last events of a day come
        minutes before its end); where it does not, the order is an ordinary one."""
        tags = plan.tags
        if "review_skipped" in tags and work is not None:
            return min(work, timedelta(minutes=20))
        if "review_overdue" in tags:
            g = self.gen
            review_at = complete_by + timedelta(seconds=1)
            late = review_at + REVIEW_OVERDUE + g.seconds(600, 3000)
            if late + timedelta(hours=2) < g.end:
                if self.rng.random() < 0.5:
                    tags.discard("review_overdue")
                    tags.add("review_overdue_open")
                    return None
                return late - g.now
            tags.discard("review_overdue")
        return work

    def review_hook(self, plan: Any, events: list[Event]) -> None:
        """The scheduler's deadline review of an order planted to stay in review to the end."""
        if "review_overdue_open" in plan.tags and events:
            plan.tags.discard("review_overdue_open")
            self._variant = "review_overdue"
            self.record(
                "REVIEW_OVERDUE",
                events[0],
                f"left in review to the end of the history, over {_HOURS} h at its end",
            )

    def analyze_hook(self, rid: str, oid: str, attempt: int, paid_at: datetime, plan: Any) -> bool:
        """A doubtful analysis that does not send the order to review, then an automatic
        approval (the order completes on it): a low confidence, or (every other time) an
        extracted amount one major unit off the order's; the uploaded amount is the order's, as
        a payout's completion needs."""
        if "review_skipped" not in plan.tags:
            return False
        g = self.gen
        r = g.platform.world.receipts[rid]
        if self.rng.random() < 0.5:
            conf = Decimal(self.rng.randrange(40, 80)) / 100
            extracted, why = r.amount, f"confidence {conf} < {REVIEW_CONFIDENCE}"
        else:
            conf = Decimal(self.rng.randrange(85, 100)) / 100
            extracted, why = r.amount + 100, "extracted amount 100 minor units over the order's"
        g.platform.analyze_receipt(rid, extracted, paid_at, conf, [], g.now, review=False)
        self.skipped[oid] = why
        g.after(g.seconds(2, 15), g._approve, rid, oid, attempt, "auto")
        return True
