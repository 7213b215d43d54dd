"""A realistic platform history, produced only through the domain's processors.

A small discrete-event loop (a heap of timed actions) plays the platform's actors: clients send
orders along a daily arrival curve, traders work shifts, accept or decline or ignore assignments,
pay and upload receipts; the scheduler assigns by the production policy and enforces deadlines;
reviewers, support, the payout desk and the rating service do their part. Every action is a
processor command, so every event is one the catalog allows (unless the planter asks otherwise).
"""

from __future__ import annotations

import contextlib
import heapq
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .. import progress
from ..domain import payment_order as po
from ..domain import receipt as rc
from ..domain.events import Event
from ..domain.money import OrderPricing, exponent
from ..domain.processors import CommandRejected, IdSource, Platform
from ..domain.scheduler import ProductionRanker

SETTLEMENT = "USDT"
USDT = 10 ** exponent(SETTLEMENT)

#: Fiat currencies the generated traders serve: (weight, base rate per USDT, median order in major units).
FIAT: dict[str, tuple[float, Decimal, int]] = {
    "RUB": (0.5, Decimal("92.50"), 8_000),
    "KZT": (0.35, Decimal("480.00"), 40_000),
    "UZS": (0.15, Decimal("12750.00"), 1_000_000),
}

BANKS = {
    "RUB": ["Sberbank", "VTB", "Alfa-Bank", "T-Bank"],
    "KZT": ["Halyk", "Kaspi", "Jusan"],
    "UZS": ["Kapitalbank", "Hamkorbank"],
}
DECLINE_REASONS = ["busy", "bank_unavailable", "limit_reached"]


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. The defaults make a small but complete platform."""

    seed: int = 1
    days: int = 7
    orders_per_day: int = 600
    traders: int = 24
    clients: int = 6
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    clean: bool = False
    payin_share: float = 0.6
    decline_rate: float = 0.06
    ignore_rate: float = 0.04
    client_cancel_rate: float = 0.015
    dispute_rate: float = 0.04
    low_confidence_rate: float = 0.1
    duplicate_rate: float = 0.002
    position_start: int = 7_500_000
    position_hole_rate: float = 0.01
    #: Also write the payout provider's statements (``<out>/statements/``, see
    #: :mod:`.statements`), with their breaks planted unless ``clean``.
    statements: bool = False
    #: Plant only these variants (names from :mod:`.anomalies`: ``ORDER_VARIANTS`` and
    #: ``MOMENT_VARIANTS``); None plants every one. Ignored when ``clean``.
    plant: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("days", "orders_per_day", "traders", "clients"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.start.tzinfo is None:
            raise ValueError("start must be a UTC datetime")


def daily_profile(hour: float) -> float:
    """Relative arrival intensity over a day: quiet at night, a peak in the afternoon."""
    return 0.35 + 0.65 * math.exp(-((hour - 14.5) ** 2) / (2 * 4.0**2))


_PROFILE_MEAN = sum(daily_profile(h / 10) for h in range(240)) / 240
_PROFILE_MAX = max(daily_profile(h / 10) for h in range(240))


@dataclass
class OrderPlan:
    """What the simulated actors will do with one order (and any anomaly it carries)."""

    tags: set[str] = field(default_factory=set)


class HistoryGenerator:
    """Plays a platform history into a :class:`Platform`; rows go to ``sink`` as they are made."""

    def __init__(
        self, config: GeneratorConfig, sink: Callable[[Sequence[Event | dict[str, Any]]], None]
    ) -> None:
        self.cfg = config
        self.sink = sink
        #: Every id drawn so far (orders, receipts, payouts, top-ups), so none is drawn twice.
        self.used_ids: set[str] = set()
        seeds = random.Random(config.seed)
        self.rng = random.Random(seeds.getrandbits(64))  # behaviour
        self.arrivals = random.Random(seeds.getrandbits(64))
        self.rates_rng = random.Random(seeds.getrandbits(64))
        self.dup_rng = random.Random(seeds.getrandbits(64))
        ids = IdSource(seed=seeds.getrandbits(64), position=config.position_start, batch_id=40_000)
        self.platform = Platform(ids=ids)
        self.ranker = ProductionRanker(self.platform.world)
        self.plant_rng = random.Random(seeds.getrandbits(64))
        self.queue: list[tuple[datetime, int, Callable[..., object], tuple[Any, ...]]] = []
        self._counter = 0
        self.now = config.start
        self.end = config.start + timedelta(days=config.days)
        self.plans: dict[str, OrderPlan] = {}
        self.online: dict[str, set[str]] = {c: set() for c in FIAT}
        self.trader_currency: dict[str, str] = {}
        self.deposit_target: dict[str, int] = {}
        self.rates: dict[str, Decimal] = {c: v[1] for c, v in FIAT.items()}
        self.shas: list[str] = []
        self.last_online: Event | None = None
        self.client_ids: list[str] = []
        self.trader_ids: list[str] = []
        self.order_count = 0
        self.rows = 0
        self.planter: Any = None  # set by the anomalies module unless clean
        self.sites: Any = None  # the statement breaks' payouts (statement_breaks.py), if asked
        self.uploaded_ids: dict[str, str] = {}
        self.full: set[str] = set()  # traders at max_active_orders (kept from drained events)
        self.approval_watch: dict[str, Any] = {}

    # ------------------------------------------------------------------ event loop
    def at(self, when: datetime, action: Callable[..., object], *args: Any) -> None:
        if when < self.end:
            self._counter += 1
            heapq.heappush(self.queue, (when, self._counter, action, args))

    def after(self, delay: timedelta, action: Callable[..., object], *args: Any) -> None:
        self.at(self.now + delay, action, *args)

    def seconds(self, lo: float, hi: float) -> timedelta:
        return timedelta(seconds=round(self.rng.uniform(lo, hi)))

    def run(self, progress: bool | None = None) -> None:
        self._setup()
        bar = _progress(progress, total_hours=self.cfg.days * 24)
        last_hour = 0
        while self.queue:
            when, _, action, args = heapq.heappop(self.queue)
            self.now = when
            # A CommandRejected means the world moved on since the action was scheduled (the
            # order was cancelled meanwhile, say): the actor simply gives up, as a person would.
            with contextlib.suppress(CommandRejected):
                action(*args)
            self._drain()
            hour = int((when - self.cfg.start).total_seconds() // 3600)
            if bar is not None and hour > last_hour:
                bar.update(hour - last_hour)
                last_hour = hour
        if bar is not None:
            bar.update(self.cfg.days * 24 - last_hour)
            bar.close()

    def _drain(self) -> None:
        """Hand the events of the last action to the sink (with the odd identical redelivery)."""
        log = self.platform.log
        if not log:
            return
        w = self.platform.world
        for e in log:
            if e.stream == "payment_order" or e.kind == "trader.limits_changed":
                tid = e.aggregate_id if e.stream == "trader" else w.orders[e.aggregate_id].trader_id
                t = w.traders.get(tid or "")
                if t is not None and tid is not None:
                    if w.active_count(tid) >= t.max_active_orders:
                        self.full.add(tid)
                    else:
                        self.full.discard(tid)
            if e.kind == "trader.went_online":
                self.last_online = e
            elif e.kind == "receipt.uploaded":
                self.uploaded_ids[e.aggregate_id] = e.event_id
            elif e.kind == "receipt.approved" and e.aggregate_id in self.approval_watch:
                self.approval_watch.pop(e.aggregate_id).on_receipt_approved(e)
        events = list(log)
        log.clear()
        dups = [e for e in events if self.dup_rng.random() < self.cfg.duplicate_rate]
        self.sink(events + dups)
        self.rows += len(events) + len(dups)

    def emit_rows(self, rows: list[dict[str, Any]]) -> None:
        """Rows made outside the processors (the planter's malformed and conflicting copies)."""
        self._drain()
        self.sink(rows)
        self.rows += len(rows)

    # ---------------------------------------------------------------------- setup
    def _setup(self) -> None:
        t = self.cfg.start
        for i in range(1, self.cfg.clients + 1):
            cid = f"cl-{i:02d}"
            self.client_ids.append(cid)
            self.at(t + timedelta(minutes=i), self._register_client, cid, i)
        base = t + timedelta(minutes=self.cfg.clients + 1)
        currencies = list(FIAT)
        weights = [FIAT[c][0] for c in currencies]
        for i in range(1, self.cfg.traders + 1):
            tid = f"tr-{i:03d}" if self.cfg.traders >= 100 else f"tr-{i:02d}"
            # Round-robin the first traders over currencies so each is served, then by weight.
            cur = (
                currencies[i - 1]
                if i <= len(currencies)
                else self.rng.choices(currencies, weights)[0]
            )
            self.trader_currency[tid] = cur
            self.trader_ids.append(tid)
            self.at(base + timedelta(seconds=5 * i), self._register_trader, tid, cur, i)
        for day in range(self.cfg.days):
            start = t + timedelta(days=day)
            self.at(start, self._plan_day, day)
        for half in range(self.cfg.days * 2 + 1):
            self.at(
                t + timedelta(hours=12 * half, minutes=1),
                self._publish_ratings,
                t + timedelta(hours=12 * half),
            )
        for hour in range(self.cfg.days * 24):
            self.at(t + timedelta(hours=hour, minutes=45), self._hourly, hour)

    def _register_client(self, cid: str, i: int) -> None:
        fee = self.rng.choice([150, 175, 200, 225, 250])
        self.platform.register_client(cid, f"Merchant {i:02d}", SETTLEMENT, fee, self.now)
        self.after(timedelta(seconds=30), self._top_up_client, cid)

    def _top_up_client(self, cid: str) -> None:
        amount = self.rng.choice([20_000, 30_000, 50_000]) * USDT
        self.platform.top_up_client(cid, self._id("tu"), amount, self.now)

    def _register_trader(self, tid: str, cur: str, i: int) -> None:
        median = FIAT[cur][2]
        minor = int(10 ** exponent(cur))
        lo = max(1, median // 40) * minor
        hi = median * self.rng.choice([8, 12, 20]) * minor
        self.platform.register_trader(
            tid,
            f"Trader {i:02d}",
            cur,
            SETTLEMENT,
            lo,
            hi,
            self.rng.choice([2, 3, 3, 4, 5]),
            self.rng.choice([40, 60, 80, 100, 120]),
            self.now,
            country={"RUB": "RU", "KZT": "KZ", "UZS": "UZ"}[cur],
            version=self.rng.choice([1, 2]),
        )
        target = self.rng.choice([2_000, 3_000, 4_000, 6_000]) * USDT
        self.deposit_target[tid] = target
        self.after(timedelta(seconds=30), self._top_up_trader, tid, target)

    def _top_up_trader(self, tid: str, amount: int) -> None:
        self.platform.top_up_trader(tid, self._id("tu"), amount, self.now)

    def _id(self, prefix: str) -> str:
        """A new id: 32 random bits, drawn again if already used. At a million orders or receipts
        two draws collide dozens of times, and the platform refuses a command on a taken id,
        which would silently drop that order or leave an order waiting for a receipt forever."""
        while (new := f"{prefix}-{self.rng.getrandbits(32):08x}") in self.used_ids:
            pass
        self.used_ids.add(new)
        return new

    # ---------------------------------------------------------------------- a day
    def _plan_day(self, day: int) -> None:
        start = self.cfg.start + timedelta(days=day)
        n = len(self.trader_ids)
        for k, tid in enumerate(self.trader_ids):
            # Shifts spread round the clock; a few traders work almost all day.
            begin = (24.0 * k / n + self.rng.uniform(-1, 1)) % 24
            length = 22.0 if k % 5 == 0 else self.rng.uniform(10, 14)
            on = start + timedelta(hours=begin)
            off = on + timedelta(hours=length)
            self.at(max(on, self.now + timedelta(minutes=5)), self._online, tid)
            self.at(off, self._offline, tid)
            if self.rng.random() < 0.08:
                self.at(start + timedelta(hours=self.rng.uniform(1, 23)), self._change_limits, tid)
            if self.rng.random() < 0.03:
                when = start + timedelta(hours=self.rng.uniform(1, 20))
                self.at(when, self._block, tid)
                self.at(when + timedelta(hours=self.rng.uniform(2, 8)), self._unblock, tid)
            if self.rng.random() < 0.25:
                self.at(
                    start + timedelta(hours=self.rng.uniform(0.5, 23)), self._trader_withdraw, tid
                )
        for cid in self.client_ids:
            if self.rng.random() < 0.1:
                self.at(start + timedelta(hours=self.rng.uniform(1, 23)), self._change_fee, cid)
            if self.rng.random() < 0.3:
                self.at(
                    start + timedelta(hours=self.rng.uniform(0.5, 23)), self._client_withdraw, cid
                )
        self._arrivals(start)
        if self.planter is not None:
            self.planter.plan_day(start)
        if self.sites is not None:
            self.sites.plan_day(start)

    def _arrivals(self, start: datetime) -> None:
        """Non-homogeneous Poisson arrivals by thinning against the daily profile."""
        rate_per_hour = self.cfg.orders_per_day / 24 / _PROFILE_MEAN * _PROFILE_MAX
        t = 0.0
        while True:
            t += self.arrivals.expovariate(rate_per_hour)
            if t >= 24:
                break
            if self.arrivals.random() <= daily_profile(t) / _PROFILE_MAX:
                when = start + timedelta(seconds=round(t * 3600))
                self.at(max(when, start + timedelta(minutes=20)), self._arrive)

    def _online(self, tid: str) -> None:
        t = self.platform.world.traders.get(tid)
        if t is None:  # not registered yet: come online once registered
            self.after(timedelta(minutes=1), self._online, tid)
            return
        if not t.online:
            self.platform.go_online(tid, self.now)
        self.online[self.trader_currency[tid]].add(tid)

    def _offline(self, tid: str) -> None:
        t = self.platform.world.traders.get(tid)
        if t is not None and t.online:
            self.platform.go_offline(tid, self.now)
        self.online[self.trader_currency[tid]].discard(tid)

    def _change_limits(self, tid: str) -> None:
        t = self.platform.world.traders.get(tid)
        if t is None:
            return
        cur = self.trader_currency[tid]
        minor = 10 ** exponent(cur)
        hi = max(
            t.min_amount * 4, int(t.max_amount * self.rng.choice([0.7, 1.25, 1.5])) // minor * minor
        )
        active = min(6, max(1, t.max_active_orders + self.rng.choice([-1, 1])))
        self.platform.change_limits(tid, t.min_amount, hi, active, self.now)

    def _block(self, tid: str) -> None:
        t = self.platform.world.traders.get(tid)
        if t is not None and not t.blocked:
            self.platform.block_trader(tid, self.rng.choice(["kyc_review", "risk_check"]), self.now)

    def _unblock(self, tid: str) -> None:
        t = self.platform.world.traders.get(tid)
        if t is not None and t.blocked:
            self.platform.unblock_trader(tid, self.now)

    def _change_fee(self, cid: str) -> None:
        c = self.platform.world.clients.get(cid)
        if c is None:  # not registered yet (many clients register over the first hours)
            return
        fee = min(300, max(150, (c.fee_bps or 200) + self.rng.choice([-25, 25])))
        self.platform.change_client_fee(cid, fee, self.now)

    def _hourly(self, hour: int) -> None:
        """Rates drift; deposits and balances running low are topped up."""
        for cur, rate in self.rates.items():
            step = Decimal(str(round(self.rates_rng.gauss(0, 0.002), 5)))
            self.rates[cur] = (rate * (1 + step)).quantize(Decimal("0.01"))
        w = self.platform.world
        for tid in self.trader_ids:
            t = w.traders.get(tid)
            target = self.deposit_target.get(tid)
            if t is None or target is None:
                continue
            if t.available < target * 4 // 10:
                amount = (target - t.available) // USDT * USDT
                if amount > 0:
                    self.platform.top_up_trader(tid, self._id("tu"), amount, self.now)
        for cid in self.client_ids:
            if cid in w.clients and w.book.available(f"client:{cid}", SETTLEMENT) < 5_000 * USDT:
                self.platform.top_up_client(cid, self._id("tu"), 20_000 * USDT, self.now)

    def rate(self, currency: str) -> str:
        """Today's rate, sometimes quoted to four decimals as some desks do."""
        r = self.rates[currency]
        if self.rng.random() < 0.1:
            r += Decimal(self.rng.randrange(1, 99)) / 10_000
        return str(r)

    # ------------------------------------------------------------------- an order
    def _arrive(self, forced: dict[str, Any] | None = None) -> str:
        w = self.platform.world
        if not w.clients:
            return ""
        forced = forced or {}
        cid = forced.get("client_id") or self.rng.choice(
            [c for c in self.client_ids if c in w.clients]
        )
        direction = forced.get("direction") or (
            "payin" if self.rng.random() < self.cfg.payin_share else "payout"
        )
        currencies = list(FIAT)
        cur = (
            forced.get("currency")
            or self.rng.choices(currencies, [FIAT[c][0] for c in currencies])[0]
        )
        amount = forced.get("amount") or self._amount(cur)
        self.order_count += 1
        oid = self._id("po")
        self.platform.create_order(
            oid,
            cid,
            direction,  # type: ignore[arg-type]
            amount,
            cur,
            f"INV-{self.rng.getrandbits(40):010x}",
            self.now,
            channel=self.rng.choice(["card", "sbp"]),
            version=self.rng.choice([1, 2]),
        )
        plan = self.plans[oid] = OrderPlan(set(forced.get("tags", ())))
        if self.planter is not None and not forced:
            self.planter.tag_order(oid, direction, plan)
        o = w.orders[oid]
        assert o.expires_at is not None
        self.after(timedelta(seconds=2), self._try_assign, oid)
        self.at(o.expires_at + timedelta(seconds=1), self._expire_order, oid)
        if self.rng.random() < self.cfg.client_cancel_rate and not plan.tags:
            self.after(self.seconds(60, 1500), self._client_cancel, oid)
        return oid

    def _amount(self, cur: str) -> int:
        median = FIAT[cur][2]
        major = median * math.exp(self.rng.gauss(0, 0.8))
        minor = 10 ** exponent(cur)
        if self.rng.random() < 0.8:
            step = max(1, median // 80)
            return int(max(step, round(major / step) * step) * minor)
        return int(max(minor, round(major * minor)))

    def _try_assign(self, oid: str) -> None:
        w = self.platform.world
        o = w.orders[oid]
        if o.status != po.PENDING or o.expires_at is None or self.now >= o.expires_at:
            return
        assert o.currency is not None
        plan = self.plans[oid]
        rate = self.rate(o.currency)
        if self.planter is not None and self.planter.assign_hook(oid, o, plan, rate):
            return
        # Only traders online with a free slot can pass the rules; the scheduler checks them all.
        free = self.online[o.currency] - self.full
        choice = self.ranker.choose(o, rate, free) if free else None
        if choice is None:  # nobody free: the scheduler looks again on its next one-minute tick
            self.after(timedelta(seconds=60), self._try_assign, oid)
            return
        self.assign(oid, choice.trader_id, rate)

    def assign(
        self,
        oid: str,
        tid: str,
        rate: str,
        *,
        pricing: OrderPricing | None = None,
        check: bool = True,
    ) -> list[Event]:
        """Assign and schedule how the trader responds."""
        events = self.platform.assign(
            oid,
            tid,
            rate,
            self.now,
            pricing=pricing,
            check=check,
            split_batches=self.rng.random() < 0.15,
        )
        self._respond(oid)
        return events

    def _respond(self, oid: str) -> None:
        o = self.platform.world.orders[oid]
        cur = o.open_attempt
        assert cur is not None
        plan = self.plans[oid]
        if self.planter is not None and self.planter.respond_hook(oid, o, plan):
            return
        r = self.rng.random()
        if r < self.cfg.decline_rate:
            self.after(self.seconds(10, 60), self._decline, oid, cur.attempt)
        elif r < self.cfg.decline_rate + self.cfg.ignore_rate:
            self.at(cur.accept_by + timedelta(seconds=1), self._expire_assignment, oid, cur.attempt)
        else:
            self.after(self.seconds(5, 100), self._accept, oid, cur.attempt)

    def _is_open(self, oid: str, attempt: int, *statuses: str) -> po.PaymentOrderState | None:
        o = self.platform.world.orders[oid]
        cur = o.open_attempt
        if cur is None or cur.attempt != attempt or o.status not in statuses:
            return None
        return o

    def _decline(self, oid: str, attempt: int, book: bool = True) -> list[Event]:
        if self._is_open(oid, attempt, po.ASSIGNED) is None:
            return []
        events = self.platform.decline(oid, self.rng.choice(DECLINE_REASONS), self.now, book=book)
        self.after(timedelta(seconds=2), self._try_assign, oid)
        return events

    def _expire_assignment(self, oid: str, attempt: int, book: bool = True) -> list[Event]:
        if self._is_open(oid, attempt, po.ASSIGNED) is None:
            return []
        events = self.platform.expire_assignment(oid, self.now, book=book)
        self.after(timedelta(seconds=2), self._try_assign, oid)
        return events

    def _accept(self, oid: str, attempt: int, check: bool = True) -> None:
        o = self._is_open(oid, attempt, po.ASSIGNED)
        if o is None:
            return
        self.platform.accept(oid, self.now, check=check)
        o = self.platform.world.orders[oid]
        cur = o.open_attempt
        assert cur is not None and cur.complete_by is not None
        plan = self.plans[oid]
        work: timedelta | None = timedelta(
            seconds=round(min(3 * 3600, 600 * math.exp(self.rng.gauss(0, 0.6))))
        )
        if "no_review" not in plan.tags:
            self.at(cur.complete_by + timedelta(seconds=1), self._deadline_review, oid, attempt)
        else:
            work = (cur.complete_by - self.now) + self.seconds(300, 900)
        if self.planter is not None:  # None: the order is left in review
            work = self.planter.work_hook(plan, cur.complete_by, work)
        if work is None:
            pass
        elif o.direction == "payin" or "receipt_missing" in plan.tags:
            self.after(work, self._complete, oid, attempt)
        else:
            self.after(
                max(timedelta(seconds=60), work - self.seconds(30, 90)),
                self._upload_receipt,
                oid,
                attempt,
            )

    def _deadline_review(self, oid: str, attempt: int) -> None:
        if self._is_open(oid, attempt, po.IN_PROGRESS) is not None:
            events = self.platform.start_review(oid, "deadline", self.now)
            if self.planter is not None:
                self.planter.review_hook(self.plans[oid], events)

    def _complete(self, oid: str, attempt: int) -> None:
        o = self._is_open(oid, attempt, po.IN_PROGRESS, po.IN_REVIEW)
        if o is None:
            return
        plan = self.plans[oid]
        if self.planter is not None and self.planter.complete_hook(oid, o, plan):
            pass
        else:
            self.platform.complete(oid, self.now)
        if self.rng.random() < self.cfg.dispute_rate and not plan.tags:
            self.after(self.seconds(1800, 6 * 3600), self._dispute, oid)

    def complete_with(self, oid: str, **kwargs: Any) -> list[Event]:
        return self.platform.complete(oid, self.now, **kwargs)

    def _upload_receipt(self, oid: str, attempt: int) -> None:
        o = self._is_open(oid, attempt, po.IN_PROGRESS, po.IN_REVIEW)
        if o is None or o.currency is None:
            return
        plan = self.plans[oid]
        rid = self._id("rc")
        amount = o.amount
        sha = f"{self.rng.getrandbits(256):064x}"
        if self.planter is not None:
            amount, sha = self.planter.receipt_hook(oid, plan, amount, sha, rid)
        self.shas.append(sha)
        paid_at = self.now - self.seconds(20, 90)
        self.platform.upload_receipt(
            rid, oid, amount, o.currency, paid_at, self.rng.choice(BANKS[o.currency]), sha, self.now
        )
        self.after(self.seconds(8, 60), self._analyze, rid, oid, attempt, paid_at)

    def _analyze(self, rid: str, oid: str, attempt: int, paid_at: datetime) -> None:
        r = self.platform.world.receipts[rid]
        plan = self.plans[oid]
        if self.planter is not None and self.planter.analyze_hook(rid, oid, attempt, paid_at, plan):
            return
        low = self.rng.random() < self.cfg.low_confidence_rate and not plan.tags
        if low:
            conf = Decimal(self.rng.randrange(30, 80)) / 100
            extracted, extracted_at, flags = (
                (r.amount, paid_at, ["low_quality"])
                if self.rng.random() < 0.3
                else (None, None, ["low_quality"])
            )
        else:
            conf = Decimal(self.rng.randrange(85, 100)) / 100
            extracted, extracted_at, flags = r.amount, paid_at, []
        self.platform.analyze_receipt(rid, extracted, extracted_at, conf, flags, self.now)
        o = self.platform.world.orders[oid]
        if conf >= rc.REVIEW_CONFIDENCE and r.amount == o.amount:
            self.after(self.seconds(2, 15), self._approve, rid, oid, attempt, "auto")
        elif low and self.rng.random() < 0.15:
            self.after(self.seconds(300, 1800), self._reject, rid, oid)
        else:
            self.after(self.seconds(300, 1800), self._approve, rid, oid, attempt, "reviewer")

    def _approve(self, rid: str, oid: str, attempt: int, by: str) -> None:
        if self.platform.world.receipts[rid].status != rc.ANALYZED:
            return
        self.platform.approve_receipt(rid, by, self.now)  # type: ignore[arg-type]
        self.after(self.seconds(5, 40), self._complete, oid, attempt)

    def _reject(self, rid: str, oid: str) -> None:
        if self.platform.world.receipts[rid].status != rc.ANALYZED:
            return
        self.platform.reject_receipt(rid, "unreadable", self.now)
        if self.platform.world.orders[oid].status in (po.IN_PROGRESS, po.IN_REVIEW):
            self.platform.cancel(oid, "review_rejected", self.now)

    def _expire_order(self, oid: str) -> None:
        o = self.platform.world.orders[oid]
        if "never_expire" in self.plans[oid].tags:
            return
        if o.status in (po.PENDING, po.ASSIGNED):
            self.platform.cancel(oid, "expired", self.now)

    def _client_cancel(self, oid: str) -> None:
        if self.platform.world.orders[oid].status in (po.PENDING, po.ASSIGNED, po.IN_PROGRESS):
            self.platform.cancel(oid, "client_request", self.now)

    def _dispute(self, oid: str) -> None:
        if self.platform.world.orders[oid].status == po.COMPLETED:
            self.platform.dispute(
                oid,
                self.rng.choice(["customer_claims_not_received", "wrong_amount_claimed"]),
                self.now,
            )
            self.after(self.seconds(3600, 6 * 3600), self._resolve, oid)

    def _resolve(self, oid: str) -> None:
        o = self.platform.world.orders[oid]
        if o.status != po.DISPUTED:
            return
        outcome = "upheld" if self.rng.random() < 0.6 else "reversed"
        done = next((a for a in reversed(o.attempts) if a.outcome == "completed"), None)
        if outcome == "reversed" and o.direction == "payout" and done is not None:
            t = self.platform.world.traders[done.trader_id]
            if t.available < done.settlement_amount + done.trader_reward:
                outcome = "upheld"  # support would not reverse into a negative deposit
        self.platform.resolve_dispute(oid, outcome, f"resolved by support: {outcome}", self.now)  # type: ignore[arg-type]

    # --------------------------------------------------------------------- payouts
    def _trader_withdraw(self, tid: str) -> None:
        avail = self.platform.owner_available(f"trader:{tid}", SETTLEMENT)
        amount = int(avail * self.rng.uniform(0.2, 0.4)) // USDT * USDT
        if amount >= 50 * USDT:
            self.payout(f"trader:{tid}", amount)

    def _client_withdraw(self, cid: str) -> None:
        avail = self.platform.owner_available(f"client:{cid}", SETTLEMENT)
        amount = min(1_500 * USDT, int(avail * 0.2) // USDT * USDT)
        if amount >= 100 * USDT:
            self.payout(f"client:{cid}", amount)

    def payout(
        self,
        owner: str,
        amount: int,
        *,
        check: bool = True,
        destination: str | None = None,
        lifecycle: bool = True,
    ) -> tuple[str, list[Event]]:
        pid = self._id("pay")
        dest = (
            destination
            or f"TRC20:T{self.rng.getrandbits(16):04x}****{self.rng.getrandbits(16):04x}"
        )
        events = self.platform.create_payout(
            pid, owner, amount, USDT, SETTLEMENT, dest, self.now, check=check
        )
        if lifecycle:
            self._payout_lifecycle(pid)
        return pid, events

    def _payout_lifecycle(self, pid: str) -> None:
        r = self.rng.random()
        if r < 0.05:
            self.after(self.seconds(600, 1800), self._payout_step, pid, "fail")
        elif r < 0.10:
            self.after(self.seconds(600, 1800), self._payout_step, pid, "cancel")
        elif r < 0.20:
            self.after(self.seconds(600, 1800), self._payout_step, pid, "confirm")
        else:
            self.after(self.seconds(600, 1800), self._payout_step, pid, "pay")

    def _payout_step(self, pid: str, step: str) -> None:
        p = self.platform
        if step == "fail":
            p.fail_payout(pid, "beneficiary bank rejected the transfer", self.now)
        elif step == "cancel":
            p.cancel_payout(pid, "cancelled at the owner's request", self.now)
        elif step == "pay":
            p.mark_payout_paid(pid, f"BR{self.rng.getrandbits(40):010X}", self.now)
            self.after(
                self.seconds(300, 1500),
                self._payout_step,
                pid,
                "confirm" if self.rng.random() < 0.92 else "cancel",
            )
        elif step == "confirm_only":
            p.confirm_payout(pid, self.now)
        elif step == "confirm":
            p.confirm_payout(pid, self.now)
            if self.rng.random() < 0.06:
                self.after(self.seconds(1800, 7200), self._payout_step, pid, "revert")
        elif step == "revert":
            p.cancel_payout(
                pid, "cancelled after confirmation: funds returned by the bank", self.now
            )

    # --------------------------------------------------------------------- ratings
    def _publish_ratings(self, as_of: datetime) -> None:
        for tid in self.trader_ids:
            if tid not in self.platform.world.traders:
                continue
            score = None
            if self.planter is not None:
                score = self.planter.rating_hook(tid, as_of)
            events = self.platform.publish_rating(tid, as_of, 1, self.now, score=score)
            if score is not None and self.planter is not None:
                self.planter.record(
                    "RATING_MISMATCH", events[0], "published score off the catalog formula by 0.01"
                )


def _progress(enabled: bool | None, total_hours: int) -> Any:
    """A bar over simulated hours (terminal only)."""
    return progress.bar(enabled, total=total_hours, unit="h", desc="simulated hours")
