"""Assignment policies for a notebook: who got the work under each policy (per trader), and the
Lorenz curves and Gini coefficients of orders and earnings across traders.

A run here is exactly a cell of :func:`workbench.sim.compare`: the same configuration, seed and
replication on common random numbers, so its Gini coefficients are that replication's
``gini_orders`` and ``gini_earnings``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl

from ..domain.money import EXPONENTS
from ..sim.config import SimConfig
from ..sim.metrics import traders_frame
from ..sim.model import Simulation
from ..sim.policies import make_policy
from ..sim.ranking import Selection
from ..sim.selection import Ranking
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
from .tables import Table, interactive, table


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


# ------------------------------------------------------------------- stress and honest ranking
def progress(desc: str = "runs") -> Callable[[int, int], None] | None:
    """A progress report for :func:`workbench.sim.sweep.sweep` in a live session: a bar
    (``tqdm.auto``: a widget in Jupyter) updated after each run, closed at the last. None in
    reports and nbval runs (not :func:`.tables.interactive`), so their outputs stay the same
    from run to run."""
    if not interactive():
        return None
    from tqdm.auto import tqdm

    state: dict[str, Any] = {}

    def report(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc=desc, unit="run")
        state["bar"].update(done - state["bar"].n)
        if done >= total:
            state["bar"].close()

    return report


def utilisation_sweep(
    config: SimConfig,
    policies: Sequence[PolicyLike],
    levels: Sequence[float],
    *,
    replications: int = 2,
    seed: int = 0,
    progress: Callable[[int, int], None] | bool | None = None,
) -> pl.DataFrame:
    """Every policy at every offered load of ``levels`` (:func:`workbench.sim.stress.at_utilisation`:
    arrivals set from the traders' capacity), ``replications`` each on common random numbers,
    run in this process (no cluster to start); one row per run, the ``load`` first."""
    from ..sim.sweep import sweep

    frame = sweep(
        config,
        policies,
        {"load": list(levels)},
        replications=replications,
        seed=seed,
        scheduler="inline",
        progress=progress,
    )
    return frame


def where_they_differ(
    frame: pl.DataFrame, metrics: Sequence[str], *, alpha: float = 0.05
) -> pl.DataFrame:
    """Per offered load of a :func:`utilisation_sweep` and per metric: the best policy, how
    many pairs of policies differ after Holm's correction (the family: every pair × metric at
    that load), and who is not distinguishable from the best. Where ``differing`` first turns
    positive is where the choice of policy starts to matter."""
    from ..sim.selection import rank

    key = "load"
    rows = []
    for (level,), group in frame.group_by(key, maintain_order=True):
        r = rank(group, metrics, alpha=alpha)
        for b in r.best.iter_rows(named=True):
            sig = r.pairs.filter((pl.col("metric") == b["metric"]) & pl.col("significant"))
            rows.append(
                {
                    "load": level,
                    "metric": b["metric"],
                    "best": b["best"],
                    "differing_pairs": sig.height,
                    "tied_with_best": ", ".join(b["tied"]) or "–",
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "load": pl.Float64,
            "metric": pl.String,
            "best": pl.String,
            "differing_pairs": pl.Int64,
            "tied_with_best": pl.String,
        },
        orient="row",
    )


def sweep_figure(frame: pl.DataFrame, metrics: Sequence[str]) -> Any:
    """Each metric's mean over replications against the offered load, one line per policy with
    its Student-t interval (one panel per metric)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from ..sim.sweep import sweep_summary
    from .figures import PALETTE, TEMPLATE

    key = "load"
    summary = sweep_summary(frame)
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=list(metrics))
    policies = summary["policy"].unique(maintain_order=True).to_list()
    for col, metric in enumerate(metrics, start=1):
        for i, policy in enumerate(policies):
            part = summary.filter((pl.col("metric") == metric) & (pl.col("policy") == policy))
            half = [h if h is not None and math.isfinite(h) else 0.0 for h in part["half_width"]]
            fig.add_trace(
                go.Scatter(
                    x=part[key].to_list(),
                    y=part["mean"].to_list(),
                    error_y={"type": "data", "array": half, "visible": True},
                    mode="lines+markers",
                    name=policy,
                    legendgroup=policy,
                    showlegend=col == 1,
                    line={"color": PALETTE[i % len(PALETTE)]},
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="offered load (share of capacity)", row=1, col=col)
    fig.update_layout(
        title={"text": "Policies under load: mean and interval over replications"},
        template=TEMPLATE,
        margin={"l": 60, "r": 20, "t": 80, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.05, "xanchor": "right", "x": 1.0},
    )
    return fig


def ranking_tables(
    ranking: Ranking, selection: Selection | None = None, money: Mapping[str, str] | None = None
) -> list[Table]:
    """A ranking (:func:`workbench.sim.selection.rank`) for reading: per metric the best policy
    and who is not distinguishable from it; every significant pair with its simultaneous
    interval; and the selection's sentence as the first table's subtitle. Metrics in ``money``
    (metric → currency, :func:`money_metrics`) are in major units of their currency."""
    scale = {m: 10 ** EXPONENTS[c] for m, c in (money or {}).items() if c in EXPONENTS}

    def major(col: str) -> pl.Expr:
        factor = pl.col("metric").replace_strict(scale, default=1, return_dtype=pl.Float64)
        return pl.col(col) / factor

    best = ranking.best.with_columns(
        major("mean"),
        pl.col("tied").list.join(", ").alias("tied"),
        pl.when(pl.col("clear"))
        .then(pl.lit("clear"))
        .otherwise(pl.lit("not distinguishable"))
        .alias("verdict"),
    ).select("metric", "best", "mean", "verdict", "tied")
    head = (
        f"{ranking.family} paired comparisons tested together, Holm-adjusted: "
        f"family-wise error ≤ {ranking.alpha:g}"
    )
    if selection is not None:
        head += ". " + selection.sentence()
    sig = ranking.pairs.filter(pl.col("significant")).select(
        "metric",
        (pl.col("policy") + " − " + pl.col("other")).alias("pair"),
        major("difference"),
        major("low"),
        major("high"),
        "p_holm",
    )
    return [
        table(
            best,
            title="Best policy per metric",
            subtitle=head,
            labels={"tied": "not distinguishable from the best"},
            decimals={"mean": 3},
            max_rows=None,
        ),
        table(
            sig,
            title="Differences that survive the correction",
            subtitle=f"policy − other; Bonferroni simultaneous {1 - ranking.alpha:.0%} intervals",
            decimals={"difference": 4, "low": 4, "high": 4, "p_holm": 4},
            max_rows=None,
        ),
    ]
