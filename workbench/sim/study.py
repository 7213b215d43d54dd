"""Replications and policy comparisons: the experiment around one configuration.

:func:`simulate` runs one policy over independent replications, one row of
:mod:`.metrics` per replication. :func:`compare` runs several policies on *common random
numbers*: replication ``r`` of every policy draws from ``Streams.for_policy(seed, r, i,
common=True)``, the same arrivals, amounts and per-order uniforms, so the differences between
policies are differences the policy made, and a paired interval (:func:`.stats.paired_difference`)
over replications is far narrower than two separate ones. Every output carries the warm-up.

A cell (one policy, one replication) is :func:`run_cell`, a pure function of its arguments; a
sweep (:mod:`.sweep`) ships the same function to Dask workers.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from ..domain.money import EXPONENTS
from ..progress import bar
from .config import SimConfig
from .metrics import COMPARED, METRICS, metrics
from .model import Simulation
from .policies import POLICIES, Policy, make_policy
from .stats import mean_ci, paired_difference
from .streams import Streams

#: A policy by shipped name, or a Policy subclass (instantiated afresh per replication: some
#: policies keep state). A subclass must be importable by module path to run on Dask workers.
PolicyLike = str | type[Policy]

#: Columns that identify a cell, before the metrics.
CELL: dict[str, type[pl.DataType]] = {
    "policy": pl.String,
    "replication": pl.Int64,
    "seed": pl.Int64,
}


def policy_name(policy: PolicyLike) -> str:
    """The name a policy goes by in results (its ``name``)."""
    if isinstance(policy, str):
        if policy not in POLICIES:
            make_policy(policy)  # raises with the list of shipped policies
        return policy
    if isinstance(policy, type) and issubclass(policy, Policy):
        return policy.name
    raise TypeError(f"a policy is a shipped name or a Policy subclass, not {policy!r}")


def stream_index(policy: PolicyLike) -> int:
    """The policy's stream index for independent (non-common) streams: its place among the
    shipped policies, or a stable hash of a custom policy's name; never its place in the list
    given, so reordering the policies of a study changes nothing."""
    name = policy_name(policy)
    shipped = list(POLICIES)
    if name in shipped:
        return shipped.index(name)
    return len(shipped) + zlib.crc32(name.encode()) % (999 - len(shipped))


def run_cell(
    config: SimConfig, policy: PolicyLike, seed: int, replication: int, *, common: bool = True
) -> dict[str, Any]:
    """One replication of one policy: its cell columns and :func:`.metrics.metrics`.

    Pure: the same arguments give the same row in any process (the streams are spawned from
    ``seed`` and ``replication`` alone)."""
    name = policy_name(policy)
    streams = Streams.for_policy(seed, replication, stream_index(policy), common=common)
    instance = make_policy(policy) if isinstance(policy, str) else policy()
    sim = Simulation(config, instance, streams=streams).run()
    return {"policy": name, "replication": replication, "seed": seed, **metrics(sim)}


def rows_frame(rows: Sequence[dict[str, Any]], extra: dict[str, Any] | None = None) -> pl.DataFrame:
    """Cell rows as a typed frame (``extra``: leading columns with their types)."""
    schema = {**(extra or {}), **CELL, **METRICS}
    return pl.DataFrame(list(rows), schema=schema, orient="row")


def simulate(
    config: SimConfig,
    policy: PolicyLike = "production",
    *,
    seed: int = 0,
    replications: int = 1,
    common: bool = True,
    progress: bool | None = None,
) -> pl.DataFrame:
    """Run ``policy`` for ``replications`` independent replications; one row per replication
    (``policy``, ``replication``, ``seed``, then every metric, ``warmup`` included).

    ``progress``: a bar over the replications (None: only when stderr is a terminal)."""
    return _run(config, [policy], seed, replications, common, progress)


def _run(
    config: SimConfig,
    policies: Sequence[PolicyLike],
    seed: int,
    replications: int,
    common: bool,
    progress: bool | None,
) -> pl.DataFrame:
    if replications < 1:
        raise ValueError(f"replications must be at least 1, got {replications}")
    names = [policy_name(p) for p in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"each policy once, please: {names}")
    cells = [(p, r) for p in policies for r in range(replications)]
    return run_cells(config, cells, seed, common, progress)


def run_cells(
    config: SimConfig,
    cells: Sequence[tuple[PolicyLike, int]],
    seed: int,
    common: bool,
    progress: bool | None,
    desc: str = "simulate",
) -> pl.DataFrame:
    """One row per ``(policy, replication)`` cell, run in order, with a bar over them
    (``progress``; None: only when stderr is a terminal)."""
    pbar = bar(progress, total=len(cells), desc=desc, unit="run") if cells else None
    rows = []
    try:
        for p, r in cells:
            if pbar is not None:
                pbar.set_postfix_str(f"{policy_name(p)} #{r}")
            rows.append(run_cell(config, p, seed, r, common=common))
            if pbar is not None:
                pbar.update()
    finally:
        if pbar is not None:
            pbar.close()
    return rows_frame(rows)


# ------------------------------------------------------------------------------ intervals
SUMMARY_SCHEMA: dict[str, type[pl.DataType]] = {
    "metric": pl.String,
    "n": pl.Int64,
    "mean": pl.Float64,
    "std": pl.Float64,
    "low": pl.Float64,
    "high": pl.Float64,
    "half_width": pl.Float64,
    "level": pl.Float64,
    "warmup": pl.Float64,
}


def summarize(
    replications: pl.DataFrame,
    by: Sequence[str] = ("policy",),
    *,
    level: float = 0.95,
    metrics: Sequence[str] = COMPARED,
) -> pl.DataFrame:
    """Mean and Student-t interval (:func:`.stats.mean_ci`) of every metric, per group of
    ``by`` (long format: one row per group and metric). Replications where a metric is null
    (nothing to measure) are left out of its ``n``; with ``n`` = 1 the interval is infinite."""
    by = list(by)
    out: list[dict[str, Any]] = []
    for key, group in replications.group_by(by, maintain_order=True):
        warmup = _warmup(group) if "warmup" not in by else None
        for m in metrics:
            values = _finite(group[m])
            row: dict[str, Any] = dict(zip(by, key, strict=True))
            row.update(metric=m, n=len(values), level=level)
            if "warmup" not in by:
                row["warmup"] = warmup
            if values:
                ci = mean_ci(values, level)
                row.update(
                    mean=ci.mean,
                    std=None if math.isnan(ci.std) else ci.std,
                    low=ci.low,
                    high=ci.high,
                    half_width=ci.half_width,
                )
            out.append(row)
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        **{c: replications.schema[c] for c in by},
        **SUMMARY_SCHEMA,
    }
    return pl.DataFrame(out, schema=schema, orient="row")


DIFFERENCES_SCHEMA: dict[str, type[pl.DataType]] = {
    "policy": pl.String,
    "baseline": pl.String,
    "metric": pl.String,
    "n": pl.Int64,
    "difference": pl.Float64,
    "low": pl.Float64,
    "high": pl.Float64,
    "half_width": pl.Float64,
    "significant": pl.Boolean,
    "baseline_mean": pl.Float64,
    "level": pl.Float64,
    "warmup": pl.Float64,
}


def differences(
    replications: pl.DataFrame,
    baseline: str,
    *,
    level: float = 0.95,
    metrics: Sequence[str] = COMPARED,
) -> pl.DataFrame:
    """Per policy other than ``baseline`` and per metric: the mean of (policy − baseline) over
    replications paired by index (:func:`.stats.paired_difference`), its interval, and whether
    the interval excludes 0 (``significant``). A replication where either side is null is left
    out of that metric's pairs."""
    base = replications.filter(pl.col("policy") == baseline)
    if base.is_empty():
        raise ValueError(f"baseline {baseline!r} is not among the policies run")
    out: list[dict[str, Any]] = []
    for policy in replications["policy"].unique(maintain_order=True).to_list():
        if policy == baseline:
            continue
        other = replications.filter(pl.col("policy") == policy)
        pairs = other.join(base, on="replication", suffix="__base")
        for m in metrics:
            both = pairs.select(m, f"{m}__base").drop_nulls()
            both = both.filter(pl.all_horizontal(pl.all().cast(pl.Float64).is_finite()))
            row: dict[str, Any] = {
                "policy": policy,
                "baseline": baseline,
                "metric": m,
                "n": both.height,
                "level": level,
                "warmup": _warmup(pairs),
            }
            if both.height:
                ci = paired_difference(
                    both[m].cast(pl.Float64).to_numpy(),
                    both[f"{m}__base"].cast(pl.Float64).to_numpy(),
                    level,
                )
                row.update(
                    difference=ci.mean,
                    low=ci.low,
                    high=ci.high,
                    half_width=ci.half_width,
                    significant=bool(ci.low > 0 or ci.high < 0),
                    baseline_mean=float(both[f"{m}__base"].cast(pl.Float64).mean()),  # type: ignore[arg-type]
                )
            out.append(row)
    return pl.DataFrame(out, schema=DIFFERENCES_SCHEMA, orient="row")


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare`.

    ``replications``: one row per (policy, replication), every metric. ``summary``: per policy
    and metric, the mean and its interval. ``differences``: per policy other than the baseline
    and per metric, the paired mean difference (policy − baseline) and its interval. All three
    carry ``warmup`` (seconds) in every row."""

    replications: pl.DataFrame
    summary: pl.DataFrame
    differences: pl.DataFrame
    baseline: str
    policies: tuple[str, ...]
    level: float
    warmup: float
    seed: int
    common: bool

    def render(self, currency: str | None = None) -> str:
        """The summary and the differences as text tables (what ``workbench simulate`` prints);
        with ``currency`` (the platform's settlement currency) revenue reads in its major units."""
        head = header(self.replications, level=self.level, common=self.common, currency=currency)
        diff = (
            f"differences vs {self.baseline} (policy − {self.baseline}, paired by replication; "
            "* = interval excludes 0)"
        )
        return "\n".join(
            [
                head,
                "",
                render_summary(self.summary, currency=currency),
                "",
                diff,
                render_differences(self.differences, currency=currency),
            ]
        )

    def __str__(self) -> str:
        return self.render()


def compare(
    config: SimConfig,
    policies: Sequence[PolicyLike],
    *,
    seed: int = 0,
    replications: int = 5,
    baseline: str | None = None,
    level: float = 0.95,
    common: bool = True,
    progress: bool | None = None,
) -> Comparison:
    """Run every policy for ``replications`` replications on common random numbers and compare
    each with ``baseline`` (default: the first policy) by paired differences.

    ``common=False`` gives each policy its own streams (the control that shows what common
    random numbers buy; intervals are then wider). ``progress``: a bar over the (policy,
    replication) cells (None: only when stderr is a terminal)."""
    if not policies:
        raise ValueError("compare needs at least one policy")
    names = tuple(policy_name(p) for p in policies)
    base = names[0] if baseline is None else baseline
    if base not in names:
        raise ValueError(f"baseline {base!r} is not among the policies {list(names)}")
    reps = _run(config, policies, seed, replications, common, progress)
    return Comparison(
        replications=reps,
        summary=summarize(reps, level=level),
        differences=differences(reps, base, level=level),
        baseline=base,
        policies=names,
        level=level,
        warmup=float(config.warmup),
        seed=seed,
        common=common,
    )


# ------------------------------------------------------------------------------ rendering
def header(
    replications: pl.DataFrame,
    *,
    level: float = 0.95,
    common: bool = True,
    currency: str | None = None,
) -> str:
    """One line saying what the numbers below are: policies, replications, seed, streams, the
    warm-up left out, the interval level and the units (revenue in ``currency``'s major units
    where it is given, as :func:`render_summary` prints it)."""
    policies = replications["policy"].unique(maintain_order=True).to_list()
    n = replications["replication"].n_unique()
    seeds = ", ".join(str(s) for s in replications["seed"].unique(maintain_order=True).to_list())
    warmups = replications["warmup"].unique(maintain_order=True).to_list()
    warm = " / ".join(_hours(w) for w in warmups)
    streams = "common random numbers" if common else "independent streams"
    who = policies[0] if len(policies) == 1 else f"{len(policies)} policies"
    return (
        f"{who} × {n} replication(s), seed {seeds}, {streams}; warm-up {warm} excluded; "
        f"{level * 100:g}% Student-t intervals (mean ± half width); times in seconds, "
        + (
            f"revenue in {currency}"
            if currency in EXPONENTS
            else "revenue in minor units of the settlement currency"
        )
    )


def revenue_currency(config: SimConfig) -> str | None:
    """The currency the ``revenue`` metric sums in: the platform's settlement currency, when its
    clients and traders all settle in one (else None: the sum mixes currencies and is shown as
    minor units)."""
    found = {c.settlement_currency for c in config.clients} | {
        t.settlement_currency for t in config.traders
    }
    return found.pop() if len(found) == 1 else None


def major(metric: str, value: float | None, currency: str | None) -> float | None:
    """A statistic of ``metric`` as printed: revenue (means and intervals over replications of
    exact minor-unit sums) in major units of ``currency``; any other metric as it is."""
    if metric != "revenue" or value is None or currency not in EXPONENTS:
        return value
    scaled: float = value / 10 ** EXPONENTS[currency]
    return scaled


def describe(
    replications: pl.DataFrame,
    *,
    level: float = 0.95,
    common: bool = True,
    currency: str | None = None,
) -> str:
    """Replications as text: the :func:`header` and every metric's mean ± half width per policy
    (what ``workbench simulate`` prints for one policy)."""
    summary = summarize(replications, level=level)
    head = header(replications, level=level, common=common, currency=currency)
    return head + "\n\n" + render_summary(summary, currency=currency)


def render_summary(summary: pl.DataFrame, by: str = "policy", currency: str | None = None) -> str:
    """Metrics down, groups of ``by`` across: ``mean ± half width`` in each cell."""
    groups = summary[by].unique(maintain_order=True).to_list()
    cells: dict[tuple[str, Any], str] = {}
    for r in summary.iter_rows(named=True):
        m = r["metric"]
        cells[(m, r[by])] = format_pm(
            major(m, r["mean"], currency), major(m, r["half_width"], currency)
        )
    metric_names = summary["metric"].unique(maintain_order=True).to_list()
    return text_table(
        ["metric", *map(str, groups)], [[m] + [cells[(m, g)] for g in groups] for m in metric_names]
    )


def render_differences(diffs: pl.DataFrame, currency: str | None = None) -> str:
    """Metrics down, one column per policy: ``difference [low, high]``, * if it excludes 0."""
    policies = diffs["policy"].unique(maintain_order=True).to_list()
    if not policies:
        return "(no other policy)"
    cells: dict[tuple[str, str], str] = {}
    for r in diffs.iter_rows(named=True):
        if r["difference"] is None:
            text = "–"
        else:
            star = " *" if r["significant"] else ""
            m = r["metric"]
            low = format_number(major(m, r["low"], currency))
            high = format_number(major(m, r["high"], currency))
            diff = format_number(major(m, r["difference"], currency), sign=True)
            text = f"{diff} [{low}, {high}]{star}"
        cells[(r["metric"], r["policy"])] = text
    metric_names = diffs["metric"].unique(maintain_order=True).to_list()
    return text_table(
        ["metric", *(f"{p} − {diffs['baseline'][0]}" for p in policies)],
        [[m] + [cells[(m, p)] for p in policies] for m in metric_names],
    )


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w)
        for i, (h, w) in enumerate(zip(header, widths, strict=True))
    )
    out = [line, "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append(
            "  ".join(
                x.ljust(w) if i == 0 else x.rjust(w)
                for i, (x, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(out)


def format_number(x: float | None, *, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "+inf" if x > 0 and sign else ("inf" if x > 0 else "-inf")
    s = "+" if sign else ""
    ax = abs(x)
    if ax >= 1000:
        return f"{x:{s},.0f}"
    if ax >= 10:
        return f"{x:{s}.1f}"
    if ax >= 0.1 or ax == 0:
        return f"{x:{s}.3f}"
    return f"{x:{s}.2g}"


def format_pm(mean: float | None, half: float | None) -> str:
    if mean is None:
        return "–"
    return f"{format_number(mean)} ± {format_number(half)}"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h ({seconds:g} s)"


def _finite(col: pl.Series) -> list[float]:
    return [float(v) for v in col.to_list() if v is not None and math.isfinite(v)]


def _warmup(frame: pl.DataFrame) -> float | None:
    values = frame["warmup"].drop_nulls().unique().to_list()
    if len(values) > 1:
        raise ValueError(f"replications with different warm-ups in one group: {values}")
    return float(values[0]) if values else None
