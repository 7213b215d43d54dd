"""Planted anomalies: one or more per audit check code, each with its ground truth.

Each variant breaks exactly one rule and is shaped so that it does not set off any other check
(a wrong fee still books postings that agree with the recorded fee, a leaked hold is on an attempt
that otherwise ends normally, a malformed event is an extra row rather than a lost one). The
truth row names the check, the offending event and the subject, so the audit's quality gate can
ask: was every planted break found, and is every finding explained?
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..domain import bookings as bk
from ..domain import payment_order as po
from ..domain.events import Event, Payload
from ..domain.ledger import BatchHeld, PlanCommitted
from ..domain.money import OrderPricing
from ..domain.scheduler import broken_rules, pricing_for
from ..domain.trader import DepositCredited
from .moment_variants import MomentVariants
from .review_variants import ReviewVariants
from .truth import TruthRow

if TYPE_CHECKING:
    from .history import HistoryGenerator

#: Check codes no variant plants yet (issue 12 added them; a planted one would have to leave
#: every other check silent): the coverage tests of the truth leave them out.
UNPLANTED_CHECKS: tuple[str, ...] = ("CLOCK_SKEW", "AMOUNT_OVERFLOW")

#: Variants that ride on the next suitable order: (name, direction it needs or None).
ORDER_VARIANTS: tuple[tuple[str, str | None], ...] = (
    ("fx", None),
    ("fee", None),
    ("postings", "payin"),
    ("assign_offline", None),
    ("assign_capacity", None),
    ("late_accept", None),
    ("no_review", "payin"),
    ("receipt_missing", "payout"),
    ("receipt_amount", "payout"),
    ("receipt_reused", "payout"),
    ("credit_drift", "payout"),
    ("commit_extra_batch", None),
    ("hold_leak_payin", "payin"),
    ("hold_leak_payout", "payout"),
    ("review_skipped", "payout"),
    ("review_overdue", "payin"),
    ("policy_favour", None),
)

#: Variants planted at a moment of the day, on their own.
MOMENT_VARIANTS: tuple[str, ...] = (
    "malformed_json",
    "malformed_kind",
    "malformed_field",
    "malformed_type",
    "duplicate_id",
    "duplicate_seq",
    "seq_gap",
    "invalid_unblock",
    "negative_available",
    "zero_posting",
    "self_posting",
    "revert_missing",
    "duplicate_payout",
    "never_expire",
    "rating",
    "process_dangling_cause",
    "process_capture_elsewhere",
)


def variant_names() -> tuple[str, ...]:
    """Every variant a history can have planted (``GeneratorConfig.plant`` takes these)."""
    return tuple(n for n, _ in ORDER_VARIANTS) + MOMENT_VARIANTS


class Planter(ReviewVariants, MomentVariants):
    """Schedules a round of every variant each simulated day and records what it planted."""

    def __init__(self, gen: HistoryGenerator, seed: int) -> None:
        self.gen = gen
        self.rng = random.Random(seed)
        self.truth: list[TruthRow] = []
        self.waiting: list[tuple[str, str | None]] = []
        self.rating_due: int = 0
        self.skipped: dict[str, str] = {}  # order -> why its review was due (review_skipped)
        self.capture_elsewhere_due: int = 0
        self._variant = ""

    # ----------------------------------------------------------------- scheduling
    def plan_day(self, start: datetime) -> None:
        """Plant between 02:00 and 18:00 so every planted story can finish before the day ends.

        Every variant's moment is drawn whether it is planted or not (``GeneratorConfig.plant``),
        so choosing some variants does not move the others."""
        chosen = self.gen.cfg.plant
        for name, direction in ORDER_VARIANTS:
            when = start + timedelta(hours=self.rng.uniform(2, 18))
            if chosen is None or name in chosen:
                self.gen.at(when, self._queue_order_variant, name, direction)
        for name in MOMENT_VARIANTS:
            when = start + timedelta(hours=self.rng.uniform(2, 18))
            if chosen is None or name in chosen:
                self.gen.at(when, self._moment, name)

    def _queue_order_variant(self, name: str, direction: str | None) -> None:
        self.waiting.append((name, direction))

    def tag_order(self, oid: str, direction: str, plan: Any) -> None:
        """Give the next waiting variant that fits this order's direction to this order."""
        for i, (name, need) in enumerate(self.waiting):
            if need is None or need == direction:
                plan.tags.add(name)
                del self.waiting[i]
                return

    def record(
        self,
        check: str,
        event: Event,
        detail: str,
        subject: str | None = None,
        variant: str | None = None,
    ) -> None:
        self.truth.append(
            TruthRow(
                check, event.event_id, subject or event.subject, variant or self._variant, detail
            )
        )

    # ----------------------------------------------------------------- order hooks
    def assign_hook(self, oid: str, o: po.PaymentOrderState, plan: Any, rate: str) -> bool:
        """Plant at assignment; returns True if the assignment was made here."""
        g = self.gen
        tags = plan.tags
        if tags & {"assign_offline", "assign_capacity"}:
            rule = "online" if "assign_offline" in tags else "capacity"
            for tid in g.trader_ids:
                if tid not in g.platform.world.traders:
                    continue
                price = pricing_for(g.platform.world, o, tid, rate)
                if price is not None and broken_rules(g.platform.world, o, tid, price) == [rule]:
                    self._variant = f"assign_{'offline' if rule == 'online' else 'capacity'}"
                    tags.discard(self._variant)
                    events = g.assign(oid, tid, rate, check=False)
                    self.record(
                        "ASSIGNMENT_VIOLATION", events[0], f"assigned to {tid} breaking rule {rule}"
                    )
                    return True
            # Nobody to break the rule with right now: assign this order normally and give the
            # variant to a later order.
            name = "assign_offline" if rule == "online" else "assign_capacity"
            tags.discard(name)
            self.waiting.append((name, None))
            return False
        if "policy_favour" in tags:
            return self._favour(oid, o, tags, rate)
        if tags & {"fx", "fee", "postings"}:
            from ..domain.scheduler import eligible, production_choice

            choice = production_choice(
                eligible(g.platform.world, o, rate, among=sorted(g.online[o.currency or ""]))
            )
            if choice is None:
                return False
            p = choice.pricing
            if "fx" in tags:
                self._variant = "fx"
                s = p.settlement_amount + 1
                # the fee and the reward right (those in force), on a wrong settlement
                wrong = pricing_for(g.platform.world, o, choice.trader_id, rate, s)
                assert wrong is not None
                events = g.assign(oid, choice.trader_id, rate, pricing=wrong)
                self.record(
                    "FX_MISMATCH",
                    events[0],
                    f"settlement {s} where the formula gives {p.settlement_amount}",
                )
            elif "fee" in tags:
                self._variant = "fee"
                wrong = OrderPricing(p.settlement_amount, p.platform_fee + 1, p.trader_reward)
                events = g.assign(oid, choice.trader_id, rate, pricing=wrong)
                self.record(
                    "FEE_MISMATCH",
                    events[0],
                    f"platform_fee {p.platform_fee + 1} where the formula gives {p.platform_fee}",
                )
            else:
                self._variant = "postings"
                with g.platform.tampered("ledger_plan.batch_held", _shift_one_unit):
                    events = g.platform.assign(oid, choice.trader_id, rate, g.now)
                g._respond(oid)
                held = self._first(events, "ledger_plan.batch_held")
                self.record(
                    "ORDER_SETTLEMENT_MISMATCH",
                    held,
                    "one minor unit moved from the client's posting to revenue",
                    subject=f"payment_order:{oid}",
                )
            tags.discard(self._variant)
            return True
        return False

    def _favour(self, oid: str, o: po.PaymentOrderState, tags: set[str], rate: str) -> bool:
        """POLICY_DEVIATION: the order goes to the runner-up of the production policy, a trader
        every rule allows (so no other check fires) but not the pick, as a scheduler favouring
        someone would. With fewer than two eligible traders now, a later order takes it."""
        from ..domain.scheduler import eligible, production_key

        g = self.gen
        tags.discard("policy_favour")
        ranked = sorted(eligible(g.platform.world, o, rate), key=production_key)
        if len(ranked) < 2:
            self.waiting.append(("policy_favour", None))
            return False
        self._variant = "policy_favour"
        pick, other = ranked[0], ranked[1]
        events = g.assign(oid, other.trader_id, rate, pricing=other.pricing)
        self.record(
            "POLICY_DEVIATION",
            events[0],
            f"assigned to {other.trader_id} (score {other.score}, active {other.active}), "
            f"the policy picks {pick.trader_id} (score {pick.score}, active {pick.active})",
        )
        return True

    def respond_hook(self, oid: str, o: po.PaymentOrderState, plan: Any) -> bool:
        g = self.gen
        cur = o.open_attempt
        assert cur is not None
        tags = plan.tags
        if "late_accept" in tags:
            tags.discard("late_accept")
            g.at(cur.accept_by + timedelta(seconds=30), self._late_accept, oid, cur.attempt)
            return True
        if "hold_leak_payin" in tags:
            tags.discard("hold_leak_payin")
            g.after(g.seconds(10, 60), self._leak, oid, cur.attempt, "hold_leak_payin")
            return True
        if "hold_leak_payout" in tags:
            tags.discard("hold_leak_payout")
            g.at(
                cur.accept_by + timedelta(seconds=1),
                self._leak,
                oid,
                cur.attempt,
                "hold_leak_payout",
            )
            return True
        return False

    def _late_accept(self, oid: str, attempt: int) -> None:
        before = len(self.gen.platform.log)
        self.gen._accept(oid, attempt, check=False)
        events = self.gen.platform.log[before:]
        if events:
            self._variant = "late_accept"
            self.record("DEADLINE_MISSED", events[0], "accepted 30 s after accept_by")

    def _leak(self, oid: str, attempt: int, variant: str) -> None:
        g = self.gen
        if variant == "hold_leak_payin":
            events = g._decline(oid, attempt, book=False)
        else:
            events = g._expire_assignment(oid, attempt, book=False)
        if events:
            self._variant = variant
            self.record(
                "HOLD_LEAK",
                events[0],
                f"attempt {attempt} ended without its plan rolled back",
                subject=f"ledger_plan:{bk.order_plan_id(oid, attempt)}",
            )

    def complete_hook(self, oid: str, o: po.PaymentOrderState, plan: Any) -> bool:
        g = self.gen
        tags = plan.tags
        if "no_review" in tags:
            tags.discard("no_review")
            self._variant = "no_review"
            events = g.complete_with(oid)
            self.record("DEADLINE_MISSED", events[0], "in progress past complete_by with no review")
            return True
        if self.complete_review(oid, tags):
            return True
        if "receipt_missing" in tags:
            tags.discard("receipt_missing")
            self._variant = "receipt_missing"
            events = g.complete_with(oid, check=False)
            self.record(
                "RECEIPT_MISSING", events[0], "payout order completed with no approved receipt"
            )
            return True
        if "receipt_amount" in tags:
            tags.discard("receipt_amount")
            g.complete_with(oid, check=False)
            return True
        if "credit_drift" in tags:
            tags.discard("credit_drift")
            self._variant = "credit_drift"
            with g.platform.tampered("trader.deposit_credited", _credit_plus_100):
                events = g.complete_with(oid)
            credited = self._first(events, "trader.deposit_credited")
            self.record(
                "TRADER_LEDGER_DRIFT", credited, "deposit credited 100 more than the plan books"
            )
            return True
        if self.capture_elsewhere_due and o.direction == "payin" and not tags:
            # the next untagged payin order to complete after the moment (an order tagged at
            # its creation may never complete: no trader, expired)
            self.capture_elsewhere_due -= 1
            self._variant = "process_capture_elsewhere"
            events = g.complete_with(oid)
            captured = self._first(events, "trader.hold_captured")
            other = self._other_process(oid)
            moved = self._rewrite(captured, correlation_id=other)
            self.record(
                "PROCESS_BROKEN",
                moved,
                f"hold captured under {other or 'no process'} instead of order:{oid}",
            )
            return True
        if "commit_extra_batch" in tags:
            tags.discard("commit_extra_batch")
            self._variant = "commit_extra_batch"
            with g.platform.tampered("ledger_plan.committed", _commit_extra_batch):
                events = g.complete_with(oid)
            committed = self._first(events, "ledger_plan.committed")
            self.record(
                "LEDGER_PLAN_MISMATCH", committed, "commit lists a batch that was never held"
            )
            return True
        return False

    def receipt_hook(self, oid: str, plan: Any, amount: int, sha: str, rid: str) -> tuple[int, str]:
        tags = plan.tags
        if "receipt_amount" in tags:
            self.gen.at(self.gen.now, self._watch_receipt_approval, rid)
            return max(1, amount - 100), sha
        if "receipt_reused" in tags and self.gen.shas:
            tags.discard("receipt_reused")
            self.gen.at(self.gen.now, self._record_reuse, rid)
            return amount, self.rng.choice(self.gen.shas)
        return amount, sha

    def _record_reuse(self, rid: str) -> None:
        r = self.gen.platform.world.receipts.get(rid)
        if r is None:
            return
        self._variant = "receipt_reused"
        self.truth.append(
            TruthRow(
                "RECEIPT_REUSED",
                self._uploaded_event_id(rid),
                f"receipt:{rid}",
                "receipt_reused",
                "receipt file already used for another order",
            )
        )

    def _uploaded_event_id(self, rid: str) -> str:
        return self.gen.uploaded_ids[rid]

    def _watch_receipt_approval(self, rid: str) -> None:
        self.gen.approval_watch[rid] = self

    def on_receipt_approved(self, event: Event) -> None:
        self._variant = "receipt_amount"
        self.record(
            "RECEIPT_AMOUNT_MISMATCH", event, "approved receipt 100 minor units short of the order"
        )

    def rating_hook(self, tid: str, as_of: datetime) -> Decimal | None:
        if self.rating_due <= 0:
            return None
        self.rating_due -= 1
        self._variant = "rating"
        c = self.gen.platform.world.history.counts(tid, as_of, 1)
        from ..domain.rating import score

        right = score(c)
        return right - Decimal("0.01") if right >= 1 else right + Decimal("0.01")

    # ----------------------------------------------------------------- envelope edits
    def _other_process(self, oid: str) -> str | None:
        """Another order's process of the same trader (the latest), else none."""
        w = self.gen.platform.world
        tid = w.orders[oid].trader_id
        others = [o for o, s in w.orders.items() if o != oid and s.trader_id == tid]
        return f"order:{others[-1]}" if others else None


# ------------------------------------------------------------------- payload edits
def _shift_one_unit(p: Payload) -> Payload:
    assert isinstance(p, BatchHeld)
    posts = list(p.postings)
    if len(posts) >= 2:
        posts[0] = posts[0].model_copy(update={"amount": posts[0].amount - 1})
        posts[1] = posts[1].model_copy(update={"amount": posts[1].amount + 1})
    return p.model_copy(update={"postings": posts})


def _credit_plus_100(p: Payload) -> Payload:
    assert isinstance(p, DepositCredited)
    return p.model_copy(update={"amount": p.amount + 100})


def _commit_extra_batch(p: Payload) -> Payload:
    assert isinstance(p, PlanCommitted)
    return p.model_copy(
        update={"batch_ids": [*p.batch_ids, max(p.batch_ids, default=0) + 1_000_000_000]}
    )
