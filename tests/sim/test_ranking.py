"""Honest ranking: Holm on hand-worked p-values and its family-wise error under the null,
Rinott's constant against published table values and a Monte Carlo of its defining integral,
the two-stage procedures' probability of correct selection on synthetic normal problems, and
the selection run on the simulator."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from workbench.sim.presets import synthetic_config
from workbench.sim.ranking import (
    best_groups,
    crn_sizes,
    crn_t,
    holm,
    paired_t,
    pairwise,
    required,
    rinott_h,
    rinott_sizes,
)
from workbench.sim.selection import rank, select_best
from workbench.sim.study import compare, run_cell


def test_holm_worked_by_hand() -> None:
    # sorted: 0.005 × 4 = 0.02, 0.01 × 3 = 0.03, 0.03 × 2 = 0.06, 0.04 × 1 = 0.04 → 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30))
def test_holm_lies_between_the_raw_and_bonferroni(ps: list[float]) -> None:
    adj = holm(ps)
    m = len(ps)
    for p, a in zip(ps, adj, strict=True):
        assert p - 1e-12 <= a <= min(1.0, m * p) + 1e-12
    order = sorted(range(m), key=lambda i: ps[i])
    assert all(adj[i] <= adj[j] for i, j in itertools.pairwise(order))


def test_holm_keeps_the_family_wise_error_where_raw_tests_do_not() -> None:
    """2,000 families of 10 true null hypotheses (paired t-tests on 8 replications): Holm
    rejects any at most about 5 % of the time; untouched, about 40 %."""
    rng = np.random.default_rng(3)
    d = rng.normal(size=(2_000, 10, 8))
    t = d.mean(axis=2) / (d.std(axis=2, ddof=1) / math.sqrt(8))
    p = 2 * stats.t.sf(np.abs(t), 7)
    holm_any = np.mean([min(holm(list(row))) <= 0.05 for row in p])
    raw_any = np.mean((p <= 0.05).any(axis=1))
    assert holm_any <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 2_000), holm_any
    assert raw_any > 0.3


def test_paired_t_is_scipy_s_paired_test() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 1.0, 9), rng.normal(0.5, 1.0, 9)
    mean, sd, p = paired_t(a - b)
    ref = stats.ttest_rel(a, b)
    assert p == pytest.approx(ref.pvalue) and mean == pytest.approx(float(np.mean(a - b)))
    assert sd == pytest.approx(float(np.std(a - b, ddof=1)))
    assert paired_t([0.0, 0.0, 0.0])[2] == 1.0  # identical runs (common random numbers)
    assert paired_t([0.1, 0.1, 0.1])[2] == 0.0


#: Rinott's h for ν = n0 − 1 = 50 as tabulated by Bechhofer, Santner and Goldsman (1995),
#: table 2.13, the values the KSL simulation library checks its port of their Fortran against.
TABLE = [(10, 0.975, 4.045), (1000, 0.975, 6.057), (1000, 0.9, 5.488), (20_000, 0.95, 6.878)]


@pytest.mark.parametrize(("k", "pstar", "h"), TABLE)
def test_rinott_h_matches_the_published_table(k: int, pstar: float, h: float) -> None:
    assert rinott_h(k, 51, pstar) == pytest.approx(h, abs=0.005)


def test_rinott_h_solves_its_integral_by_monte_carlo() -> None:
    """h is the pstar-quantile of max_j Z_j √(ν(1/X_j + 1/Y)): Z_j normal, X_j and Y χ²_ν."""
    k, n0, pstar = 4, 10, 0.95
    h = rinott_h(k, n0, pstar)
    rng = np.random.default_rng(7)
    nu, n = n0 - 1, 400_000
    z = rng.normal(size=(n, k - 1))
    x = rng.chisquare(nu, size=(n, k - 1))
    y = rng.chisquare(nu, size=(n, 1))
    covered = np.mean(np.all(z <= h / np.sqrt(nu * (1 / x + 1 / y)), axis=1))
    assert abs(covered - pstar) < 4 * math.sqrt(pstar * (1 - pstar) / n)
    assert crn_t(2, 10, 0.95) == pytest.approx(stats.t.ppf(0.95, 9))


def test_sizes_worked_by_hand() -> None:
    # Rinott: h = 2, S = (1, 3), δ = 1, n0 = 5 → max(5, 4) = 5 and max(5, 36) = 36
    assert rinott_sizes([1.0, 3.0], 5, 1.0, 2.0) == [5, 36]
    # CRN: differences of the two columns are (0, 1, 2), S = 1; t = 2.920 (t_0.95,2), δ = 1
    first = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    t = crn_t(2, 3, 0.95)
    assert crn_sizes(first, 1.0, t) == math.ceil(t**2) == 9
    proc, _const, needed, stds = required(
        {"a": [1.0, 2.0, 3.0], "b": [1.0, 1.0, 1.0]}, "fill_rate", 1.0
    )
    assert (proc, needed, stds) == ("crn-bonferroni", {"a": 9, "b": 9}, {"a": 1.0, "b": 0.0})
    with pytest.raises(ValueError, match="no better direction"):
        required({"a": [1.0, 2.0], "b": [1.0, 1.0]}, "utilisation", 1.0)


def _pcs(common: bool, repeats: int = 2_000) -> float:
    """Empirical P(correct selection) of a two-stage procedure on k = 4 normal systems in the
    least favourable configuration (the best exactly δ ahead), unequal variances; with common
    random numbers a shared noise term makes the systems strongly correlated."""
    rng = np.random.default_rng(11 if common else 12)
    k, n0, delta, _pstar = 4, 10, 0.5, 0.95
    mu = np.array([delta, 0.0, 0.0, 0.0])
    sigma = np.array([1.0, 2.0, 1.5, 3.0])
    correct = 0
    for _ in range(repeats):

        def draw(n: int) -> np.ndarray:
            shared = rng.normal(size=(n, 1)) * 2.0 if common else 0.0
            return mu + sigma * rng.normal(size=(n, k)) + shared

        first = draw(n0)
        _, _, needed, _ = required(
            {str(i): first[:, i].tolist() for i in range(k)}, "fill_rate", delta, common=common
        )
        sizes = [needed[str(i)] for i in range(k)]
        extra = draw(max(sizes) - n0) if max(sizes) > n0 else np.empty((0, k))
        rows = np.vstack([first, extra])
        means = [rows[: sizes[i], i].mean() for i in range(k)]
        correct += int(np.argmax(means) == 0)
    return correct / repeats


@pytest.mark.parametrize("common", [False, True], ids=["rinott", "crn-bonferroni"])
def test_two_stage_selection_picks_the_best_at_least_as_often_as_promised(common: bool) -> None:
    pcs = _pcs(common)
    assert pcs >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / 2_000), pcs


def _frame(values: dict[str, list[float]]) -> pl.DataFrame:
    rows = [
        {"policy": p, "replication": r, "fill_rate": v, "accept_p50": 100 - 10 * v}
        for p, vs in values.items()
        for r, v in enumerate(vs)
    ]
    return pl.DataFrame(rows)


def test_pairwise_family_and_best_groups_by_hand() -> None:
    reps = _frame(
        {
            "a": [0.90, 0.91, 0.92, 0.90, 0.91],
            "b": [0.80, 0.80, 0.81, 0.79, 0.80],  # far below a: a real difference
            "c": [0.90, 0.92, 0.91, 0.91, 0.90],  # like a
        }
    )
    pairs = pairwise(reps, ["fill_rate", "accept_p50"], alpha=0.05)
    assert pairs.height == 6 and (pairs["family"] == 6).all()
    raw = pairs["p_value"].to_list()
    assert pairs["p_holm"].to_list() == pytest.approx(holm(raw))
    ab = pairs.filter((pl.col("metric") == "fill_rate") & (pl.col("policy") == "a")).row(
        0, named=True
    )
    assert ab["other"] == "b" and ab["significant"]
    assert ab["difference"] == pytest.approx(0.108)
    best = best_groups(reps, pairs)
    fill = best.filter(pl.col("metric") == "fill_rate").row(0, named=True)
    assert fill["best"] in ("a", "c") and "b" not in fill["tied"] and not fill["clear"]
    wait = best.filter(pl.col("metric") == "accept_p50").row(0, named=True)
    assert wait["best"] == fill["best"]  # less waiting is better: the same policy
    text = rank(reps, ["fill_rate"]).render()
    assert "family-wise error <= 0.05" in text and "a − b" in text


def test_select_best_on_the_simulator_reuses_the_first_stage() -> None:
    cfg = synthetic_config(traders=8, clients=2, orders_per_day=600.0, days=0.25, warmup=1800.0)
    policies = ["production", "least_loaded"]
    first = compare(cfg, policies, seed=2, replications=3, progress=False).replications
    sel, every = select_best(
        cfg, policies, "accept_p50", 1.0, n0=3, seed=2, first=first, max_replications=5
    )
    stage = {p: first.filter(pl.col("policy") == p)["accept_p50"].to_list() for p in policies}
    _, _, needed, _ = required(stage, "accept_p50", 1.0)
    assert dict(sel.needed) == needed
    assert dict(sel.ran) == {p: min(n, 5) for p, n in needed.items()}
    for p in policies:
        ran = every.filter(pl.col("policy") == p)
        assert ran["replication"].to_list() == list(range(sel.ran[p]))
    last = every.filter(pl.col("policy") == "least_loaded").row(-1, named=True)
    cell = run_cell(cfg, "least_loaded", 2, last["replication"])
    assert {k: last[k] for k in cell} == cell
    means = {p: every.filter(pl.col("policy") == p)["accept_p50"].mean() for p in policies}
    assert sel.best == min(means, key=means.__getitem__)  # type: ignore[arg-type]
    assert sel.complete == all(n <= 5 for n in needed.values())
    said = sel.sentence()
    assert (f"pick {sel.best}" in said) == sel.complete and "P(correct selection) >= 0.95" in said


def test_cli_simulate_carries_the_ranking_and_the_selection_in_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from workbench.cli import main
    from workbench.sim.ranking import RANKED
    from workbench.sim.sweep import configure

    policies = ["production", "fifo"]
    argv = ["simulate", "--policy", "production", "--policy", "fifo", "--days", "0.25"]
    argv += ["--warmup-hours", "0.5", "--traders", "8", "--stress", "busy", "--seed", "4"]
    argv += ["--replications", "3", "--select", "accept_p50", "--delta", "30"]
    argv += ["--max-replications", "4", "--format", "json", "--no-progress"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ranking"]["family"] == len(RANKED) and doc["ranking"]["alpha"] == 0.05
    cfg = configure(None, days=0.25, warmup=1800.0, traders=8, stress="busy")
    first = compare(cfg, policies, seed=4, replications=3, progress=False).replications
    expected, _ = select_best(
        cfg, policies, "accept_p50", 30.0, n0=3, seed=4, first=first, max_replications=4
    )
    got = doc["selection"]
    assert got["best"] == expected.best and got["needed"] == dict(expected.needed)
    assert got["procedure"] == "crn-bonferroni" and got["sentence"] == expected.sentence()
    # an unrankable metric is bad input, refused before any run
    assert main(["simulate", "--policy", "fifo", "--policy", "random", "--select", "orders"]) == 2
    assert "no better direction" in capsys.readouterr().err
