"""The moment variants of the planted anomalies: breaks planted at a moment of a day rather than
on an order (malformed and duplicated events, a sequence gap, an invalid transition, a negative
balance, ledger plans that do not add up, payouts without their revert or paid twice, a rating off
by a point, a process broken by a dangling cause), kept beside :mod:`.anomalies` (whose
:class:`~.anomalies.Planter` has them) so that module stays small. Each breaks one rule and sets
off no other check (see :mod:`.anomalies`)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..domain import bookings as bk
from ..domain.events import Event, Payload
from ..domain.ledger import BatchHeld
from .truth import PlanterPart, TruthRow

if TYPE_CHECKING:
    pass


class MomentVariants(PlanterPart):
    """The variants :meth:`_moment` plants by name (``_plant_<name>``)."""

    truth: list[TruthRow]
    #: planted on the next rating published, or the next payin captured (the hooks count down)
    rating_due: int
    capture_elsewhere_due: int

    # ----------------------------------------------------------------- moments
    def _moment(self, name: str) -> None:
        self._variant = name
        getattr(self, f"_plant_{name}")()

    def _some_trader(self, predicate: Any = None) -> str | None:
        w = self.gen.platform.world
        ids = [
            t
            for t in self.gen.trader_ids
            if t in w.traders and (predicate is None or predicate(w.traders[t]))
        ]
        return self.rng.choice(ids) if ids else None

    def _malformed(self, kind: str, payload: str, note: str) -> None:
        g = self.gen
        tid = self._some_trader()
        if tid is None:
            return
        ids = g.platform.ids
        row = {
            "event_id": ids.event_id(),
            "position": ids.next_position(),
            "stream": "trader",
            "aggregate_id": tid,
            "seq": g.platform.world.version("trader", tid) + 1,
            "kind": kind,
            "schema_version": 1,
            "occurred_at": g.now,
            "recorded_at": g.now + ids.jitter(),
            "correlation_id": None,
            "causation_id": None,
            "payload": payload,
        }
        g.emit_rows([row])
        self.truth.append(
            TruthRow("MALFORMED_EVENT", str(row["event_id"]), f"trader:{tid}", self._variant, note)
        )

    def _plant_malformed_json(self) -> None:
        self._malformed("trader.went_online", '{"status": ', "payload is not valid JSON")

    def _plant_malformed_kind(self) -> None:
        self._malformed("trader.teleported", "{}", "unknown kind")

    def _plant_malformed_field(self) -> None:
        self._malformed("trader.blocked", "{}", "required field reason missing")

    def _plant_malformed_type(self) -> None:
        self._malformed(
            "trader.limits_changed",
            '{"min_amount":"100","max_amount":500000,"max_active_orders":2}',
            "min_amount is a string",
        )

    def _plant_duplicate_id(self) -> None:
        g = self.gen
        e = g.last_online
        if e is None:
            return
        row = e.to_row()
        row["recorded_at"] = row["recorded_at"] + timedelta(seconds=5)
        g.emit_rows([row])
        self.truth.append(
            TruthRow(
                "CONFLICTING_DUPLICATE",
                e.event_id,
                e.subject,
                self._variant,
                "same event_id delivered with another recorded_at",
            )
        )

    def _plant_duplicate_seq(self) -> None:
        g = self.gen
        e = g.last_online
        if e is None:
            return
        row = e.to_row()
        row["event_id"] = g.platform.ids.event_id()
        row["position"] = g.platform.ids.next_position()
        g.emit_rows([row])
        self.truth.append(
            TruthRow(
                "CONFLICTING_DUPLICATE",
                row["event_id"],
                e.subject,
                self._variant,
                f"a second event at seq {e.seq}",
            )
        )

    def _plant_seq_gap(self) -> None:
        g = self.gen
        tid = self._some_trader(lambda t: t.online)
        if tid is None:
            return
        g.platform.skip_seq("trader", tid)
        events = g.platform.go_online(tid, g.now)
        self.record("SEQUENCE_GAP", events[0], "one seq missing before this event")

    def _plant_invalid_unblock(self) -> None:
        g = self.gen
        tid = self._some_trader(lambda t: not t.blocked)
        if tid is None:
            return
        events = g.platform.unblock_trader(tid, g.now, check=False)
        self.record("INVALID_TRANSITION", events[0], "unblocked while not blocked")

    def _plant_negative_available(self) -> None:
        g = self.gen
        cid = self.rng.choice(g.client_ids)
        if cid not in g.platform.world.clients:
            return
        avail = g.platform.world.book.available(f"client:{cid}", "USDT")
        pid, events = g.payout(
            f"client:{cid}", max(0, avail) + 1_000 * 10**6, check=False, lifecycle=False
        )
        g.after(timedelta(minutes=2), g._payout_step, pid, "fail")
        held = self._first(events, "ledger_plan.batch_held")
        self.record(
            "NEGATIVE_AVAILABLE",
            held,
            "withdrawal held beyond the available balance",
            subject=f"client:{cid}",
        )

    def _plant_posting(self, change: Any, note: str) -> None:
        g = self.gen
        tid = self._some_trader()
        if tid is None:
            return
        with g.platform.tampered("ledger_plan.batch_held", change):
            events = g.platform.top_up_trader(tid, g._id("tu"), 100 * 10**6, g.now)
        self.record("LEDGER_PLAN_MISMATCH", self._first(events, "ledger_plan.batch_held"), note)

    def _plant_zero_posting(self) -> None:
        self._plant_posting(_add_zero_posting, "a posting of amount 0")

    def _plant_self_posting(self) -> None:
        self._plant_posting(_add_self_posting, "a posting from an account to itself")

    def _plant_revert_missing(self) -> None:
        g = self.gen
        cid = self.rng.choice(g.client_ids)
        if cid not in g.platform.world.clients:
            return
        avail = g.platform.world.book.available(f"client:{cid}", "USDT")
        amount = min(500, avail // 10**6 // 4) * 10**6
        if amount < 10 * 10**6:
            return
        pid, _ = g.payout(f"client:{cid}", amount, lifecycle=False)
        g.after(timedelta(minutes=10), g._payout_step, pid, "confirm_only")
        g.after(timedelta(minutes=40), self._cancel_without_revert, pid)

    def _cancel_without_revert(self, pid: str) -> None:
        g = self.gen
        if g.platform.world.payouts[pid].status != "confirmed":
            return
        events = g.platform.cancel_payout(pid, "cancelled after confirmation", g.now, book=False)
        self._variant = "revert_missing"
        self.record("PAYOUT_MISMATCH", events[0], "cancelled after confirm with no revert plan")

    def _plant_duplicate_payout(self) -> None:
        g = self.gen
        cid = self.rng.choice(g.client_ids)
        if cid not in g.platform.world.clients:
            return
        avail = g.platform.world.book.available(f"client:{cid}", "USDT")
        amount = min(300, avail // 10**6 // 5) * 10**6
        if amount < 10 * 10**6:
            return
        dest = f"TRC20:T{self.rng.getrandbits(16):04x}****{self.rng.getrandbits(16):04x}"
        g.payout(f"client:{cid}", amount, destination=dest)
        g.after(timedelta(minutes=3), self._second_payout, cid, amount, dest)

    def _second_payout(self, cid: str, amount: int, dest: str) -> None:
        _, events = self.gen.payout(f"client:{cid}", amount, destination=dest)
        self._variant = "duplicate_payout"
        self.record(
            "PAYOUT_MISMATCH", events[0], "same owner, amount and destination within 10 minutes"
        )

    def _plant_never_expire(self) -> None:
        g = self.gen
        w = g.platform.world
        currencies = sorted({g.trader_currency[t] for t in g.trader_ids if t in w.traders})
        if not currencies:  # early on a large platform: nobody registered yet, nothing to exceed
            return
        cur = self.rng.choice(currencies)
        top = max(
            w.traders[t].max_amount
            for t in g.trader_ids
            if t in w.traders and g.trader_currency[t] == cur
        )
        oid = g._arrive(
            {"direction": "payin", "currency": cur, "amount": top * 10, "tags": {"never_expire"}}
        )
        created = g.platform.log[-1] if g.platform.log else None
        if created is not None and created.aggregate_id == oid:
            self.record(
                "DEADLINE_MISSED",
                created,
                "left pending past expires_at: no trader can take it and it was never cancelled",
            )

    def _plant_rating(self) -> None:
        self.rating_due += 1

    def _plant_process_capture_elsewhere(self) -> None:
        self.capture_elsewhere_due += 1

    def _plant_process_dangling_cause(self) -> None:
        """A top-up whose trader event names a cause the log never had (a whole top-up story,
        so the process is in the log from its start and nothing else is off)."""
        g = self.gen
        tid = self._some_trader()
        if tid is None:
            return
        events = g.platform.top_up_trader(tid, g._id("tu"), 10 * 10**6, g.now)
        topped = self._first(events, "trader.deposit_topped_up")
        moved = self._rewrite(topped, causation_id=g.platform.ids.event_id())
        self.record("PROCESS_BROKEN", moved, f"caused by {moved.causation_id}, never written")

    # ----------------------------------------------------------------- envelope edits
    def _rewrite(self, event: Event, **changes: Any) -> Event:
        """Change the envelope of an event not yet handed to the sink (its links: the state it
        applied does not depend on them)."""
        log = self.gen.platform.log
        i = next(i for i, e in enumerate(log) if e.event_id == event.event_id)
        log[i] = dataclasses.replace(event, **changes)
        return log[i]


# ------------------------------------------------------------------- payload edits
def _add_zero_posting(p: Payload) -> Payload:
    assert isinstance(p, BatchHeld)
    extra = p.postings[0].model_copy(
        update={"to": bk.REVENUE, "amount": 0, "description": "rounding"}
    )
    return p.model_copy(update={"postings": [*p.postings, extra]})


def _add_self_posting(p: Payload) -> Payload:
    assert isinstance(p, BatchHeld)
    extra = p.postings[0].model_copy(
        update={
            "from_": bk.REVENUE,
            "to": bk.REVENUE,
            "amount": 1_000_000,
            "description": "internal transfer",
        }
    )
    return p.model_copy(update={"postings": [*p.postings, extra]})
