"""The SimPy model of the platform around its scheduler.

Orders arrive (a non-homogeneous Poisson process, or a trace of real orders); the scheduler
offers each pending order to a policy, which picks among the traders the catalog's rules allow
(:func:`workbench.domain.scheduler.rules_broken`, the one copy of those rules, which the
eligibility filter of :mod:`.pool` follows and ``check_invariants`` compares it with); traders
accept, decline or ignore, work the order and upload receipts; the scheduler enforces the accept,
complete and expiry deadlines one sweep after they pass; deposits and client balances are held
and released as the catalog books them (:mod:`workbench.domain.money`); ratings are published
with the catalog's formula (:func:`workbench.domain.rating.score`) and feed the production policy.

The model keeps its own light state (plain objects, integers) so a policy study runs fast; an
:class:`~.emitter.Emitter` can mirror every action into the domain's processors, which refuse
anything the catalog does not allow, so a run that writes events is checked as it goes.

Every draw an order needs is taken when it arrives (:data:`DRAWS` uniforms per attempt, mapped
through the serving trader's distributions), which keeps common random numbers in step across
policies that send the order to different traders.
"""

from __future__ import annotations

import bisect
import gc
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from decimal import Decimal
from heapq import heappush
from typing import Any

import numpy as np
import simpy

from ..domain import payment_order as po
from ..domain.money import OrderPricing
from ..domain.rating import RatingCounts, score
from ..domain.scheduler import Candidate
from .calls import NORMAL, URGENT, Call, Direct
from .cancellations import Cancellations
from .config import NEVER, ClientSpec, SimConfig, TraderSpec
from .disputes import DisputeDesk
from .emitter import Emitter
from .invariants import check_assignable, check_filter, check_trader
from .policies import Policy, make_policy
from .pool import Candidates, Pool
from .prices import Prices
from .streams import Streams
from .withdrawals import PayoutDesk

#: Uniforms drawn per attempt: decision, response delay, work time, receipt confidence,
#: analysis delay, review time.
DRAWS = 6
#: Attempts whose draws are taken at arrival (later attempts draw from the ``extra`` stream).
PREDRAWN = 4
_US = 1_000_000
#: Orders whose draws are taken from a stream at once (see ``Simulation._behaviour_draws``).
_BLOCK = 256
#: ``Generator.random()`` from one raw 64-bit word: its top 53 bits times 2**-53.
_UNIT = 1.0 / 9_007_199_254_740_992.0
#: Where an order's patience uniform is among its draws (after the attempts').
_PATIENCE = PREDRAWN * DRAWS
#: Seconds after ``as_of`` that the rating service publishes.
RATING_DELAY = 60.0


def _us(t: float) -> int:
    return round(t * _US)


class SimTrader:
    """A trader's live state, shaped like the trader stream's (the rules read the same names)."""

    __slots__ = (
        "_last",
        "active",
        "assigned_us",
        "balance",
        "blocked",
        "busy_time",
        "capacity_time",
        "completed",
        "completed_us",
        "disputed_us",
        "earnings",
        "fiat_currency",
        "free_since",
        "held",
        "max_active_orders",
        "max_amount",
        "min_amount",
        "on_time_us",
        "online",
        "payout_held",
        "pool",
        "registered",
        "reward_bps",
        "row",
        "score",
        "settlement_currency",
        "spec",
        "trader_id",
        "up_seq",
    )

    def __init__(self, spec: TraderSpec) -> None:
        self.spec = spec
        self.trader_id = spec.trader_id
        self.fiat_currency: str | None = spec.fiat_currency
        self.settlement_currency: str | None = spec.settlement_currency
        self.min_amount, self.max_amount = spec.min_amount, spec.max_amount
        self.max_active_orders = spec.max_active_orders
        self.reward_bps = spec.reward_bps
        self.registered, self.blocked, self.online = True, False, not spec.shifts
        self.balance, self.held = 0, 0
        self.payout_held = 0  # of ``held``: withdrawals in flight (the rest backs payin orders)
        self.active: dict[str, None] = {}
        self.free_since = 0.0
        self.score = Decimal("55.00")
        self.assigned_us: list[int] = []
        self.completed_us: list[int] = []
        self.on_time_us: list[int] = []
        self.disputed_us: list[int] = []  # disputes of orders it completed, when opened
        self.completed, self.earnings = 0, 0
        self.busy_time = self.capacity_time = 0.0
        self._last = 0.0
        self.row = 0
        self.pool: Pool  # its currency's, which sets it
        self.up_seq = 0  # the change counter when it last could take more (Simulation._up)

    @property
    def available(self) -> int:
        return self.balance - self.held


class SimClient:
    __slots__ = ("balance", "client_id", "fee_bps", "held", "settlement_currency", "spec", "up_seq")

    def __init__(self, spec: ClientSpec) -> None:
        self.spec = spec
        self.client_id, self.fee_bps = spec.client_id, spec.fee_bps
        self.settlement_currency = spec.settlement_currency
        self.balance, self.held = 0, 0
        self.up_seq = 0

    @property
    def available(self) -> int:
        return self.balance - self.held

    def available_in(self, _currency: str) -> int:
        """What the rules ask of a client (``client_available``): one balance, any currency."""
        return self.balance - self.held


class SimOrder:
    """One order's life: what it asks, its attempts, and when each step happened."""

    __slots__ = (
        "accept_by",
        "accepted_at",
        "amount",
        "assigned_at",
        "attempt",
        "client_id",
        "complete_by",
        "created",
        "currency",
        "direction",
        "ended",
        "expires",
        "first_assigned",
        "idle_rate",
        "idle_seq",
        "order_id",
        "outcome",
        "pricing",
        "rate",
        "status",
        "trader_id",
        "tried",
        "u",
    )

    def __init__(
        self,
        order_id: str,
        client_id: str,
        direction: str,
        amount: int,
        currency: str,
        created: float,
        expires: float,
        u: list[float],
    ) -> None:
        self.order_id, self.client_id, self.direction = order_id, client_id, direction
        self.amount, self.currency = amount, currency
        self.created, self.expires, self.u = created, expires, u
        self.status = po.PENDING
        self.attempt = 0
        self.tried: set[str] = set()
        self.trader_id: str | None = None
        self.pricing: OrderPricing | None = None
        self.rate = ""
        self.assigned_at = self.accept_by = self.complete_by = NEVER
        self.first_assigned: float | None = None
        self.accepted_at: float | None = None
        self.ended: float | None = None
        self.outcome: str | None = None
        #: When a dispatch last found no trader for it: the change counter then, and the rate.
        self.idle_seq, self.idle_rate = -1, ""


class Context:
    """What a policy may look at and do: the time, its random stream, traders, candidates."""

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim
        self.rng: np.random.Generator = sim.streams["policy"]

    @property
    def now(self) -> float:
        return float(self._sim.env.now)

    def trader(self, trader_id: str) -> SimTrader:
        return self._sim.traders[trader_id]

    def candidates(self, order: SimOrder) -> Candidates:
        return self._sim.candidates(order)

    def reserve(self, order: SimOrder, candidate: Candidate) -> None:
        """Assign now (the next ``candidates`` call sees the trader's slot and deposit taken)."""
        self._sim.assign(order, candidate)


@dataclass(frozen=True)
class LogEntry:
    t: float
    kind: str
    order_id: str
    trader_id: str


class Simulation:
    """One replication: build it, :meth:`run` it, read ``orders_frame()`` and ``traders_frame()``."""

    #: Filter eligibility with a Python loop over the free traders when there are at most this
    #: many (numpy's per-call cost over the pool's columns is more, for a few), else with numpy.
    loop_filter_max = 24

    def __init__(
        self,
        config: SimConfig,
        policy: str | Policy = "production",
        seed: int = 0,
        replication: int = 0,
        *,
        emitter: Emitter | None = None,
        streams: Streams | None = None,
        check_invariants: bool = False,
    ) -> None:
        self.cfg = config
        self.policy = make_policy(policy)
        self._batched = self.policy.batch_seconds > 0
        self.streams = streams or Streams(seed, replication)
        self.emitter = emitter or Emitter()
        #: Whether the emitter does anything: the order path skips the no-op hooks' calls.
        self._emits = type(self.emitter) is not Emitter
        self.check = check_invariants
        self.env = simpy.Environment()
        self.ctx = Context(self)
        self.traders = {s.trader_id: SimTrader(s) for s in config.traders}
        self.clients = {s.client_id: SimClient(s) for s in config.clients}
        self.orders: dict[str, SimOrder] = {}
        self.pending: dict[str, dict[str, SimOrder]] = {}
        #: Per currency, the traders with a free slot (online, unblocked), by id.
        self.free: dict[str, dict[str, SimTrader]] = {}
        for t in self.traders.values():
            self.pending.setdefault(t.spec.fiat_currency, {})
            self.free.setdefault(t.spec.fiat_currency, {})
        rank = {tid: i for i, tid in enumerate(sorted(self.traders))}
        self.pools = {
            cur: Pool([t for t in self.traders.values() if t.spec.fiat_currency == cur], rank)
            for cur in self.free
        }
        self._dirty: set[str] = set()
        self.log: list[tuple[float, str, str, str]] = []
        self.revenue = 0
        d = config.deadlines
        self.accept_window = d.accept.total_seconds()
        self.complete_window = d.complete.total_seconds()
        self.expire_window = d.expire.total_seconds()
        self.sweep = config.sweep_delay
        self.hold_durations: list[float] = []
        self._extra = self.streams["extra"]
        self._horizon = config.horizon
        self._warmup = config.warmup
        self._money = config.money
        self._receipts = config.receipts
        self._behaviour_block: list[list[float]] = []
        self._orders_block: list[list[float]] = []
        self._amounts = dict(config.arrivals.amounts) if config.arrivals else {}
        self._currency_mix = _cumulative(config.arrivals.currencies) if config.arrivals else []
        self._order_seq = 0
        self._settlements: dict[tuple[int, str, str, str], int] = {}
        #: Counts changes that may let a trader take an order it could not (see :meth:`_up`).
        self._seq = 0
        self._taken: list[SimOrder] | None = None
        #: Orders a dispatch passed over without filtering (nothing changed for them).
        self.passed_over = 0
        self._rates: dict[str, tuple[float, float, str]] = {}
        # The rest of the platform, each only when switched on: a run without them schedules
        # nothing and pays one test per order created (and per completion) for the lot.
        self.cancellations = (
            Cancellations(self, config.cancel_rate) if config.cancel_rate > 0 else None
        )
        dp, w = config.disputes, config.withdrawals
        self.disputes = DisputeDesk(self, dp) if dp is not None and dp.share > 0 else None
        self.withdrawals = (
            PayoutDesk(self, w)
            if w is not None and config.money and (w.client_per_day > 0 or w.trader_per_day > 0)
            else None
        )
        self._order_hooks = tuple(
            h.created for h in (self.cancellations, self.disputes) if h is not None
        )

    # ---------------------------------------------------------------------- the run
    def run(self) -> Simulation:
        """Run the replication to the horizon (Python's cyclic collector paused meanwhile).

        Why the pause: every order stays alive to the end (the frames are read from them), so
        the collector's full passes, triggered as the run allocates, scan a heap that grows
        with the orders, and the cost per event grew with them (7.0 µs an event with the
        collector paused, 7.4 at 12,000 orders a day and 11.3 at 60,000 with it running). The
        run makes no cyclic garbage while it runs (its events, orders and candidates hold no
        cycles; the simulation's own object graph is one, freed after the run as before), so
        memory is the same; the collector is restored as it was, whatever happens."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if enabled:
                gc.enable()

    def _run(self) -> Simulation:
        # The model puts its own events (calls.py's Call and Direct: what Environment.step
        # reads of an event, nothing more) on SimPy's queue, which SimPy types as holding
        # Events only: hence the ``type: ignore[misc]`` on each ``heappush`` onto ``_queue``.
        cfg = self.cfg
        for t in self.traders.values():
            if cfg.money:
                t.balance = t.spec.deposit
            if t.online:
                self.free[t.spec.fiat_currency][t.trader_id] = t
            self._sync(t)
        if cfg.money:
            for c in self.clients.values():
                c.balance = c.spec.balance
        self.emitter.setup(self)
        for t in self.traders.values():
            for on, off in t.spec.shifts:
                self._at(on, self._online, t)
                self._at(off, self._offline, t)
        if cfg.trace:
            self.env.process(self._trace())
        else:
            assert cfg.arrivals is not None  # SimConfig takes either arrivals or a trace
            # as env.process would start it: an urgent event now, then one event per arrival
            self._arrival_t, self._arrival_top = 0.0, cfg.arrivals.max_rate()
            # Arrivals.rate_at(t) for each hour of the day, worked out as it does it
            self._hourly_rates = [cfg.arrivals.rate_at(h * 3600.0) for h in range(24)]
            self.env.schedule(Call(self._next_arrival, ()), URGENT, 0)  # type: ignore[arg-type]
        if cfg.rating_every > 0:
            self.env.process(self._every(cfg.rating_every, self._publish_ratings))
        if cfg.money and cfg.top_up_every > 0:
            self.env.process(self._every(cfg.top_up_every, self._top_ups))
        if self.policy.batch_seconds > 0:
            self.env.process(self._every(self.policy.batch_seconds, self._batch))
        if self.withdrawals is not None:
            self.withdrawals.start()
        self.env.run(until=cfg.horizon)
        for t in self.traders.values():
            self._touch(t)
        self.emitter.finish(self)
        return self

    def _at(self, when: float, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn(*args)`` at ``when`` (if within the horizon)."""
        when = round(when * _US) / _US  # event times are whole microseconds, as events carry
        if when >= self._horizon:
            return
        env = self.env
        now = env._now
        # env.schedule(Call(fn, args), NORMAL, delay), its body written out (this is the model's
        # most frequent call): same time, priority and sequence number as the timeout it replaced
        delay = when - now if when > now else 0.0
        heappush(env._queue, (now + delay, NORMAL, next(env._eid), Call(fn, args)))  # type: ignore[misc]  # see _run

    def _after(self, when: float, fn: Callable[[Direct], None], arg: Any, k: int = 0) -> None:
        """:meth:`_at` for the order path's handlers, which take the event (:class:`Direct`):
        ``fn(event)`` at ``when``, ``event.arg`` and ``event.k`` its order and attempt."""
        when = round(when * 1_000_000) / 1_000_000
        if when >= self._horizon:
            return
        env = self.env
        now = env._now
        delay = when - now if when > now else 0.0
        heappush(env._queue, (now + delay, NORMAL, next(env._eid), Direct(fn, arg, k)))  # type: ignore[misc]  # see _run

    def _every(self, period: float, fn: Callable[[], None]) -> Generator[simpy.Event, Any, None]:
        while True:
            yield self.env.timeout(period)
            fn()

    # -------------------------------------------------------------------- demand
    def _next_arrival(self) -> None:
        """Non-homogeneous Poisson arrivals by thinning (Lewis and Shedler) against the profile:
        draw up to the next accepted arrival and schedule it (one event per arrival, the next
        drawn when it is processed: the loop a SimPy process would run, without its resumes)."""
        rng = self.streams["arrivals"]
        # rng.exponential(scale) and rng.random(), the same numbers drawn cheaper: numpy's
        # exponential is the scale times its standard exponential, and random() is the top 53
        # bits of one raw 64-bit word times 2**-53 (tests/sim/test_speed.py draws both ways)
        exponential, raw = rng.standard_exponential, rng.bit_generator.random_raw
        top, hourly, horizon = self._arrival_top, self._hourly_rates, self._horizon
        scale = 1 / top
        t = self._arrival_t
        while True:
            t += scale * exponential()
            if t >= horizon:
                return
            if (raw() >> 11) * _UNIT * top <= hourly[int(t // 3600) % 24]:
                self._arrival_t = t
                env = self.env
                delay = max(0.0, round(t * _US) / _US - env._now)
                # env.schedule(..., NORMAL, delay), written out
                heappush(  # type: ignore[misc]  # see _run
                    env._queue,
                    (env._now + delay, NORMAL, next(env._eid), Direct(self._arrival, None, 0)),
                )
                return

    def _arrival(self, ev: Direct) -> None:
        """A synthetic order arrives (its currency, direction, client and amount drawn from
        the mixes), and the next arrival is drawn."""
        a = self.cfg.arrivals
        assert a is not None
        x = self._order_draws()
        cur = _pick_from(self._currency_mix, x[0])
        direction = "payin" if x[1] < a.payin_share else "payout"
        clients = self.cfg.clients
        client = clients[min(int(x[2] * len(clients)), len(clients) - 1)].client_id
        dist = self._amounts[cur]
        amount = max(1, round(dist.sample(x[3])))
        self._create(client, direction, amount, cur, "")
        self._next_arrival()

    def _trace(self) -> Generator[simpy.Event, Any, None]:
        for spec in sorted(self.cfg.trace, key=lambda s: (s.at, s.order_id)):
            if spec.at >= self.cfg.horizon:
                return
            yield self.env.timeout(max(0.0, round(spec.at * _US) / _US - self.env._now))
            self._create(spec.client_id, spec.direction, spec.amount, spec.currency, spec.order_id)

    def _create(self, client: str, direction: str, amount: int, cur: str, oid: str) -> None:
        now = self.env._now
        self._order_seq += 1
        oid = oid or f"sim-{self._order_seq:08d}"
        u = self._behaviour_draws()
        a = self.cfg.arrivals
        window = (
            a.patience.sample(u[_PATIENCE])
            if a is not None and a.patience is not None
            else self.expire_window
        )
        expires = round((now + window) * _US) / _US  # whole microseconds, as the event carries
        o = SimOrder(oid, client, direction, amount, cur, now, expires, u)
        self.orders[oid] = o
        self.log.append((now, "created", oid, ""))
        if self._emits:
            self.emitter.created(now, o)
        self._after(expires + self.sweep, self._expire_order, o)
        if self._order_hooks:
            for hook in self._order_hooks:
                hook(o)
        # self._to_pending(o), written out (a new order is pending and never looked at)
        queue = self.pending.get(cur)
        if queue is None:  # a currency no trader works (a trace may have one)
            queue = self.pending[cur] = {}
        queue[oid] = o
        if not (self._batched or cur in self._dirty):  # self._want(cur)
            self._dirty.add(cur)
            env = self.env
            heappush(env._queue, (now + 0, NORMAL, next(env._eid), Direct(self._dispatch, cur, 0)))  # type: ignore[misc]  # see _run

    def _behaviour_draws(self) -> list[float]:
        """An order's uniforms from the behaviour stream, flat: :data:`PREDRAWN` attempts of
        :data:`DRAWS` (attempt ``k``'s at ``k * DRAWS``), then its patience (at
        :data:`_PATIENCE`). Taken from blocks of many orders' draws (one numpy call per block
        instead of two per order): the same numbers, in the same order, as drawing them one
        order at a time, since nothing else draws from that stream."""
        block = self._behaviour_block
        if not block:
            rows = self.streams["behaviour"].random((_BLOCK, PREDRAWN * DRAWS + 1)).tolist()
            rows.reverse()
            block = self._behaviour_block = rows
        return block.pop()

    def _order_draws(self) -> list[float]:
        """The four uniforms a synthetic order is made of (currency, direction, client, amount),
        from blocks of the orders stream as :meth:`_behaviour_draws` does."""
        block = self._orders_block
        if not block:
            rows = self.streams["orders"].random((_BLOCK, 4)).tolist()
            rows.reverse()
            block = self._orders_block = rows
        return block.pop()

    # ------------------------------------------------------------------ scheduling
    def _to_pending(self, o: SimOrder) -> None:
        o.status = po.PENDING
        o.idle_seq = -1
        queue = self.pending.get(o.currency)
        if queue is None:  # a currency no trader works (a trace may have one)
            queue = self.pending[o.currency] = {}
        queue[o.order_id] = o
        self._want(o.currency)

    def _want(self, currency: str) -> None:
        """Ask for a dispatch of ``currency`` at this instant (once, however many reasons)."""
        if self._batched or currency in self._dirty:
            return
        self._dirty.add(currency)
        env = self.env
        heappush(  # type: ignore[misc]  # see _run
            env._queue, (env._now + 0, NORMAL, next(env._eid), Direct(self._dispatch, currency, 0))
        )

    def _dispatch(self, ev: Direct) -> None:
        """Offer the pending orders, oldest first, to the policy while traders are free.

        An order a dispatch found no trader for is passed over without asking again, until
        something that could make a trader eligible for it has happened since (:meth:`_up`: a
        freed slot, a trader online, deposit or client money back, a new rate); only the rules'
        inputs that can grow are tracked (tried traders, time to expiry only shrink). That
        keeps a dispatch's cost per waiting order a few comparisons instead of a filter over
        the traders (``check_invariants`` asks the filter anyway and compares)."""
        currency = ev.arg
        self._dirty.discard(currency)
        queue = self.pending.get(currency)
        free = self.free.get(currency)
        if not queue or not free:
            return
        rate = self._rate(currency) if self.cfg.money else ""
        # the rate candidates() would look up (the pool has traders: some are free)
        known = rate if self.cfg.money else None
        clients = self.clients
        # The queue is walked in place (a copy of it would cost in proportion to the orders
        # waiting, at every dispatch); the orders assigned meanwhile leave it afterwards.
        taken = self._taken = []
        policy, ctx, check = self.policy, self.ctx, self.check
        newest = -1  # the latest change among the free traders, found when first needed
        try:
            for o in queue.values():
                if not free:
                    break
                seq = o.idle_seq
                if seq >= 0 and newest < 0:
                    newest = max(t.up_seq for t in free.values())
                if (
                    seq >= 0
                    and seq >= newest
                    and o.idle_rate == rate
                    and clients[o.client_id].up_seq <= seq
                    and o.status == po.PENDING
                ):
                    if check and len(self.candidates(o)):
                        raise AssertionError(f"{o.order_id}: passed over but a trader may take it")
                    self.passed_over += 1
                    continue
                cands = self.candidates(o, known)
                if not len(cands):
                    o.idle_seq, o.idle_rate = self._seq, rate
                    continue
                i = policy.choose(o, cands, ctx)
                if i is not None:
                    if check:
                        self.assign(o, cands[i])
                    else:
                        # the filter just picked this trader: no rule can break between the
                        # two (check_invariants asks rules_broken here and of the filter)
                        self._assign(o, *cands.pick(i))
        finally:
            self._taken = None
            for o in taken:
                del queue[o.order_id]

    def _up(self, who: SimTrader | SimClient) -> None:
        """``who`` may now be able to take (or pay for) an order it could not: pending orders
        a dispatch passed over are asked again."""
        self._seq += 1
        who.up_seq = self._seq

    def _batch(self) -> None:
        orders = [o for q in self.pending.values() for o in q.values()]
        orders.sort(key=lambda o: (o.created, o.order_id))
        if orders:
            self.policy.match(orders, self.ctx)

    def candidates(self, o: SimOrder, rate: str | None = None) -> Candidates:
        """Every trader the rules allow for ``o`` now, priced (the policy picks among them).
        ``rate``: the currency's rate now, if the caller has it (a dispatch, for a pool with
        traders)."""
        pool = self.pools.get(o.currency)
        if pool is None:
            pool = self.pools[o.currency] = Pool([], {})
        client = self.clients[o.client_id]
        # self._prices(o, pool), written out (asked at every look at a waiting order)
        if rate is None:
            rate = self._rate(o.currency) if pool.keys else ""
        prices = Prices(pool.keys, o.amount, o.currency, rate, client.fee_bps, self._settlements)
        free = self.free.get(o.currency)
        if (
            o.status != po.PENDING
            # past expires_at: the sweep's to cancel
            or round(self.env._now * 1_000_000) >= round(o.expires * 1_000_000)
            or not free
        ):
            return Candidates(pool, pool.id_rank[:0], prices)
        rows: np.ndarray | list[int]
        if len(free) <= self.loop_filter_max:
            rows = pool.eligible_among(
                free.values(),
                o.amount,
                o.direction,
                o.tried,
                prices,
                client.balance - client.held,
                self._money,
            )
        else:
            rows = pool.eligible(
                o.amount, o.direction, o.tried, prices, client.available, self._money
            )
        if self.check:
            check_filter(self, o, pool, rows, prices)
        return Candidates(pool, rows, prices)

    def _prices(self, o: SimOrder, pool: Pool) -> Prices:
        """The order priced for each (settlement currency, reward) among the pool's traders."""
        rate = self._rate(o.currency) if pool.keys else ""
        return Prices(
            pool.keys,
            o.amount,
            o.currency,
            rate,
            self.clients[o.client_id].fee_bps,
            self._settlements,
        )

    def _sync(self, t: SimTrader) -> None:
        t.pool.sync(t)

    def _rate(self, currency: str) -> str:
        """``cfg.rates.at(currency, now)``, remembered until the currency's next rate step."""
        now = self.env._now
        got = self._rates.get(currency)
        if got is None or not got[0] <= now < got[1]:
            rate = self.cfg.rates.at(currency, now)  # an unknown currency is its error
            times = self.cfg.rates._index()[currency][0]
            i = bisect.bisect_right(times, now) - 1
            start = times[i] if i >= 0 else -math.inf
            end = times[i + 1] if i + 1 < len(times) else math.inf
            got = self._rates[currency] = (start, end, rate)
        return got[2]

    def assign(self, o: SimOrder, c: Candidate) -> None:
        """Give ``o`` to the candidate's trader: the attempt opens, money is held. The
        catalog's rules (``rules_broken``) are asked first: a policy's ``match`` may hold a
        candidate that something since has made ineligible."""
        check_assignable(self, o, c)
        self._assign(o, self.traders[c.trader_id], c.pricing, self._rate(o.currency), c)

    def _assign(
        self,
        o: SimOrder,
        t: SimTrader,
        pricing: OrderPricing,
        rate: str,
        c: Candidate | None = None,
    ) -> None:
        """:meth:`assign` without the rules: for the trader the filter has just found
        eligible (a dispatch), or after :meth:`assign` has asked them. ``rate`` is the
        currency's rate now (the one the candidates were priced at); ``c`` is built only for
        an emitter that reads it."""
        now = self.env._now
        if self._emits and c is None:
            c = Candidate(t.trader_id, t.score, len(t.active), pricing)
        self._touch(t)  # the slot-time since the trader's last change
        o.attempt += 1
        o.tried.add(t.trader_id)
        o.status, o.trader_id, o.pricing = po.ASSIGNED, t.trader_id, pricing
        o.rate = rate
        o.assigned_at, o.accept_by = now, now + self.accept_window
        if o.first_assigned is None:
            o.first_assigned = now
        if self._taken is not None:  # a dispatch is walking the queue: it removes the order
            self._taken.append(o)
        else:
            del self.pending[o.currency][o.order_id]
        t.active[o.order_id] = None
        if len(t.active) >= t.max_active_orders:
            self.free[o.currency].pop(t.trader_id, None)
        if self._money:
            if o.direction == "payin":
                t.held += pricing.payin_hold
            else:
                self.clients[o.client_id].held += pricing.client_payout_cost
        t.assigned_us.append(round(now * 1_000_000))
        t.pool._stale[t.row] = t  # t.pool.sync(t), written out
        self.log.append((now, "assigned", o.order_id, t.trader_id))
        if self._emits and c is not None:
            self.emitter.assigned(now, o, c, o.rate)
        self._respond(o, t)

    # ------------------------------------------------------------- the trader's side
    def _draws(self, o: SimOrder) -> list[float]:
        """The uniforms of the order's current attempt (:data:`DRAWS`; past :data:`PREDRAWN`
        attempts, fresh ones from the ``extra`` stream at each call)."""
        k = o.attempt - 1
        if k < PREDRAWN:
            j = k * DRAWS
            return o.u[j : j + DRAWS]
        fresh: list[float] = self._extra.random(DRAWS).tolist()
        return fresh

    def _respond(self, o: SimOrder, t: SimTrader) -> None:
        b = t.spec.behaviour
        k = o.attempt
        if k <= PREDRAWN:  # _draws(o), without the copy: the decision and the response delay
            j = (k - 1) * DRAWS
            u0, u1 = o.u[j], o.u[j + 1]
        else:
            u0, u1 = self._draws(o)[:2]
        if u0 < b.decline:
            delay, act = b.decline_delay.sample(u1), self._decline
        elif u0 < b.decline + b.ignore:
            delay, act = NEVER, self._decline
        else:
            delay, act = b.accept_delay.sample(u1), self._accept
        now = self.env._now
        if round((now + delay) * 1_000_000) <= round(o.accept_by * 1_000_000):
            self._after(now + delay, act, o, k)
        self._after(o.accept_by + self.sweep, self._expire_assignment, o, k)

    def _decline(self, ev: Direct) -> None:
        o, k = ev.arg, ev.k
        if o.attempt == k and o.status == po.ASSIGNED:
            now = self.env._now
            self.log.append((now, "declined", o.order_id, o.trader_id or ""))
            if self._emits:
                self.emitter.declined(now, o)
            self._end_attempt(o, commit=False)
            self._to_pending(o)

    def _expire_assignment(self, ev: Direct) -> None:
        o, k = ev.arg, ev.k
        if o.attempt == k and o.status == po.ASSIGNED:
            now = self.env._now
            self.log.append((now, "assignment_expired", o.order_id, o.trader_id or ""))
            if self._emits:
                self.emitter.assignment_expired(now, o)
            self._end_attempt(o, commit=False)
            self._to_pending(o)

    def _accept(self, ev: Direct) -> None:
        o, k = ev.arg, ev.k
        if o.attempt != k or o.status != po.ASSIGNED:
            return
        now = self.env._now
        o.status, o.accepted_at = po.IN_PROGRESS, now
        o.complete_by = now + self.complete_window
        tid = o.trader_id or ""
        self.log.append((now, "accepted", o.order_id, tid))
        if self._emits:
            self.emitter.accepted(now, o)
        self._after(o.complete_by + self.sweep, self._deadline_review, o, k)
        b = self.traders[tid].spec.behaviour
        u2 = o.u[(k - 1) * DRAWS + 2] if k <= PREDRAWN else self._draws(o)[2]
        work = b.complete.sample(u2)
        if o.direction == "payout" and self._receipts:
            self._after(now + work, self._upload, o, k)
        else:
            self._after(now + work, self._complete, o, k)

    def _open(self, o: SimOrder, k: int, *statuses: str) -> bool:
        return o.attempt == k and o.status in statuses

    def _deadline_review(self, ev: Direct) -> None:
        o, k = ev.arg, ev.k
        if o.attempt == k and o.status == po.IN_PROGRESS:
            o.status = po.IN_REVIEW
            now = self.env._now
            self.log.append((now, "review_started", o.order_id, o.trader_id or ""))
            if self._emits:
                self.emitter.deadline_review(now, o)

    def _upload(self, ev: Direct) -> None:
        o, k = ev.arg, ev.k
        if o.attempt != k or (o.status != po.IN_PROGRESS and o.status != po.IN_REVIEW):
            return
        now = self.env._now
        tid = o.trader_id or ""
        self.log.append((now, "receipt_uploaded", o.order_id, tid))
        if self._emits:
            self.emitter.receipt_uploaded(now, o)
        b = self.traders[tid].spec.behaviour
        u4 = o.u[(k - 1) * DRAWS + 4] if k <= PREDRAWN else self._draws(o)[4]
        self._after(now + b.analyse_delay.sample(u4), self._analyse, o, k)

    def _analyse(self, ev: Direct) -> None:
        o, k = ev.arg, ev.k
        if o.attempt != k or (o.status != po.IN_PROGRESS and o.status != po.IN_REVIEW):
            return
        now = self.env._now
        tid = o.trader_id or ""
        b = self.traders[tid].spec.behaviour
        u = self._draws(o)
        low = bool(u[3] < b.low_confidence)
        self.log.append((now, "receipt_analyzed", o.order_id, tid))
        if self._emits:
            self.emitter.receipt_analyzed(now, o, low)
        if low:
            if o.status == po.IN_PROGRESS:
                o.status = po.IN_REVIEW
                self.log.append((now, "review_started", o.order_id, tid))
            self._at(now + b.review.sample(u[5]), self._approve, o, k, "reviewer")
        else:
            self._at(now + 5.0, self._approve, o, k, "auto")

    def _approve(self, o: SimOrder, k: int, by: str) -> None:
        if o.attempt != k or (o.status != po.IN_PROGRESS and o.status != po.IN_REVIEW):
            return
        now = self.env._now
        self.log.append((now, "receipt_approved", o.order_id, o.trader_id or ""))
        if self._emits:
            self.emitter.receipt_approved(now, o, by)
        self._after(now + 10.0, self._complete, o, k)

    def _complete(self, ev: Direct) -> None:
        o, k = ev.arg, ev.k
        if o.attempt != k or (o.status != po.IN_PROGRESS and o.status != po.IN_REVIEW):
            return
        now = self.env._now
        t = self.traders[o.trader_id or ""]
        self.log.append((now, "completed", o.order_id, t.trader_id))
        if self._emits:
            self.emitter.completed(now, o)
        o.status, o.ended, o.outcome = po.COMPLETED, now, "completed"
        now_us = round(now * 1_000_000)
        t.completed_us.append(now_us)
        if now_us <= round(o.complete_by * 1_000_000):
            t.on_time_us.append(now_us)
        self._end_attempt(o, commit=True)
        if o.pricing is not None:
            self.revenue += o.pricing.platform_net
            t.completed += 1
            t.earnings += o.pricing.trader_reward
        if self.disputes is not None:
            self.disputes.completed(o)

    def _expire_order(self, ev: Direct) -> None:
        o = ev.arg
        if o.status == po.PENDING or o.status == po.ASSIGNED:
            self.log.append((self.env._now, "cancelled", o.order_id, o.trader_id or ""))
            if self._emits:
                self.emitter.cancelled(self.env._now, o, "expired")
            if o.status == po.ASSIGNED:
                self._end_attempt(o, commit=False)
            else:
                del self.pending[o.currency][o.order_id]
            o.status, o.ended, o.outcome = po.CANCELLED, self.env._now, "expired"

    def _end_attempt(self, o: SimOrder, *, commit: bool) -> None:
        """Close the open attempt: money captured or released, the trader's slot freed."""
        t = self.traders[o.trader_id or ""]
        now = self.env._now
        self._touch(t)  # the slot-time since the trader's last change
        p = o.pricing
        assert p is not None
        if self._money:
            c = self.clients[o.client_id]
            if o.direction == "payin":
                t.held -= p.payin_hold
                if commit:
                    t.balance -= p.payin_hold
                    c.balance += p.settlement_amount - p.platform_fee
            else:
                c.held -= p.client_payout_cost
                if commit:
                    c.balance -= p.client_payout_cost
                    t.balance += p.payout_credit
            if o.direction == "payin" or commit:
                self.hold_durations.append(now - o.assigned_at)
            self._seq += 1  # self._up(c), written out
            c.up_seq = self._seq
        del t.active[o.order_id]
        self._freed(t)
        t.pool._stale[t.row] = t  # t.pool.sync(t), written out
        if self.check:
            check_trader(self, t)

    # ----------------------------------------------------------- traders and money
    def _freed(self, t: SimTrader) -> None:
        """The trader may take more: back among the free ones, and a dispatch is due."""
        self._seq += 1  # self._up(t), written out
        t.up_seq = self._seq
        if t.online and not t.blocked and len(t.active) < t.max_active_orders:
            cur = t.spec.fiat_currency
            free = self.free[cur]
            if t.trader_id not in free:
                t.free_since = self.env._now
            free[t.trader_id] = t
            t.pool._stale[t.row] = t  # t.pool.sync(t), written out
            self._want(cur)

    def _online(self, t: SimTrader) -> None:
        if not t.online:
            self._touch(t)
            t.online = True
            self._sync(t)
            self.emitter.online(self.env._now, t.trader_id)
            self._log("online", None, t.trader_id)
            self._freed(t)

    def _offline(self, t: SimTrader) -> None:
        if t.online:
            self._touch(t)
            t.online = False
            self.free[t.spec.fiat_currency].pop(t.trader_id, None)
            self._sync(t)
            self.emitter.offline(self.env._now, t.trader_id)
            self._log("offline", None, t.trader_id)

    def _top_ups(self) -> None:
        now = self.env._now
        for t in self.traders.values():
            target = t.spec.deposit
            if t.available < target * t.spec.top_up_below and target - t.available > 0:
                amount = target - t.available
                t.balance += amount
                self._sync(t)
                self.emitter.trader_topped_up(now, t.trader_id, amount)
                self._freed(t)
        for c in self.clients.values():
            target = c.spec.balance
            if c.available < target * c.spec.top_up_below and target - c.available > 0:
                amount = target - c.available
                c.balance += amount
                self._up(c)
                self.emitter.client_topped_up(now, c.client_id, amount)
                for cur in self.pending:
                    self._want(cur)

    def _publish_ratings(self) -> None:
        """The rating service runs a minute after each ``as_of`` (so every event up to it is in)."""
        self._at(self.env._now + RATING_DELAY, self._publish, self.env._now)

    def _publish(self, as_of: float) -> None:
        """Publish every trader's rating over the window ending at ``as_of`` (catalog 3.7)."""
        now = self.env._now
        hi = _us(as_of)
        lo = hi - self.cfg.rating_window_days * 86_400 * _US
        for t in self.traders.values():
            counts = RatingCounts(
                _count(t.assigned_us, lo, hi),
                _count(t.completed_us, lo, hi),
                _count(t.on_time_us, lo, hi),
                _count(t.disputed_us, lo, hi),
            )
            t.score = score(counts)
            self.pools[t.spec.fiat_currency].sync(t, score=True)
            self.emitter.rating(now, t.trader_id, as_of, t.score)
        for cur in self.pending:
            self._want(cur)

    def _touch(self, t: SimTrader) -> None:
        """Accumulate the trader's busy and online slot-time since the last change (after the
        warm-up only)."""
        now, last, warmup = self.env._now, t._last, self._warmup
        since = last if last >= warmup else warmup  # max(last, warmup), without the call
        if now > since:
            dt = now - since
            t.busy_time += dt * len(t.active)
            if t.online:
                t.capacity_time += dt * t.max_active_orders
        t._last = now

    def _log(self, kind: str, o: SimOrder | None, trader_id: str) -> None:
        self.log.append((self.env._now, kind, o.order_id if o else "", trader_id))


def _count(stamps: list[int], lo: int, hi: int) -> int:
    """Stamps in ``(lo, hi]`` (the catalog's rating window)."""
    return bisect.bisect_right(stamps, hi) - bisect.bisect_right(stamps, lo)


def _cumulative(mix: tuple[tuple[str, float], ...]) -> list[tuple[float, str]]:
    """The running shares of a mix, in its order (a draw picks the first share above it)."""
    total = sum(w for _, w in mix)
    out, acc = [], 0.0
    for name, w in mix:
        acc += w / total
        out.append((acc, name))
    return out


def _pick_from(cumulative: list[tuple[float, str]], u: float) -> str:
    """The name whose running share first exceeds ``u`` (the last one if none does)."""
    for acc, name in cumulative:
        if u < acc:
            return name
    return cumulative[-1][1]
