"""What a simulation is made of: traders, clients, arrivals, behaviour and the platform's settings.

Plain frozen dataclasses, so a configuration can be built by hand (a test's M/M/c), by
:mod:`.calibrate` from a replayed database, or from a trace of real orders, and be compared and
pickled (a sweep ships them to Dask workers). Times are seconds from the simulation's start;
money is integer minor units, as everywhere in the workbench.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

from ..domain.scheduler import Deadlines

try:  # what NormalDist().inv_cdf(p) computes after its argument checks (C, since Python 3.10)
    from statistics import _normal_dist_inv_cdf  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - another Python's statistics module

    def _normal_dist_inv_cdf(p: float, mu: float, sigma: float) -> float:
        return NormalDist(mu, sigma).inv_cdf(p)


#: The clamp that keeps a lognormal's uniform inside (0, 1) for the normal quantile.
_LO, _HI = 1e-12, 1 - 1e-12
NEVER = 1e15  # seconds: a deadline that never comes (an M/M/c model has none)


@dataclass(frozen=True, slots=True)
class Dist:
    """A distribution of non-negative seconds, sampled by inverse CDF from one uniform.

    Inverse-CDF sampling is what makes common random numbers work: the same uniform drawn for
    an order gives the "same" delay under two policies even when different traders serve it.

    ``kind`` is ``const`` (``a``), ``exp`` (mean ``a``), ``lognormal`` (median ``a``, shape
    ``b``), ``uniform`` (``a``..``b``) or ``empirical`` (the sorted ``values``).
    """

    kind: str
    a: float = 0.0
    b: float = 0.0
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("const", "exp", "lognormal", "uniform", "empirical"):
            raise ValueError(f"unknown distribution kind {self.kind!r}")
        if self.kind == "empirical" and not self.values:
            raise ValueError("an empirical distribution needs values")
        if self.kind == "empirical" and list(self.values) != sorted(self.values):
            object.__setattr__(self, "values", tuple(sorted(self.values)))

    def sample(self, u: float) -> float:
        """The ``u``-quantile (``0 <= u < 1``)."""
        k = self.kind
        if k == "lognormal":  # the model's most frequent: work times, amounts
            # NormalDist().inv_cdf of the clamped u, without its checks (the clamp is them)
            p = u if u > _LO else _LO
            return self.a * math.exp(self.b * _normal_dist_inv_cdf(p if p < _HI else _HI, 0.0, 1.0))
        if k == "const":
            return self.a
        if k == "exp":
            return -self.a * math.log1p(-u)
        if k == "uniform":
            return self.a + (self.b - self.a) * u
        v = self.values
        return v[min(int(u * len(v)), len(v) - 1)]

    def mean(self) -> float:
        k = self.kind
        if k in ("const", "exp"):
            return self.a
        if k == "lognormal":
            return self.a * math.exp(self.b**2 / 2)
        if k == "uniform":
            return (self.a + self.b) / 2
        return sum(self.values) / len(self.values)

    @staticmethod
    def const(v: float) -> Dist:
        return Dist("const", v)

    @staticmethod
    def exp(mean: float) -> Dist:
        return Dist("exp", mean)

    @staticmethod
    def lognormal(median: float, sigma: float) -> Dist:
        return Dist("lognormal", median, sigma)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How one trader responds to an assignment and works an order.

    ``decline`` and ``ignore`` are probabilities per assignment (the rest accept); an accept
    slower than the accept window is an ignore in effect (the scheduler expires it).
    ``complete`` is from acceptance to completion (for a payout order, to the receipt upload).
    ``low_confidence`` is the share of receipts the analyser scores below 0.8 (a review).
    """

    decline: float = 0.06
    ignore: float = 0.04
    accept_delay: Dist = Dist("uniform", 5.0, 100.0)
    decline_delay: Dist = Dist("uniform", 10.0, 60.0)
    complete: Dist = Dist("lognormal", 600.0, 0.6)
    low_confidence: float = 0.1
    analyse_delay: Dist = Dist("uniform", 8.0, 60.0)
    review: Dist = Dist("uniform", 300.0, 1800.0)

    def __post_init__(self) -> None:
        if not (self.decline >= 0 and self.ignore >= 0 and self.decline + self.ignore <= 1):
            raise ValueError(f"decline {self.decline} and ignore {self.ignore} are not shares")


@dataclass(frozen=True, slots=True)
class TraderSpec:
    """A trader as registered, with the shifts it works and how it behaves."""

    trader_id: str
    fiat_currency: str
    min_amount: int
    max_amount: int
    max_active_orders: int
    reward_bps: int
    deposit: int
    settlement_currency: str = "USDT"
    #: ``(on, off)`` seconds from the start; empty means online all the time.
    shifts: tuple[tuple[float, float], ...] = ()
    behaviour: Behaviour = field(default_factory=Behaviour)
    #: Top the deposit up to ``deposit`` when the available part falls below this share of it.
    top_up_below: float = 0.4


@dataclass(frozen=True, slots=True)
class ClientSpec:
    client_id: str
    fee_bps: int
    balance: int
    settlement_currency: str = "USDT"
    #: Top the balance up to ``balance`` when it falls below this share of it.
    top_up_below: float = 0.25


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """One order of a trace: when it arrives (seconds from the start) and what it asks."""

    at: float
    client_id: str
    direction: str
    amount: int
    currency: str
    order_id: str = ""


@dataclass(frozen=True, slots=True)
class Arrivals:
    """Synthetic demand: a non-homogeneous Poisson process from a daily profile.

    ``hourly`` holds 24 relative intensities (scaled so a day brings ``orders_per_day`` on
    average). Each order's currency, direction, client and amount are drawn from the mixes;
    ``amounts`` maps a currency to its amount distribution in minor units.
    """

    orders_per_day: float
    hourly: tuple[float, ...] = (1.0,) * 24
    currencies: tuple[tuple[str, float], ...] = (("RUB", 1.0),)
    payin_share: float = 0.6
    amounts: tuple[tuple[str, Dist], ...] = (("RUB", Dist("lognormal", 800_000.0, 0.8)),)
    #: Seconds an order waits for a trader before it expires (``None``: the platform default).
    patience: Dist | None = None
    #: Demand surges ``(start, end, factor)`` in seconds from the start: the rate in
    #: ``[start, end)`` is the profile's times ``factor`` (a stress scenario's spike).
    surges: tuple[tuple[float, float, float], ...] = ()

    def __post_init__(self) -> None:
        if len(self.hourly) != 24 or min(self.hourly) < 0 or max(self.hourly) <= 0:
            raise ValueError("hourly needs 24 non-negative intensities, not all zero")
        for start, end, factor in self.surges:
            if not (0 <= start < end and factor >= 0):
                raise ValueError(
                    f"a surge needs 0 <= start < end and factor >= 0: {start, end, factor}"
                )

    def rate_at(self, t: float) -> float:
        """Orders per second at ``t`` seconds from the start (a midnight start)."""
        mean = sum(self.hourly) / 24
        rate = self.orders_per_day / 86_400 * self.hourly[int(t // 3600) % 24] / mean
        for start, end, factor in self.surges:
            if start <= t < end:
                rate *= factor
        return rate

    def max_rate(self) -> float:
        """A bound on :meth:`rate_at` (the thinning's envelope): the profile's peak times every
        surge factor above 1 (overlapping surges multiply)."""
        top = self.orders_per_day / 86_400 * max(self.hourly) / (sum(self.hourly) / 24)
        for _, _, factor in self.surges:
            top *= max(1.0, factor)
        return top


_RATE_INDEX: dict[int, tuple[Rates, dict[str, tuple[list[float], list[str]]]]] = {}


@dataclass(frozen=True, slots=True)
class Rates:
    """Exchange rates (fiat per settlement unit) over time: ``(t, rate)`` steps per currency."""

    steps: tuple[tuple[str, tuple[tuple[float, str], ...]], ...] = (("RUB", ((0.0, "92.50"),)),)

    def at(self, currency: str, t: float) -> str:
        index = self._index()
        if currency not in index:
            raise KeyError(f"no rate for {currency}")
        times, values = index[currency]
        return values[max(bisect_right(times, t) - 1, 0)]

    def _index(self) -> dict[str, tuple[list[float], list[str]]]:
        """Step times and values per currency, built once (the model asks at every pricing)."""
        cached = _RATE_INDEX.get(id(self))
        if cached is None or cached[0] is not self:
            index = {c: ([s for s, _ in ser], [v for _, v in ser]) for c, ser in self.steps}
            cached = _RATE_INDEX[id(self)] = (self, index)
        return cached[1]


@dataclass(frozen=True, slots=True)
class Withdrawals:
    """Payouts (catalog 3.5): clients withdrawing their balance, traders their deposit.

    Each client (trader) asks for a withdrawal at Poisson times of ``client_per_day``
    (``trader_per_day``) a day, of ``client_share`` (``trader_share``) of what it has available
    then, in whole settlement units, plus ``fee`` minor units; a withdrawal smaller than
    ``minimum`` minor units is not asked for. The payout desk pays it after ``pay_delay`` and it
    is confirmed ``confirm_delay`` later (the money leaves then); ``fail`` is the share the bank
    rejects at the first step (the money comes back). A rate of 0 is off.
    """

    client_per_day: float = 0.0
    trader_per_day: float = 0.0
    client_share: float = 0.2
    trader_share: float = 0.3
    fee: int = 1_000_000
    minimum: int = 50_000_000
    pay_delay: Dist = Dist("uniform", 600.0, 1800.0)
    confirm_delay: Dist = Dist("uniform", 300.0, 1500.0)
    fail: float = 0.05

    def __post_init__(self) -> None:
        if min(self.client_per_day, self.trader_per_day) < 0:
            raise ValueError("withdrawal rates are per day and not negative")
        for name in ("client_share", "trader_share", "fail"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a share in [0, 1], got {getattr(self, name)}")
        if self.fee < 0 or self.minimum < 0:
            raise ValueError("fee and minimum are minor units, not negative")


@dataclass(frozen=True, slots=True)
class Disputes:
    """Disputes of completed orders (catalog 3.3: ``disputed``, then ``dispute_resolved``).

    A completed order is disputed with probability ``share``, ``delay`` after its completion;
    support resolves it ``resolve`` later, ``reversed`` (the money goes back: catalog 3.3's
    ``reverse:order:<id>`` plan) with probability ``reversed``, ``upheld`` otherwise. A reversal
    the paying side cannot cover (a payout order's trader deposit, a payin order's client
    balance) is upheld, as support would not book a negative available amount.
    """

    share: float = 0.0
    reversed: float = 0.4
    delay: Dist = Dist("uniform", 1800.0, 6 * 3600.0)
    resolve: Dist = Dist("uniform", 3600.0, 6 * 3600.0)

    def __post_init__(self) -> None:
        if not (0 <= self.share <= 1 and 0 <= self.reversed <= 1):
            raise ValueError(f"share {self.share} and reversed {self.reversed} are shares")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything one replication needs besides the policy and the seed."""

    traders: tuple[TraderSpec, ...]
    clients: tuple[ClientSpec, ...]
    arrivals: Arrivals | None = None
    trace: tuple[OrderSpec, ...] = ()
    rates: Rates = field(default_factory=Rates)
    days: float = 1.0
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    deadlines: Deadlines = field(default_factory=Deadlines)
    #: The scheduler acts on a deadline this many seconds after it (the platform sweeps each second).
    sweep_delay: float = 1.0
    #: Deposits and balances: held at assignment, checked by the rules. Off for a pure queue.
    money: bool = True
    #: Payout orders go through a receipt (upload, analysis, approval or review) before completion.
    receipts: bool = True
    #: Ratings published every this many seconds over ``rating_window_days`` (0: never).
    rating_every: float = 12 * 3600.0
    rating_window_days: int = 1
    #: Deposits and balances running low are topped up on this period (0: never).
    top_up_every: float = 3600.0
    #: Observations start here (seconds); the run before it is the warm-up, stated in every result.
    warmup: float = 0.0
    #: Client cancellations (abandonment): an order still pending is cancelled by its client
    #: (``client_request``) after an exponential patience of rate ``cancel_rate`` per second
    #: from its creation (0: never). With one-slot traders this is the M/M/c+M queue, Erlang A.
    cancel_rate: float = 0.0
    #: Payouts of client balances and trader deposits (None: none).
    withdrawals: Withdrawals | None = None
    #: Disputes of completed orders (None: none).
    disputes: Disputes | None = None

    def __post_init__(self) -> None:
        if self.cancel_rate < 0:
            raise ValueError(f"cancel_rate is per second and not negative, got {self.cancel_rate}")
        if (self.arrivals is None) == (not self.trace):
            raise ValueError("give either arrivals (synthetic demand) or a trace of orders")
        ids = [t.trader_id for t in self.traders]
        if len(set(ids)) != len(ids):
            raise ValueError("trader ids must be unique")
        if self.days <= 0:
            raise ValueError("days must be positive")

    @property
    def horizon(self) -> float:
        return self.days * 86_400.0

    def when(self, t: float) -> datetime:
        """The wall-clock time of ``t`` seconds, to the microsecond (events carry these)."""
        return self.start + timedelta(microseconds=round(t * 1_000_000))


def seconds(d: timedelta) -> float:
    return d.total_seconds()
