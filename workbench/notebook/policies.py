"""Assignment policies for a notebook: who got the work under each policy (per trader), and the
Lorenz curves and Gini coefficients of orders and earnings across traders.

A run here is exactly a cell of :func:`workbench.sim.compare`: the same configuration, seed and
replication on common random numbers, so its Gini coefficients are that replication's
``gini_orders`` and ``gini_earnings``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import polars as pl

from ..domain.money import EXPONENTS
from ..sim.config import SimConfig
from ..sim.metrics import traders_frame
from ..sim.model import Simulation
from ..sim.policies import make_policy
from ..sim.stats import gini, lorenz
from ..sim.streams import Streams
from ..sim.study import (
    Comparison,
    PolicyLike,
    format_number,
    header,
    policy_name,
    stream_index,
)
from .tables import Table, table


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


def _money_number(x: float | None, currency: str, *, sign: bool = False) -> str:
    """A statistic of money (a mean, a difference, an interval bound: floats over integer minor
    units) in major units of ``currency``, to its decimals."""
    if x is None or not math.isfinite(x):
        return format_number(x, sign=sign)
    exp = EXPONENTS[currency]
    return f"{x / 10**exp:{'+' if sign else ''},.{exp}f}"


def comparison_tables(comparison: Comparison, money: Mapping[str, str]) -> list[Table]:
    """A comparison (:func:`workbench.sim.compare`) as two tables for reading: each policy's
    mean ± half width per metric, and each policy's paired difference from the baseline with
    its interval (``*``: excludes 0). Metrics in ``money`` (metric → currency, see
    :func:`money_metrics`) are in major units of their currency; the rest as
    ``workbench simulate`` prints them."""
    money = {m: c for m, c in money.items() if c in EXPONENTS}

    def number(metric: str, x: float | None, *, sign: bool = False) -> str:
        cur = money.get(metric)
        return _money_number(x, cur, sign=sign) if cur else format_number(x, sign=sign)

    def name(metric: str) -> str:
        return f"{metric} ({money[metric]})" if metric in money else metric

    summary = comparison.summary
    policies = [str(p) for p in summary["policy"].unique(maintain_order=True).to_list()]
    metrics = [str(m) for m in summary["metric"].unique(maintain_order=True).to_list()]
    cells = {
        (r["metric"], r["policy"]): (
            "–"
            if r["mean"] is None
            else f"{number(r['metric'], r['mean'])} ± {number(r['metric'], r['half_width'])}"
        )
        for r in summary.iter_rows(named=True)
    }
    means = pl.DataFrame(
        [[name(m), *(cells.get((m, p), "–") for p in policies)] for m in metrics],
        schema=["metric", *policies],
        orient="row",
    )
    diffs = comparison.differences
    others = [str(p) for p in diffs["policy"].unique(maintain_order=True).to_list()]
    text: dict[tuple[str, str], str] = {}
    for r in diffs.iter_rows(named=True):
        m = r["metric"]
        if r["difference"] is None:
            text[(m, r["policy"])] = "–"
            continue
        star = " *" if r["significant"] else ""
        text[(m, r["policy"])] = (
            f"{number(m, r['difference'], sign=True)} "
            f"[{number(m, r['low'])}, {number(m, r['high'])}]{star}"
        )
    against = pl.DataFrame(
        [[name(m), *(text.get((m, p), "–") for p in others)] for m in metrics],
        schema=["metric", *(f"{p} − {comparison.baseline}" for p in others)],
        orient="row",
    )
    head = header(comparison.replications, level=comparison.level, common=comparison.common)
    units = ", ".join(f"{m} in {c}" for m, c in money.items())
    if units:  # the header's units are workbench simulate's (minor units)
        head = head.partition("; times in seconds")[0] + f"; times in seconds, {units}"
    return [
        table(
            means,
            title="Each policy: mean ± half width",
            subtitle=head,
            labels={"metric": "Metric", **{p: p for p in policies}},
            max_rows=None,
            nowrap=policies,
            right=policies,
        ),
        table(
            against,
            title=f"Paired differences from {comparison.baseline}",
            subtitle="policy − baseline, paired by replication; [interval]; * = excludes 0",
            labels={"metric": "Metric", **{c: c for c in against.columns[1:]}},
            max_rows=None,
            nowrap=against.columns[1:],
            right=against.columns[1:],
        ),
    ]
