"""A simulated run as catalog events: every action of the model mirrored into the domain.

:class:`PlatformEmitter` is the :class:`~.emitter.Emitter` that turns each hook of the model into
the domain processors' command (:class:`~workbench.domain.processors.Platform`), at the hook's
time, with every check on. The processors refuse anything the catalog forbids, so the domain's
world is a second opinion on the model as it runs:

* a refused command raises :class:`DomainRefused` naming the order (or trader) and the hook;
* a fold-level violation of a written event (the world's appliers flag it) raises the same;
* every published rating is computed by the domain from its own events and must equal the
  score the model computed from its light state (:class:`RatingDisagrees` otherwise);
* at the end, every order's status and every trader's and client's available money must be the
  same in the model and in the world.

The events are kept in :attr:`PlatformEmitter.events`; :func:`write_export` writes them in the
catalog's Parquet export layout (the generator's writer), so a simulated run replays and audits
like a real export. :func:`simulate_events` does both in one call.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain.events import Event
from ..domain.processors import CommandRejected, IdSource, Platform
from ..export import ExportWriter
from ..generator.history import BANKS
from .config import SimConfig
from .emitter import Emitter

if TYPE_CHECKING:
    from ..domain.scheduler import Candidate
    from .model import SimOrder, Simulation
    from .policies import Policy

__all__ = [
    "DomainRefused",
    "PlatformEmitter",
    "RatingDisagrees",
    "simulate_events",
    "write_export",
]

DECLINE_REASONS = ("busy", "bank_unavailable", "limit_reached")
_OTHER_BANKS = ("Bank",)


class DomainRefused(RuntimeError):
    """The domain refused (or flagged) what the model did: a model bug, never swallowed."""

    def __init__(self, hook: str, subject: str, t: float, at: datetime, why: str) -> None:
        self.hook, self.subject, self.t, self.at = hook, subject, t, at
        super().__init__(f"{hook} of {subject} at t={t:.6f}s ({at.isoformat()}): {why}")


class RatingDisagrees(AssertionError):
    """The model's rating differs from the one the domain publishes from the events."""


class PlatformEmitter(Emitter):
    """Mirrors every hook of a :class:`~.model.Simulation` into a domain :class:`Platform`.

    ``seed`` seeds the event ids and the store latencies (:class:`IdSource`); receipt files,
    banks, confidences and decline reasons come from the run's own ``emit`` random stream, so
    the same seed and replication give the same events. ``check_state`` compares the model's
    orders, deposits and balances with the world's at the end of the run.
    """

    def __init__(self, config: SimConfig, seed: int = 0, *, check_state: bool = True) -> None:
        if not config.money:
            raise ValueError(
                "PlatformEmitter needs config.money: without deposits and balances the domain "
                "refuses every assignment the catalog's money rules forbid"
            )
        self.cfg = config
        self.platform = Platform(ids=IdSource(seed=seed), deadlines=config.deadlines)
        self.check_state = check_state
        self.sim: Simulation | None = None
        self._topups = 0
        self._receipts: dict[str, tuple[str, datetime]] = {}  # order id → (receipt id, paid_at)
        self._violations = 0
        self.ratings_checked = 0

    @property
    def events(self) -> list[Event]:
        """Every event written so far, in position order (the platform's log)."""
        return self.platform.log

    # ------------------------------------------------------------------ plumbing
    def _run(self, hook: str, subject: str, t: float, command: Any, *args: Any, **kw: Any) -> Any:
        """Run one processor command at ``t``; a refusal or a flagged event is a model bug."""
        at = self.cfg.when(t)
        try:
            out = command(*args, at=at, **kw)
        except CommandRejected as e:
            raise DomainRefused(hook, subject, t, at, str(e)) from e
        world = self.platform.world
        if len(world.violations) > self._violations:
            new = world.violations[self._violations :]
            self._violations = len(world.violations)
            raise DomainRefused(hook, subject, t, at, "; ".join(str(v) for v in new))
        return out

    # The processors do not judge time against deadlines (a replayed history may break them and
    # the audit says so); the scheduler's side of catalog 4 is checked here instead.
    def _before(self, hook: str, o: SimOrder, t: float, deadline: datetime, name: str) -> None:
        """``hook`` must happen strictly before the deadline."""
        at = self.cfg.when(t)
        if at >= deadline:
            raise DomainRefused(hook, _order(o), t, at, f"at or past {name} {deadline}")

    def _after(self, hook: str, o: SimOrder, t: float, deadline: float, name: str) -> None:
        """``hook`` acts on a deadline: after it (at it with no sweep delay), within the sweep."""
        at, due = self.cfg.when(t), self.cfg.when(deadline)
        sweep = timedelta(seconds=self.cfg.sweep_delay)
        if not (due < at or (not sweep and at == due)) or at > due + sweep:
            raise DomainRefused(
                hook, _order(o), t, at, f"{name} {due} is not passed by at most {sweep}"
            )

    def _rng(self) -> Any:
        assert self.sim is not None, "setup() was not called"
        return self.sim.streams["emit"]

    def _topup_id(self) -> str:
        self._topups += 1
        return f"sim-{self._topups:08d}"

    # ---------------------------------------------------------------- the hooks
    def setup(self, sim: Simulation) -> None:
        """Clients and traders registered, deposits and balances topped up, at time 0."""
        self.sim = sim
        p = self.platform
        for c in sim.cfg.clients:
            subject = f"client {c.client_id}"
            self._run(
                "setup",
                subject,
                0.0,
                p.register_client,
                c.client_id,
                f"Client {c.client_id}",
                c.settlement_currency,
                c.fee_bps,
            )
            if c.balance > 0:
                self._run(
                    "setup", subject, 0.0, p.top_up_client, c.client_id, self._topup_id(), c.balance
                )
        for s in sim.cfg.traders:
            subject = f"trader {s.trader_id}"
            self._run(
                "setup",
                subject,
                0.0,
                p.register_trader,
                s.trader_id,
                f"Trader {s.trader_id}",
                s.fiat_currency,
                s.settlement_currency,
                s.min_amount,
                s.max_amount,
                s.max_active_orders,
                s.reward_bps,
            )
            if s.deposit > 0:
                self._run(
                    "setup", subject, 0.0, p.top_up_trader, s.trader_id, self._topup_id(), s.deposit
                )
            if sim.traders[s.trader_id].online:  # no shifts: online from the start
                self._run("setup", subject, 0.0, p.go_online, s.trader_id)

    def online(self, t: float, trader_id: str) -> None:
        self._run("online", f"trader {trader_id}", t, self.platform.go_online, trader_id)

    def offline(self, t: float, trader_id: str) -> None:
        self._run("offline", f"trader {trader_id}", t, self.platform.go_offline, trader_id)

    def trader_topped_up(self, t: float, trader_id: str, amount: int) -> None:
        self._run(
            "trader_topped_up",
            f"trader {trader_id}",
            t,
            self.platform.top_up_trader,
            trader_id,
            self._topup_id(),
            amount,
        )

    def client_topped_up(self, t: float, client_id: str, amount: int) -> None:
        self._run(
            "client_topped_up",
            f"client {client_id}",
            t,
            self.platform.top_up_client,
            client_id,
            self._topup_id(),
            amount,
        )

    def created(self, t: float, order: SimOrder) -> None:
        self._run(
            "created",
            _order(order),
            t,
            self.platform.create_order,
            order.order_id,
            order.client_id,
            order.direction,
            order.amount,
            order.currency,
            f"SIM-{order.order_id}",
            expires_at=self.cfg.when(order.expires),
        )

    def assigned(self, t: float, order: SimOrder, candidate: Candidate, rate: str) -> None:
        state = self.platform.world.orders.get(order.order_id)
        if state is not None and state.expires_at is not None:  # cancelled then, not assigned
            self._before("assigned", order, t, state.expires_at, "expires_at")
        self._run(
            "assigned",
            _order(order),
            t,
            self.platform.assign,
            order.order_id,
            candidate.trader_id,
            rate,
            check=True,
            pricing=candidate.pricing,
            accept_by=self.cfg.when(order.accept_by),
        )

    def declined(self, t: float, order: SimOrder) -> None:
        reason = DECLINE_REASONS[int(self._rng().integers(len(DECLINE_REASONS)))]
        self._run("declined", _order(order), t, self.platform.decline, order.order_id, reason)

    def assignment_expired(self, t: float, order: SimOrder) -> None:
        self._after("assignment_expired", order, t, order.accept_by, "accept_by")
        self._run(
            "assignment_expired", _order(order), t, self.platform.expire_assignment, order.order_id
        )

    def accepted(self, t: float, order: SimOrder) -> None:
        self._run(
            "accepted",
            _order(order),
            t,
            self.platform.accept,
            order.order_id,
            check=True,
            complete_by=self.cfg.when(order.complete_by),
        )

    def deadline_review(self, t: float, order: SimOrder) -> None:
        self._after("deadline_review", order, t, order.complete_by, "complete_by")
        self._run(
            "deadline_review",
            _order(order),
            t,
            self.platform.start_review,
            order.order_id,
            "deadline",
        )

    def receipt_uploaded(self, t: float, order: SimOrder) -> None:
        rng = self._rng()
        rid = f"rc-{order.order_id}-{order.attempt}"
        paid_at = self.cfg.when(t) - timedelta(seconds=int(rng.integers(20, 91)))
        banks = BANKS.get(order.currency, _OTHER_BANKS)
        bank = banks[int(rng.integers(len(banks)))]
        sha = rng.bytes(32).hex()
        self._receipts[order.order_id] = (rid, paid_at)
        self._run(
            "receipt_uploaded",
            _order(order),
            t,
            self.platform.upload_receipt,
            rid,
            order.order_id,
            order.amount,
            order.currency,
            paid_at,
            bank,
            sha,
        )

    def receipt_analyzed(self, t: float, order: SimOrder, low_confidence: bool) -> None:
        rid, paid_at = self._receipt(order, "receipt_analyzed", t)
        rng = self._rng()
        if low_confidence:
            confidence = Decimal(int(rng.integers(30, 80))) / 100  # < 0.8: a review
            flags = ["low_quality"]
        else:
            confidence = Decimal(int(rng.integers(85, 100))) / 100
            flags = []
        self._run(
            "receipt_analyzed",
            _order(order),
            t,
            self.platform.analyze_receipt,
            rid,
            order.amount,
            paid_at,
            confidence,
            flags,
        )

    def receipt_approved(self, t: float, order: SimOrder, by: str) -> None:
        rid, _ = self._receipt(order, "receipt_approved", t)
        self._run("receipt_approved", _order(order), t, self.platform.approve_receipt, rid, by)

    def completed(self, t: float, order: SimOrder) -> None:
        self._run("completed", _order(order), t, self.platform.complete, order.order_id, check=True)

    def cancelled(self, t: float, order: SimOrder, reason: str) -> None:
        if reason == "expired":
            self._after("cancelled", order, t, order.expires, "expires_at")
        self._run("cancelled", _order(order), t, self.platform.cancel, order.order_id, reason)

    def disputed(self, t: float, order: SimOrder, reason: str) -> None:
        self._run("disputed", _order(order), t, self.platform.dispute, order.order_id, reason)

    def dispute_resolved(self, t: float, order: SimOrder, outcome: str) -> None:
        self._run(
            "dispute_resolved",
            _order(order),
            t,
            self.platform.resolve_dispute,
            order.order_id,
            outcome,
            f"resolved by support: {outcome}",
        )

    def payout_created(self, t: float, payout_id: str, owner: str, amount: int, fee: int) -> None:
        rng = self._rng()
        kind, _, ident = owner.partition(":")
        assert self.sim is not None
        who = self.sim.traders[ident] if kind == "trader" else self.sim.clients[ident]
        dest = f"TRC20:T{int(rng.integers(1 << 16)):04x}****{int(rng.integers(1 << 16)):04x}"
        self._run(
            "payout_created",
            f"payout {payout_id} of {owner}",
            t,
            self.platform.create_payout,
            payout_id,
            owner,
            amount,
            fee,
            who.settlement_currency,
            dest,
        )

    def payout_paid(self, t: float, payout_id: str) -> None:
        ref = f"BR{int(self._rng().integers(1 << 40)):010X}"
        self._run(
            "payout_paid", f"payout {payout_id}", t, self.platform.mark_payout_paid, payout_id, ref
        )

    def payout_confirmed(self, t: float, payout_id: str) -> None:
        self._run(
            "payout_confirmed", f"payout {payout_id}", t, self.platform.confirm_payout, payout_id
        )

    def payout_failed(self, t: float, payout_id: str) -> None:
        self._run(
            "payout_failed",
            f"payout {payout_id}",
            t,
            self.platform.fail_payout,
            payout_id,
            "beneficiary bank rejected the transfer",
        )

    def rating(self, t: float, trader_id: str, as_of: float, score: Decimal) -> None:
        """Publish through the domain, which counts its own events; the score must be the model's."""
        events = self._run(
            "rating",
            f"trader {trader_id}",
            t,
            self.platform.publish_rating,
            trader_id,
            self.cfg.when(as_of),
            self.cfg.rating_window_days,
        )
        p = events[0].payload
        if p.score != score:
            raise RatingDisagrees(
                f"rating of trader {trader_id} as of t={as_of:.6f}s ({self.cfg.when(as_of)}): "
                f"the model scores {score}, the domain publishes {p.score} "
                f"(assignments {p.assignments}, completed {p.completed}, on_time {p.on_time}, "
                f"disputed {p.disputed})"
            )
        self.ratings_checked += 1

    def finish(self, sim: Simulation) -> None:
        if self.check_state:
            problems = state_differences(sim, self.platform)
            if problems:
                raise DomainRefused(
                    "finish",
                    f"{len(problems)} subject(s)",
                    sim.env.now,
                    self.cfg.when(float(sim.env.now)),
                    "the model and the domain disagree: " + "; ".join(problems[:10]),
                )

    def _receipt(self, order: SimOrder, hook: str, t: float) -> tuple[str, datetime]:
        r = self._receipts.get(order.order_id)
        if r is None:
            at = self.cfg.when(t)
            raise DomainRefused(hook, _order(order), t, at, "no receipt was uploaded")
        return r


def _order(o: SimOrder) -> str:
    return f"order {o.order_id} (attempt {o.attempt}, trader {o.trader_id}, {o.status})"


def state_differences(sim: Simulation, platform: Platform) -> list[str]:
    """Where the model's light state and the domain's world disagree (empty when they agree):
    each order's status, each trader's available deposit and active orders, each client's
    available balance."""
    w = platform.world
    out: list[str] = []
    for oid, o in sim.orders.items():
        s = w.orders.get(oid)
        status = s.status if s is not None else None
        if status != o.status:
            out.append(f"order {oid}: model {o.status}, domain {status}")
    for tid, t in sim.traders.items():
        d = w.traders.get(tid)
        if d is None:
            out.append(f"trader {tid}: not in the domain")
            continue
        if d.available != t.available:
            out.append(f"trader {tid}: available model {t.available}, domain {d.available}")
        if set(w.active_orders.get(tid, ())) != set(t.active):
            out.append(
                f"trader {tid}: active model {sorted(t.active)}, "
                f"domain {sorted(w.active_orders.get(tid, ()))}"
            )
        if d.online != t.online:
            out.append(f"trader {tid}: online model {t.online}, domain {d.online}")
    for cid, c in sim.clients.items():
        avail = w.book.available(f"client:{cid}", c.settlement_currency)
        if avail != c.available:
            out.append(f"client {cid}: available model {c.available}, domain {avail}")
    return out


def write_export(
    events: list[Event], out_dir: str | Path, *, seed: int = 0, overwrite: bool = False
) -> Path:
    """Write ``events`` as the catalog's Parquet export (``date=YYYY-MM-DD/part-N.parquet``), with
    the generator's writer; returns the export directory."""
    from ..generator import _prepare

    out = Path(out_dir)
    _prepare(out, overwrite)
    writer = ExportWriter(out, seed=seed)
    for e in events:
        writer.add_event(e)
    writer.close()
    return out


def simulate_events(
    config: SimConfig,
    policy: str | Policy = "production",
    seed: int = 0,
    out_dir: str | Path | None = None,
    *,
    replication: int = 0,
    check_invariants: bool = True,
) -> tuple[Simulation, list[Event]]:
    """Run one replication with every action written as catalog events (checked by the domain
    as they are written); with ``out_dir``, also write them as a Parquet export there."""
    from .model import Simulation

    emitter = PlatformEmitter(config, seed=seed)
    sim = Simulation(
        config,
        policy,
        seed,
        replication,
        emitter=emitter,
        check_invariants=check_invariants,
    ).run()
    if out_dir is not None:
        write_export(emitter.events, out_dir, seed=seed)
    return sim, emitter.events
