"""Assignment policies for a notebook: who got the work under each policy (per trader), and the
Lorenz curves and Gini coefficients of orders and earnings across traders.

A run here is exactly a cell of :func:`workbench.sim.compare`: the same configuration, seed and
replication on common random numbers, so its Gini coefficients are that replication's
``gini_orders`` and ``gini_earnings``.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ..sim.config import SimConfig
from ..sim.metrics import traders_frame
from ..sim.model import Simulation
from ..sim.policies import make_policy
from ..sim.stats import gini, lorenz
from ..sim.streams import Streams
from ..sim.study import PolicyLike, policy_name, stream_index


def traders_by_policy(
    config: SimConfig,
    policies: Sequence[PolicyLike],
    *,
    seed: int = 0,
    replication: int = 0,
    common: bool = True,
) -> pl.DataFrame:
    """Replication ``replication`` of every policy, one row per trader present after the
    warm-up (:func:`workbench.sim.traders_frame`, ``in_window``) with a leading ``policy``:
    ``completed`` orders of the cohort and their ``earnings`` (rewards, integer minor units)."""
    frames = []
    for policy in policies:
        streams = Streams.for_policy(seed, replication, stream_index(policy), common=common)
        instance = make_policy(policy) if isinstance(policy, str) else policy()
        sim = Simulation(config, instance, streams=streams).run()
        frame = traders_frame(sim).filter(pl.col("in_window"))
        frames.append(frame.select(pl.lit(policy_name(policy)).alias("policy"), pl.all()))
    return pl.concat(frames)


def lorenz_curves(traders: pl.DataFrame, value: str = "completed") -> pl.DataFrame:
    """Per policy of ``traders`` (from :func:`traders_by_policy`): the Lorenz curve of
    ``value`` across its traders (:func:`workbench.sim.stats.lorenz`) and its ``gini``."""
    frames = []
    for (policy,), group in traders.group_by("policy", maintain_order=True):
        values = group[value].to_list()
        curve = lorenz(values)
        frames.append(
            curve.select(
                pl.lit(policy).alias("policy"),
                pl.all(),
                pl.lit(gini(values)).alias("gini"),
            )
        )
    return pl.concat(frames)


def ginis(traders: pl.DataFrame, values: Sequence[str] = ("completed", "earnings")) -> pl.DataFrame:
    """Per policy, the Gini coefficient of each of ``values`` across its traders."""
    rows = []
    for (policy,), group in traders.group_by("policy", maintain_order=True):
        rows.append({"policy": policy, **{f"gini_{v}": gini(group[v].to_list()) for v in values}})
    return pl.DataFrame(
        rows, schema={"policy": pl.String, **{f"gini_{v}": pl.Float64 for v in values}}
    )


def money_metrics(config: SimConfig) -> dict[str, str]:
    """The comparison metrics that are money, with their currency (for the figures and
    tables): ``revenue`` is in the settlement currency, when the whole configuration settles in
    one; with several, none is named (their sum has no single unit)."""
    currencies = {t.settlement_currency for t in config.traders} | {
        c.settlement_currency for c in config.clients
    }
    return {"revenue": currencies.pop()} if len(currencies) == 1 else {}
