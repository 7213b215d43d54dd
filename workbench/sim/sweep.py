"""Parameter sweeps on Dask: policies × a grid of parameters × replications.

Each cell is :func:`.study.run_cell` (configuration, policy, seed, replication) → one metrics
row: a pure function, so the rows are the same whichever worker runs them, and the frame is
sorted by (grid point, policy, replication) in the order given, so a sweep on one worker, on
two, or on a cluster gives the identical frame.

What the parameters change is decided by the first argument of :func:`sweep`:

* ``None``: each grid point is passed to :func:`configure` with no base, i.e. to
  :func:`.presets.synthetic_config` (``traders``, ``clients``, ``orders_per_day``, ``days``,
  ``warmup``, ``config_seed``) plus the overrides below;
* a :class:`~.config.SimConfig` (say a calibrated one): :func:`configure` applies the point to
  it (``traders`` resizes the roster, ``orders_per_day`` rescales synthetic arrivals);
* a mapping of names to configurations: the same, for each, with a ``config`` column;
* a callable: ``factory(**point) -> SimConfig``, for anything else.

Overrides :func:`configure` knows on any configuration: ``accept_minutes``,
``complete_minutes``, ``expire_minutes`` (the scheduler's deadlines) and any plain field of
:class:`~.config.SimConfig` (``days``, ``warmup``, ``sweep_delay``, ``money``, ``receipts``,
``rating_every``, ``top_up_every``, ...).

The rest of the platform (:data:`PLATFORM`, :func:`platform_knobs`): ``cancel_per_hour``
(client cancellations of a waiting order per hour), ``client_withdrawals`` and
``trader_withdrawals`` (per owner per day), ``dispute_share`` and ``reversed_share``.

Stress parameters (:mod:`.stress`), applied last on any configuration: ``stress`` (a preset's
name), ``load`` (the offered load ρ, a :class:`~.stress.Stress`'s ``utilisation``: arrivals
set from the traders' capacity; not ``utilisation``, which is a metric), ``spike``
(demand factor for an hour from 14:00), ``offline_share`` (traders offline throughout),
``deposit_share`` (deposits drained to this share), ``outages_per_day`` and
``outage_minutes`` (every trader's random outages; over a preset, they replace its own).

``scheduler="inline"`` runs the cells one after another in this process (a small sweep from a
notebook, no cluster to start): the same frame as on Dask. ``progress`` may be a callable
``(done, total)``, called after each cell (a notebook's own bar).

Configurations are built in the calling process and scattered to the workers once each, so a
factory need not be picklable; a policy must be a shipped name or an importable Policy
subclass.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import polars as pl

from ..progress import bar
from .config import Disputes, SimConfig, TraderSpec, Withdrawals
from .metrics import METRICS
from .presets import synthetic_config
from .study import (
    PolicyLike,
    format_pm,
    policy_name,
    rows_frame,
    run_cell,
    summarize,
    text_table,
)

#: Parameters that go to :func:`.presets.synthetic_config` when there is no base configuration
#: (``config_seed`` is its ``seed``: which traders are drawn, not the run's randomness).
SYNTHETIC = ("traders", "clients", "orders_per_day", "days", "warmup", "config_seed")
#: Deadline parameters, in minutes, and the :class:`~workbench.domain.scheduler.Deadlines`
#: field each sets.
DEADLINES = {"accept_minutes": "accept", "complete_minutes": "complete", "expire_minutes": "expire"}
#: Fields of SimConfig a parameter may not set directly (the ones above cover what makes sense).
_STRUCTURED = {"traders", "clients", "arrivals", "trace", "rates", "start", "deadlines"}
#: Stress parameters and the :class:`~.stress.Stress` field each sets.
STRESS = {
    "load": "utilisation",
    "spike": "spike",
    "offline_share": "offline",
    "deposit_share": "deposits",
    "outages_per_day": "outages_per_day",
    "outage_minutes": "outage_minutes",
}

#: The rest of the platform, on any configuration (:func:`platform_knobs`): client
#: cancellations per waiting order per hour (0: none), withdrawals per client and per trader a
#: day (both 0: none), the disputed share of completed orders (0: none) and the reversed share
#: of disputes. Where the base has the part (a calibrated one), only the knob given changes.
PLATFORM = (
    "cancel_per_hour",
    "client_withdrawals",
    "trader_withdrawals",
    "dispute_share",
    "reversed_share",
)

#: A progress report: a bar (True), none (False), only on a terminal (None), or a callable
#: ``(done, total)`` called after each cell.
Progress = bool | None | Callable[[int, int], None]

ConfigSource = SimConfig | Mapping[str, SimConfig] | Callable[..., SimConfig] | None


def configure(base: SimConfig | None = None, **params: Any) -> SimConfig:
    """A configuration for one grid point.

    With no ``base``: :func:`.presets.synthetic_config` of the :data:`SYNTHETIC` parameters.
    With a ``base``: ``traders=n`` keeps the first ``n`` traders (more than the base has:
    copies of them in turn, ids suffixed ``~1``, ``~2``, ...); ``orders_per_day`` rescales
    synthetic arrivals (a trace has its own orders: an error). Then, on either, the deadline
    parameters (:data:`DEADLINES`, minutes) and plain SimConfig fields. An unknown name is an
    error listing the known ones.
    """
    params = dict(params)
    if base is None:
        kw = {k: params.pop(k) for k in SYNTHETIC if k in params}
        if "config_seed" in kw:
            kw["seed"] = int(kw.pop("config_seed"))
        for k in ("traders", "clients"):
            if k in kw:
                kw[k] = int(kw[k])
        cfg = synthetic_config(**kw)
    else:
        cfg = base
        for k in ("clients", "config_seed"):
            if k in params:
                raise ValueError(f"{k} only applies to the synthetic configuration (no base)")
        if "traders" in params:
            cfg = dataclasses.replace(cfg, traders=_resize(cfg.traders, int(params.pop("traders"))))
        if "orders_per_day" in params:
            if cfg.arrivals is None:
                raise ValueError("orders_per_day needs synthetic arrivals; a trace has its orders")
            arrivals = dataclasses.replace(
                cfg.arrivals, orders_per_day=float(params.pop("orders_per_day"))
            )
            cfg = dataclasses.replace(cfg, arrivals=arrivals)
    from .stress import Stress, apply_stress, stress_named

    preset = params.pop("stress", None)
    knobs: dict[str, Any] = {f: float(params.pop(k)) for k, f in STRESS.items() if k in params}
    windows = {
        f: timedelta(minutes=float(params.pop(k))) for k, f in DEADLINES.items() if k in params
    }
    if windows:
        cfg = dataclasses.replace(cfg, deadlines=dataclasses.replace(cfg.deadlines, **windows))
    knobs_platform = {k: float(params.pop(k)) for k in PLATFORM if k in params}
    if knobs_platform:
        cfg = platform_knobs(cfg, **knobs_platform)
    plain = {f.name for f in dataclasses.fields(SimConfig)} - _STRUCTURED
    unknown = sorted(set(params) - plain)
    if unknown:
        known = sorted({*SYNTHETIC, *DEADLINES, *STRESS, *PLATFORM, "stress", *plain})
        raise ValueError(f"unknown parameter(s) {unknown}; known: {', '.join(known)}")
    cfg = dataclasses.replace(cfg, **params) if params else cfg
    if preset is not None or knobs:
        base_stress = stress_named(preset) if preset is not None else Stress()
        cfg = apply_stress(cfg, dataclasses.replace(base_stress, **knobs))
    return cfg


def platform_knobs(
    cfg: SimConfig,
    *,
    cancel_per_hour: float | None = None,
    client_withdrawals: float | None = None,
    trader_withdrawals: float | None = None,
    dispute_share: float | None = None,
    reversed_share: float | None = None,
) -> SimConfig:
    """``cfg`` with the rest of the platform set as a product team states it (:data:`PLATFORM`).

    Rates people read (per hour, per day, shares) become the model's: ``cancel_per_hour`` is
    SimConfig's ``cancel_rate`` times 3,600; withdrawals and disputes start from the base's
    (a calibrated configuration's fit) or the defaults of :class:`~.config.Withdrawals` and
    :class:`~.config.Disputes`, and only the given knobs change; a part whose rates all end at
    zero is switched off (``None``), so the run draws and schedules nothing for it."""
    for name, v in (
        ("cancel_per_hour", cancel_per_hour),
        ("client_withdrawals", client_withdrawals),
        ("trader_withdrawals", trader_withdrawals),
    ):
        if v is not None and not v >= 0:
            raise ValueError(f"{name} is a rate and not negative, got {v}")
    changes: dict[str, Any] = {}
    if cancel_per_hour is not None:
        changes["cancel_rate"] = cancel_per_hour / 3600.0
    if client_withdrawals is not None or trader_withdrawals is not None:
        w = cfg.withdrawals or Withdrawals()
        w = dataclasses.replace(
            w,
            client_per_day=w.client_per_day if client_withdrawals is None else client_withdrawals,
            trader_per_day=w.trader_per_day if trader_withdrawals is None else trader_withdrawals,
        )
        changes["withdrawals"] = w if w.client_per_day > 0 or w.trader_per_day > 0 else None
    if dispute_share is not None or reversed_share is not None:
        d = cfg.disputes or Disputes()
        d = dataclasses.replace(
            d,
            share=d.share if dispute_share is None else dispute_share,
            reversed=d.reversed if reversed_share is None else reversed_share,
        )
        changes["disputes"] = d if d.share > 0 else None
    return dataclasses.replace(cfg, **changes) if changes else cfg


def _resize(traders: tuple[TraderSpec, ...], n: int) -> tuple[TraderSpec, ...]:
    if n < 1:
        raise ValueError(f"traders must be at least 1, got {n}")
    if not traders:
        raise ValueError("the base configuration has no traders to resize")
    out = list(traders[:n])
    k = 0
    while len(out) < n:
        spec = traders[k % len(traders)]
        out.append(dataclasses.replace(spec, trader_id=f"{spec.trader_id}~{k // len(traders) + 1}"))
        k += 1
    return tuple(out)


def grid(params: Mapping[str, Sequence[Any]] | None) -> list[dict[str, Any]]:
    """Every combination of the parameter values, the first parameter varying slowest."""
    if not params:
        return [{}]
    for k, v in params.items():
        if isinstance(v, str | bytes) or not isinstance(v, Sequence) or not v:
            raise ValueError(f"parameter {k!r} needs a non-empty list of values, got {v!r}")
    keys = list(params)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*params.values())]


def sweep(
    configs: ConfigSource,
    policies: Sequence[PolicyLike] = ("production",),
    params: Mapping[str, Sequence[Any]] | None = None,
    replications: int = 1,
    seed: int = 0,
    scheduler: str | None = None,
    workers: int | None = None,
    *,
    common: bool = True,
    progress: Progress = None,
) -> pl.DataFrame:
    """Run every policy at every grid point of ``params`` for ``replications`` replications
    on Dask; one row per cell: the parameters (and ``config`` for a mapping), ``policy``,
    ``replication``, ``seed`` and every metric (``warmup`` included).

    ``scheduler``: the address of a running Dask scheduler (``tcp://host:8786``); without it
    a LocalCluster of ``workers`` (default 2) single-threaded worker processes is started and
    closed. Replication ``r`` uses the same streams at every point and for every policy
    (common random numbers, unless ``common=False``). ``progress``: a bar over the cells
    (None: only when stderr is a terminal), or a callable ``(done, total)``.
    ``scheduler="inline"``: in this process, no cluster.
    """
    if replications < 1:
        raise ValueError(f"replications must be at least 1, got {replications}")
    names = [policy_name(p) for p in policies]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"give each policy once, at least one: {names}")
    points = grid(params)
    clash = sorted(
        {k for pt in points for k in pt}
        & ({"config", "policy", "replication", "seed"} | (set(METRICS) - {"warmup"}))
    )
    if clash:
        raise ValueError(f"parameter name(s) {clash} clash with result columns")
    named = isinstance(configs, Mapping)
    labelled: list[tuple[dict[str, Any], SimConfig]] = []
    for label, base in configs.items() if isinstance(configs, Mapping) else [(None, configs)]:
        for pt in points:
            key = ({"config": label} if named else {}) | {
                k: v for k, v in pt.items() if k != "warmup"
            }
            if callable(base) and not isinstance(base, SimConfig):
                cfg = base(**pt)
            else:
                cfg = configure(base, **pt)
            if not isinstance(cfg, SimConfig):
                raise TypeError(f"the configuration for {pt} is not a SimConfig: {cfg!r}")
            labelled.append((key, cfg))

    cells = [(i, p, r) for i in range(len(labelled)) for p in policies for r in range(replications)]
    if scheduler == "inline":
        results = _inline(labelled, cells, seed, common, progress)
    else:
        results = _on_dask(labelled, cells, seed, common, progress, scheduler, workers)
    keys = [key for key, _ in labelled for _p in policies for _r in range(replications)]
    frame = rows_frame(results)
    lead = pl.DataFrame(keys, infer_schema_length=None) if keys and keys[0] else None
    order = [names.index(n) for n in frame["policy"]]
    point = [i for i in range(len(labelled)) for _p in policies for _r in range(replications)]
    frame = frame.with_columns(pl.Series("__point", point), pl.Series("__policy", order))
    if lead is not None:
        frame = pl.concat([lead, frame], how="horizontal")
    return frame.sort("__point", "__policy", "replication").drop("__point", "__policy")


def _reporter(progress: Progress, total: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """``(step, close)`` for a progress option: a callable is called ``(done, total)``."""
    if callable(progress):
        done = [0]
        report = progress

        def step() -> None:
            done[0] += 1
            report(done[0], total)

        return step, lambda: None
    pbar = bar(progress, total=total, desc="sweep", unit="run")
    if pbar is None:
        return (lambda: None), (lambda: None)
    return (lambda: pbar.update()), pbar.close


def _inline(
    labelled: list[tuple[dict[str, Any], SimConfig]],
    cells: list[tuple[int, PolicyLike, int]],
    seed: int,
    common: bool,
    progress: Progress,
) -> list[dict[str, Any]]:
    step, close = _reporter(progress, len(cells))
    out = []
    try:
        for i, p, r in cells:
            out.append(run_cell(labelled[i][1], p, seed, r, common=common))
            step()
    finally:
        close()
    return out


def _on_dask(
    labelled: list[tuple[dict[str, Any], SimConfig]],
    cells: list[tuple[int, PolicyLike, int]],
    seed: int,
    common: bool,
    progress: Progress,
    scheduler: str | None,
    workers: int | None,
) -> list[dict[str, Any]]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=workers or 2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,  # no dashboard; its bare HTTP server on any free port
            scheduler_kwargs={"dashboard_address": ":0"},
        )
        client = Client(cluster)
    step, close = _reporter(progress, len(cells))
    try:
        shipped = client.scatter([cfg for _, cfg in labelled])
        futures = [
            client.submit(run_cell, shipped[i], p, seed, r, common=common, pure=False)
            for i, p, r in cells
        ]
        for _ in as_completed(futures):
            step()
        results: list[dict[str, Any]] = client.gather(futures)
    finally:
        close()
        client.close()
        if cluster is not None:
            cluster.close()
    return results


def sweep_summary(frame: pl.DataFrame, *, level: float = 0.95) -> pl.DataFrame:
    """Mean and interval of every metric per grid point and policy (see :func:`.study.summarize`)."""
    by = [c for c in frame.columns if c not in METRICS and c not in ("replication", "seed")]
    if frame["warmup"].n_unique() > 1:  # warm-up swept: one more key
        by.append("warmup")
    return summarize(frame, by=by, level=level)


#: The metrics :func:`render_sweep` shows by default.
HEADLINE = (
    "fill_rate",
    "expiry_rate",
    "accept_p95",
    "complete_p95",
    "utilisation",
    "gini_orders",
    "revenue",
)


def render_sweep(summary: pl.DataFrame, metrics: Sequence[str] = HEADLINE) -> str:
    """One line per grid point and policy, ``mean ± half width`` of each of ``metrics``."""
    keys = summary.columns[: summary.columns.index("metric")]  # the group keys come first
    wide: dict[tuple[Any, ...], dict[str, str]] = {}
    for r in summary.filter(pl.col("metric").is_in(list(metrics))).iter_rows(named=True):
        wide.setdefault(tuple(r[k] for k in keys), {})[r["metric"]] = format_pm(
            r["mean"], r["half_width"]
        )
    rows = [[*map(str, key), *(cells.get(m, "–") for m in metrics)] for key, cells in wide.items()]
    return text_table([*keys, *metrics], rows)
