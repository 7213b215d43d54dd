"""Stress scenarios: load the platform until the policies start to differ.

At the calibrated load (about 14 % of the traders' capacity) every policy fills every order;
what tells policies apart is how they behave when capacity is short. A :class:`Stress` changes
a configuration in four ways, each a parameter and each testable on its own:

* ``utilisation``: the offered load ρ. The arrival rate is set from the pool's service
  capacity (:func:`service_capacity`), ``λ = ρ · C``, so ρ = 0.5 is half the capacity and
  ρ = 1.1 is more demand than the traders can serve (orders expire);
* ``spike``: demand times ``spike`` for ``spike_hours`` from hour ``spike_at`` (a surge of
  :class:`~.config.Arrivals`, a non-homogeneous Poisson process);
* ``offline``: that share of the traders of each currency (rounded half to even, chosen by
  ``seed``) offline from ``offline_from`` to ``offline_until`` hours (default the whole run):
  the load is set on the full roster, so an outage raises the load on the rest;
* ``outages_per_day``: besides that fixed share, every trader drops out now and then: outages
  start at Poisson times of that rate per trader per day and last an exponential time of mean
  ``outage_minutes`` (drawn by ``seed``, trader by trader in id order), cut out of its shifts;
* ``deposits``: each trader's deposit kept at this share (integer minor units, half to even),
  as if payouts had drained it, so the deposit rule (catalog 4.5) binds before the slots do.

:data:`STRESSES` names the presets (``workbench simulate --stress NAME``);
:func:`apply_stress` applies one to a configuration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .config import NEVER, Behaviour, SimConfig, TraderSpec

#: Seconds from an approval to the completion, and from a confident analysis to the automatic
#: approval, as the model times them (model.py: ``_approve`` and ``_analyse``).
_APPROVAL_TO_COMPLETE = 10.0
_AUTO_APPROVAL = 5.0


def slot_seconds(b: Behaviour, accept_window: float, payout_share: float, receipts: bool) -> float:
    """Expected seconds of one trader slot consumed per order served, for behaviour ``b``.

    An attempt is accepted with probability ``a = 1 − decline − ignore``. Per attempt the slot
    is held: on acceptance, accept delay + work (+ for a payout with receipts: analysis delay +
    either the review or the 5 s automatic approval, + 10 s to complete); on a decline, the
    decline delay; on an ignore, the accept window (the scheduler expires it). An order needs
    1/a attempts on average, so::

        T = [a (E accept + E work + share_payout · E receipt) + d E decline + g window] / a
    """
    accept = 1.0 - b.decline - b.ignore
    if accept <= 0:
        raise ValueError("traders who never accept have no service capacity")
    receipt = 0.0
    if receipts:
        review = b.low_confidence * b.review.mean() + (1 - b.low_confidence) * _AUTO_APPROVAL
        receipt = b.analyse_delay.mean() + review + _APPROVAL_TO_COMPLETE
    served = b.accept_delay.mean() + b.complete.mean() + payout_share * receipt
    per_attempt = accept * served + b.decline * b.decline_delay.mean() + b.ignore * accept_window
    return per_attempt / accept


def online_share(spec: TraderSpec, start: float, end: float) -> float:
    """The share of ``[start, end)`` seconds the trader is online (no shifts: all of it)."""
    if end <= start:
        raise ValueError("an empty window has no online share")
    if not spec.shifts:
        return 1.0
    covered = sum(max(0.0, min(off, end) - max(on, start)) for on, off in spec.shifts)
    return min(1.0, covered / (end - start))


def service_capacity(config: SimConfig, by_currency: bool = False) -> float | dict[str, float]:
    """Orders per second the traders can serve, averaged over the measured window
    ``[warmup, horizon)``::

        C = Σ_i  cap_i · online_i / T_i

    ``cap_i`` the trader's ``max_active_orders`` (slots), ``online_i`` its online share of the
    window (:func:`online_share`), ``T_i`` its :func:`slot_seconds` per order served. For the
    M/M/c preset (one slot, always online, instant acceptance, service of mean 1/μ) this is
    exactly ``c μ``. Not counted: the daily profile (the peak hour runs hotter than the
    average), the amount limits, and deposits (which :func:`apply_stress`'s ``deposits``
    makes bind on purpose)."""
    payout = 0.0 if config.arrivals is None else 1.0 - config.arrivals.payin_share
    window = config.deadlines.accept.total_seconds()
    lo, hi = config.warmup, config.horizon
    out: dict[str, float] = {}
    for t in config.traders:
        per = slot_seconds(t.behaviour, window, payout, config.receipts)
        out[t.fiat_currency] = out.get(t.fiat_currency, 0.0) + (
            t.max_active_orders * online_share(t, lo, hi) / per
        )
    return out if by_currency else sum(out.values())


@dataclass(frozen=True)
class Stress:
    """A stress scenario (see the module's docstring); the defaults change nothing."""

    name: str = "custom"
    utilisation: float | None = None
    spike: float = 1.0
    spike_at: float = 14.0  # hours from the start
    spike_hours: float = 1.0
    offline: float = 0.0
    offline_from: float = 0.0  # hours
    offline_until: float | None = None  # hours; None: to the end
    deposits: float = 1.0
    outages_per_day: float = 0.0
    outage_minutes: float = 60.0
    seed: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if self.utilisation is not None and not 0 < self.utilisation <= 5:
            raise ValueError(f"utilisation must be in (0, 5], got {self.utilisation}")
        if self.spike < 0 or self.spike_hours <= 0:
            raise ValueError("a spike needs a factor >= 0 and a positive duration")
        if not 0 <= self.offline <= 1:
            raise ValueError(f"offline is a share of traders in [0, 1], got {self.offline}")
        if self.outages_per_day < 0 or self.outage_minutes <= 0:
            raise ValueError("outages need a rate >= 0 per day and a positive mean duration")
        if self.deposits < 0:
            raise ValueError(f"deposits is a share of the deposit (>= 0), got {self.deposits}")


#: The named presets: the load from half the capacity to overload, then each shock at a load
#: where it is not by itself a problem, then all of them at once.
STRESSES: dict[str, Stress] = {
    s.name: s
    for s in (
        Stress("calm", utilisation=0.5, description="half the traders' capacity"),
        Stress("busy", utilisation=0.8, description="80 % of capacity"),
        Stress("saturated", utilisation=0.95, description="95 % of capacity"),
        Stress("overloaded", utilisation=1.1, description="10 % more demand than capacity"),
        Stress(
            "spike",
            utilisation=0.5,
            spike=3.0,
            description="half capacity, demand x3 for one hour from 14:00 of the first day",
        ),
        Stress(
            "outage",
            utilisation=0.6,
            offline=0.3,
            description="60 % of capacity, 30 % of each currency's traders offline throughout",
        ),
        Stress(
            "flaky",
            utilisation=0.6,
            outages_per_day=3.0,
            outage_minutes=45.0,
            description="60 % of capacity, every trader drops out 3 times a day for 45 min",
        ),
        Stress(
            "drained",
            utilisation=0.6,
            deposits=0.05,
            description="60 % of capacity, deposits drained to 5 % (the deposit rule binds)",
        ),
        Stress(
            "storm",
            utilisation=0.8,
            spike=3.0,
            offline=0.2,
            deposits=0.1,
            description="80 % load, a x3 spike, 20 % of traders offline, deposits at 10 %",
        ),
    )
}


def stress_named(name: str | Stress) -> Stress:
    """A preset by name (or the stress given)."""
    if isinstance(name, Stress):
        return name
    try:
        return STRESSES[name]
    except KeyError:
        raise ValueError(f"unknown stress {name!r}; presets: {', '.join(STRESSES)}") from None


def offline_traders(config: SimConfig, share: float, seed: int = 0) -> set[str]:
    """Which traders go offline: in each currency ``round_half_even(share · n)`` of its ``n``
    traders, drawn without replacement by ``seed`` (so no currency loses more than its share)."""
    rng = np.random.default_rng(seed)
    by_currency: dict[str, list[str]] = {}
    for t in config.traders:
        by_currency.setdefault(t.fiat_currency, []).append(t.trader_id)
    out: set[str] = set()
    for cur in sorted(by_currency):
        ids = sorted(by_currency[cur])
        k = round(Fraction(share).limit_denominator(10**6) * len(ids))
        out.update(str(x) for x in rng.choice(ids, size=k, replace=False))
    return out


def cut_shifts(
    shifts: tuple[tuple[float, float], ...], start: float, end: float
) -> tuple[tuple[float, float], ...]:
    """``shifts`` (empty: online throughout) with ``[start, end)`` taken out. Nothing left is
    one shift that never comes (``(NEVER, NEVER)``), since no shifts would mean always online."""
    base = shifts or ((0.0, NEVER),)
    out: list[tuple[float, float]] = []
    for on, off in base:
        for a, b in ((on, min(off, start)), (max(on, end), off)):
            if b > a:
                out.append((a, b))
    return tuple(out) or ((NEVER, NEVER),)


def outage_windows(
    config: SimConfig, per_day: float, mean_seconds: float, seed: int = 0
) -> dict[str, list[tuple[float, float]]]:
    """Each trader's outages over the run: starts at Poisson times of ``per_day`` a day, each
    lasting an exponential time of mean ``mean_seconds`` (windows may overlap; cutting them all
    out is their union). Drawn by ``seed`` trader by trader in id order, so a trader's outages
    do not depend on how many others there are before it in the configuration."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[float, float]]] = {}
    for tid in sorted(t.trader_id for t in config.traders):
        t, windows = 0.0, []
        while True:
            t += float(rng.exponential(86_400.0 / per_day))
            if t >= config.horizon:
                break
            windows.append((t, t + float(rng.exponential(mean_seconds))))
        out[tid] = windows
    return out


def drain(deposit: int, share: float) -> int:
    """``deposit · share`` in integer minor units, rounded half to even."""
    return round(deposit * Fraction(share).limit_denominator(10**9))


def at_utilisation(config: SimConfig, rho: float, capacity: float | None = None) -> SimConfig:
    """``config`` with synthetic demand of ``λ = ρ · C`` orders per second
    (``orders_per_day = ρ · C · 86 400``), ``C`` from :func:`service_capacity` unless given."""
    if config.arrivals is None:
        raise ValueError("a utilisation target needs synthetic arrivals; a trace has its orders")
    c = service_capacity(config) if capacity is None else capacity
    assert isinstance(c, float)
    if c <= 0:
        raise ValueError("the traders have no service capacity in the measured window")
    arrivals = dataclasses.replace(config.arrivals, orders_per_day=rho * c * 86_400)
    return dataclasses.replace(config, arrivals=arrivals)


def apply_stress(config: SimConfig, stress: str | Stress) -> SimConfig:
    """``config`` under ``stress`` (a preset's name or a :class:`Stress`): the load set on the
    full roster first, then the spike, the outage and the drained deposits."""
    s = stress_named(stress)
    cfg = config
    if s.utilisation is not None:
        cfg = at_utilisation(cfg, s.utilisation)
    if s.spike != 1.0:
        if cfg.arrivals is None:
            raise ValueError("a demand spike needs synthetic arrivals; a trace has its orders")
        start = s.spike_at * 3600.0
        end = start + s.spike_hours * 3600.0
        if end > cfg.horizon:
            raise ValueError(
                f"the spike ({s.spike_at:g} h + {s.spike_hours:g} h) ends after the run "
                f"({cfg.days:g} days)"
            )
        surges = (*cfg.arrivals.surges, (start, end, float(s.spike)))
        cfg = dataclasses.replace(cfg, arrivals=dataclasses.replace(cfg.arrivals, surges=surges))
    if s.offline > 0:
        gone = offline_traders(cfg, s.offline, s.seed)
        lo = s.offline_from * 3600.0
        hi = NEVER if s.offline_until is None else s.offline_until * 3600.0
        cfg = dataclasses.replace(
            cfg,
            traders=tuple(
                dataclasses.replace(t, shifts=cut_shifts(t.shifts, lo, hi))
                if t.trader_id in gone
                else t
                for t in cfg.traders
            ),
        )
    if s.outages_per_day > 0:
        windows = outage_windows(cfg, s.outages_per_day, s.outage_minutes * 60.0, s.seed)
        traders = []
        for t in cfg.traders:
            shifts = t.shifts
            for lo, hi in windows[t.trader_id]:
                shifts = cut_shifts(shifts, lo, hi)
            traders.append(dataclasses.replace(t, shifts=shifts))
        cfg = dataclasses.replace(cfg, traders=tuple(traders))
    if s.deposits != 1.0:
        cfg = dataclasses.replace(
            cfg,
            traders=tuple(
                dataclasses.replace(t, deposit=drain(t.deposit, s.deposits)) for t in cfg.traders
            ),
        )
    return cfg


def stress_table(presets: Mapping[str, Stress] = STRESSES) -> list[dict[str, object]]:
    """The presets as rows (for ``--help``, the docs and a notebook)."""
    return [
        {
            "stress": s.name,
            "utilisation": s.utilisation,
            "spike": s.spike,
            "offline": s.offline,
            "outages_per_day": s.outages_per_day,
            "deposits": s.deposits,
            "what": s.description,
        }
        for s in presets.values()
    ]
