"""Picking a policy with a stated confidence: the two-stage procedures of :mod:`.ranking` run on
the simulator, and the Holm-corrected ranking of a comparison, as frames and as text.

:func:`select_best` runs a first stage of ``n0`` replications per policy (or takes them from a
comparison already run), asks :func:`.ranking.required` how many each policy needs for
P(correct selection) >= ``pstar`` with indifference zone ``delta``, runs the rest (replications
``n0 .. N-1``, each :func:`.study.run_cell`, so the first stage is never re-run), and picks the
best overall mean. ``max_replications`` caps the second stage: a capped selection says it is
incomplete and how many replications it would take.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from .config import SimConfig
from .ranking import (
    RANKED,
    Selection,
    best_groups,
    direction,
    pairwise,
    pick,
    required,
)
from .study import PolicyLike, format_number, major, policy_name, run_cells, text_table

#: Indifference zones by metric: the smallest difference worth acting on, in the metric's
#: units (a percentage point of fill, ten seconds of waiting, two points of Gini).
DEFAULT_DELTA: dict[str, float] = {
    "fill_rate": 0.01,
    "expiry_rate": 0.01,
    "cancelled_share": 0.01,
    "accept_p50": 10.0,
    "accept_p95": 30.0,
    "complete_p50": 30.0,
    "complete_p95": 60.0,
    "gini_orders": 0.02,
    "gini_earnings": 0.02,
    "hold_mean": 30.0,
    "hold_p95": 60.0,
}


def default_delta(metric: str) -> float:
    """:data:`DEFAULT_DELTA` of ``metric``; money has no default (give ``delta``)."""
    direction(metric)
    if metric not in DEFAULT_DELTA:
        raise ValueError(f"give the indifference zone (delta) for {metric}: it has no default")
    return DEFAULT_DELTA[metric]


def select_best(
    config: SimConfig,
    policies: Sequence[PolicyLike],
    metric: str = "fill_rate",
    delta: float | None = None,
    *,
    pstar: float = 0.95,
    n0: int = 10,
    seed: int = 0,
    common: bool = True,
    max_replications: int = 100,
    first: pl.DataFrame | None = None,
    progress: bool | None = None,
) -> tuple[Selection, pl.DataFrame]:
    """Select the best of ``policies`` on ``metric`` (see the module's docstring); returns the
    :class:`~.ranking.Selection` and every replication run (the first stage included).

    ``first``: replications already run with the same configuration, seed and streams (a
    :class:`~.study.Comparison`'s ``replications``); its replications ``0 .. n0-1`` are the
    first stage. ``common=False`` runs independent streams and uses Rinott's procedure."""
    names = [policy_name(p) for p in policies]
    delta = default_delta(metric) if delta is None else float(delta)
    if first is None:
        first = _cells(config, policies, seed, {n: range(n0) for n in names}, common, progress)
    else:
        first = first.filter(pl.col("replication") < n0)
        have = first.group_by("policy").len()
        if set(have["policy"]) != set(names) or (have["len"] < n0).any():
            raise ValueError(f"the first stage needs {n0} replications of each of {names}")
    stage = {n: first.filter(pl.col("policy") == n).sort("replication")[metric] for n in names}
    if any(s.null_count() for s in stage.values()):
        raise ValueError(f"{metric} is missing in some first-stage replications: cannot rank")
    procedure, constant, needed, stds = required(
        {n: s.cast(pl.Float64).to_list() for n, s in stage.items()},
        metric,
        delta,
        pstar=pstar,
        common=common,
    )
    runs = {n: min(needed[n], max(max_replications, n0)) for n in names}
    more = _cells(config, policies, seed, {n: range(n0, runs[n]) for n in names}, common, progress)
    frames = [first.sort("policy", "replication")] + ([more] if more.height else [])
    every = pl.concat(frames)
    order = {n: i for i, n in enumerate(names)}
    every = every.sort(pl.col("policy").replace_strict(order), "replication")
    means = {
        n: float(every.filter(pl.col("policy") == n)[metric].cast(pl.Float64).mean())  # type: ignore[arg-type]
        for n in names
    }
    selection = Selection(
        metric=metric,
        delta=delta,
        pstar=pstar,
        procedure=procedure,
        n0=n0,
        constant=constant,
        needed=needed,
        ran=runs,
        means=means,
        best=pick(means, metric),
        first_stage_std=stds,
    )
    return selection, every


def _cells(
    config: SimConfig,
    policies: Sequence[PolicyLike],
    seed: int,
    which: dict[str, range],
    common: bool,
    progress: bool | None,
) -> pl.DataFrame:
    cells = [(p, r) for p in policies for r in which[policy_name(p)]]
    return run_cells(config, cells, seed, common, progress, desc="select")


@dataclass(frozen=True)
class Ranking:
    """Holm-corrected pairwise comparisons of a set of replications and the best per metric."""

    pairs: pl.DataFrame
    best: pl.DataFrame
    alpha: float

    @property
    def family(self) -> int:
        return int(self.pairs["family"][0]) if self.pairs.height else 0

    def render(self, currency: str | None = None) -> str:
        """The best policy per metric and who it is not distinguishable from, then every
        significant pairwise difference; with ``currency`` (the platform's settlement currency)
        revenue reads in its major units, as in the comparison above it."""
        head = (
            f"ranking: all {self.family} paired comparisons (every pair of policies × metric) "
            f"tested together, Holm-adjusted: family-wise error <= {self.alpha:g}; "
            f"intervals Bonferroni (simultaneous {1 - self.alpha:.0%})"
        )
        rows = []
        for r in self.best.iter_rows(named=True):
            tied = ", ".join(r["tied"]) if r["tied"] else "–"
            verdict = "clear" if r["clear"] else "not distinguishable"
            m = r["metric"]
            rows.append([m, r["best"], format_number(major(m, r["mean"], currency)), verdict, tied])
        best = text_table(["metric", "best", "mean", "verdict", "tied with the best"], rows)
        sig = self.pairs.filter(pl.col("significant"))
        lines = [
            [
                r["metric"],
                f"{r['policy']} − {r['other']}",
                f"{format_number(major(r['metric'], r['difference'], currency), sign=True)} "
                f"[{format_number(major(r['metric'], r['low'], currency))}, "
                f"{format_number(major(r['metric'], r['high'], currency))}]",
                f"{r['p_holm']:.2g}",
            ]
            for r in sig.iter_rows(named=True)
        ]
        differ = (
            text_table(["metric", "pair", "difference [simultaneous interval]", "p (Holm)"], lines)
            if lines
            else "no pair of policies differs significantly on any metric"
        )
        return "\n".join([head, best, "", "significant differences:", differ])

    def as_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "family": self.family,
            "best": self.best.to_dicts(),
            "pairs": self.pairs.to_dicts(),
        }


def rank(
    replications: pl.DataFrame, metrics: Sequence[str] = RANKED, *, alpha: float = 0.05
) -> Ranking:
    """:func:`.ranking.pairwise` and :func:`.ranking.best_groups` of ``replications``."""
    pairs = pairwise(replications, metrics, alpha=alpha)
    return Ranking(pairs=pairs, best=best_groups(replications, pairs), alpha=alpha)
