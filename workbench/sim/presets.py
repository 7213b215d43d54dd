"""Ready-made configurations: the textbook queue the model is validated against, and a synthetic
platform shaped like the generator's (three fiat currencies, shifts round the clock) for studies
without a database."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from ..domain.money import exponent
from ..domain.scheduler import Deadlines
from .config import Arrivals, Behaviour, ClientSpec, Dist, Rates, SimConfig, TraderSpec

_NEVER = timedelta(days=100_000)

#: The generator's fiat currencies: (share of orders, rate per USDT, median order in major units).
FIAT: dict[str, tuple[float, str, int]] = {
    "RUB": (0.5, "92.50", 8_000),
    "KZT": (0.35, "480.00", 40_000),
    "UZS": (0.15, "12750.00", 1_000_000),
}
USDT = 10 ** exponent("USDT")


def mmc_config(
    c: int,
    lam: float,
    mu: float,
    *,
    days: float = 20.0,
    warmup: float = 86_400.0,
    patience: float | None = None,
    cancel_rate: float = 0.0,
) -> SimConfig:
    """The model reduced to M/M/c: ``c`` identical traders with one slot, always online, no
    money, no limits, no deadlines, exponential service of rate ``mu`` (per second) from the
    assignment, Poisson arrivals of rate ``lam``. With ``patience`` (mean seconds), orders
    still waiting abandon after an exponential patience (the order expires): M/M/c+M (Erlang
    A); ``cancel_rate`` (θ per second) is the same queue with the client cancelling instead."""
    instant = Behaviour(
        decline=0.0, ignore=0.0, accept_delay=Dist.const(0.0), complete=Dist.exp(1 / mu)
    )
    traders = tuple(
        TraderSpec(f"t{i:03d}", "RUB", 0, 10**15, 1, 0, 0, behaviour=instant) for i in range(c)
    )
    return SimConfig(
        traders=traders,
        clients=(ClientSpec("c1", 0, 0),),
        arrivals=Arrivals(
            orders_per_day=lam * 86_400,
            amounts=(("RUB", Dist.const(100.0)),),
            payin_share=1.0,
            patience=None if patience is None else Dist.exp(patience),
        ),
        days=days,
        deadlines=Deadlines(_NEVER, _NEVER, _NEVER),
        sweep_delay=0.0,
        money=False,
        receipts=False,
        rating_every=0.0,
        top_up_every=0.0,
        warmup=warmup,
        cancel_rate=cancel_rate,
    )


def synthetic_config(
    *,
    traders: int = 60,
    clients: int = 8,
    orders_per_day: float = 3_000.0,
    days: float = 2.0,
    seed: int = 0,
    warmup: float = 6 * 3600.0,
) -> SimConfig:
    """A platform like the generator's: traders over three currencies on 12-hour shifts spread
    round the clock (one in five works 22 hours), limits and deposits like the generator's,
    arrivals peaking in the afternoon. ``seed`` draws the traders (not the run's randomness)."""
    rng = np.random.default_rng(seed)
    currencies = list(FIAT)
    specs = []
    for i in range(traders):
        cur = currencies[i] if i < len(currencies) else str(rng.choice(currencies, p=_shares()))
        median, minor = FIAT[cur][2], 10 ** exponent(cur)
        begin = (24.0 * i / traders + float(rng.uniform(-1, 1))) % 24
        length = 22.0 if i % 5 == 0 else float(rng.uniform(10, 14))
        shifts = []
        for day in range(int(days) + 2):
            on = (day - 1) * 24 + begin
            off = on + length
            if off > 0:
                shifts.append((max(0.0, on) * 3600, off * 3600))
        specs.append(
            TraderSpec(
                trader_id=f"tr-{i:04d}",
                fiat_currency=cur,
                min_amount=max(1, median // 40) * minor,
                max_amount=median * int(rng.choice([8, 12, 20])) * minor,
                max_active_orders=int(rng.choice([2, 3, 3, 4, 5])),
                reward_bps=int(rng.choice([40, 60, 80, 100, 120])),
                deposit=int(rng.choice([2_000, 3_000, 4_000, 6_000])) * USDT,
                shifts=tuple(shifts),
            )
        )
    return SimConfig(
        traders=tuple(specs),
        clients=tuple(
            ClientSpec(f"cl-{i:02d}", int(rng.choice([150, 175, 200, 225, 250])), 50_000 * USDT)
            for i in range(1, clients + 1)
        ),
        arrivals=Arrivals(
            orders_per_day=orders_per_day,
            hourly=tuple(
                0.35 + 0.65 * float(np.exp(-((h + 0.5 - 14.5) ** 2) / 32)) for h in range(24)
            ),
            currencies=tuple((c, FIAT[c][0]) for c in currencies),
            amounts=tuple(
                (c, Dist.lognormal(FIAT[c][2] * 10 ** exponent(c), 0.8)) for c in currencies
            ),
        ),
        rates=Rates(tuple((c, ((0.0, FIAT[c][1]),)) for c in currencies)),
        days=days,
        warmup=warmup,
    )


def _shares() -> list[float]:
    w = [FIAT[c][0] for c in FIAT]
    return [x / sum(w) for x in w]
