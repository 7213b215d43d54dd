"""Commands that simulate the scheduler: simulate, sweep."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import options as opt


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..sim.policies import POLICIES

    policies = ", ".join(POLICIES)

    m = sub.add_parser(
        "simulate",
        help="simulate the platform under one policy, or compare policies with paired intervals",
        description=(
            "Run the simulation (workbench.sim) for --replications independent replications. "
            "With one --policy: one row of metrics per replication (fill and expiry rates, "
            "waits to acceptance and completion, utilisation, Gini of orders and earnings over "
            "traders, hold times, revenue in minor units), and their means with Student-t "
            "intervals. With several: a comparison on common random numbers (replication r of "
            "every policy sees the same orders and draws), each policy's paired difference from "
            "the first one with its interval. Metrics cover orders created after the warm-up, "
            "which every output states. Writes OUT/replications.parquet and OUT/summary.parquet, "
            "and with several policies OUT/differences.parquet. "
            "Python: workbench.sim.simulate() and workbench.sim.compare()."
        ),
    )
    m.add_argument(
        "--policy",
        action="append",
        metavar="NAME",
        help=f"assignment policy, repeatable; the first is the baseline (default production; "
        f"shipped: {policies})",
    )
    _sim_source_options(m, trace=True)
    m.add_argument(
        "--replications",
        type=opt.positive,
        default=5,
        help="independent replications per policy (default 5; one gives no interval)",
    )
    m.add_argument(
        "--independent",
        action="store_true",
        help="give each policy its own random streams instead of common random numbers "
        "(the control: intervals of differences get wider)",
    )
    m.add_argument(
        "--alpha",
        type=opt.fraction,
        default=0.05,
        help="family-wise error of the ranking: every pair of policies on every metric is "
        "tested together, Holm-adjusted (default 0.05)",
    )
    m.add_argument(
        "--select",
        metavar="METRIC",
        default="fill_rate",
        help="select the best policy on this metric by a two-stage indifference-zone procedure "
        "(common random numbers: Bonferroni; --independent: Rinott), running the replications it "
        "asks for beyond --replications (default fill_rate)",
    )
    m.add_argument(
        "--delta",
        type=opt.non_negative,
        metavar="D",
        help="indifference zone of --select, in the metric's units: the smallest difference "
        "worth acting on (default: 0.01 for rates, 10 s for accept_p50, ...)",
    )
    m.add_argument(
        "--pstar",
        type=opt.fraction,
        default=0.95,
        help="probability of correct selection the procedure guarantees (default 0.95)",
    )
    m.add_argument(
        "--max-replications",
        type=opt.positive,
        default=40,
        metavar="N",
        help="at most this many replications per policy for the selection; beyond it the "
        "selection is reported incomplete with the number needed (default 40)",
    )
    m.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text tables (default) or one JSON document: summary, differences, the ranking "
        "and the selection",
    )
    m.add_argument("--out", type=Path, metavar="DIR", help="directory for the Parquet results")
    m.add_argument(
        "--export",
        type=Path,
        metavar="DIR",
        help="also write replication 0 of the first policy as a platform event export "
        "(Parquet, the catalog's envelope) that replay and audit read "
        "(workbench.sim.platform.simulate_events); DIR must not exist",
    )
    m.set_defaults(run=_simulate)

    w = sub.add_parser(
        "sweep",
        help="simulate policies over a grid of parameters on Dask (local processes or a cluster)",
        description=(
            "Run every --policy at every combination of the --param values for --replications "
            "replications each, as independent tasks on dask.distributed: a local cluster of "
            "--workers processes, or the cluster at --scheduler. Each task is a pure function of "
            "(configuration, policy, seed, replication), and rows come back sorted by grid "
            "point, policy and replication, so the result does not depend on the number of "
            "workers. Parameters: traders, orders_per_day, clients, config_seed (synthetic), "
            "accept_minutes, complete_minutes, expire_minutes (deadlines), and plain SimConfig "
            "fields such as days, warmup (seconds), sweep_delay, rating_every, top_up_every. "
            "Writes OUT/sweep.parquet (one row per cell) and OUT/summary.parquet (means and "
            "intervals per point and policy). Python: workbench.sim.sweep.sweep()."
        ),
    )
    w.add_argument(
        "--policy",
        action="append",
        metavar="NAME",
        help=f"assignment policy, repeatable (default production; shipped: {policies})",
    )
    w.add_argument(
        "--param",
        action="append",
        type=opt.param,
        default=[],
        metavar="NAME=V1,V2",
        help="a parameter and its values, repeatable: the grid is every combination "
        "(e.g. --param traders=40,60,80 --param expire_minutes=30,60)",
    )
    _sim_source_options(w, trace=False)
    w.add_argument(
        "--replications", type=opt.positive, default=3, help="replications per cell (default 3)"
    )
    w.add_argument(
        "--workers",
        type=opt.positive,
        default=2,
        help="worker processes of the local Dask cluster (default 2; ignored with --scheduler)",
    )
    w.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (its workers need "
        "workbench installed)",
    )
    w.add_argument("--out", type=Path, metavar="DIR", help="directory for the Parquet results")
    w.set_defaults(run=_sweep)


def _sim_source_options(p: argparse.ArgumentParser, *, trace: bool) -> None:
    """The options saying what is simulated: synthetic, calibrated or (simulate only) a trace."""
    # Each help names only options of the command it is shown by (sweep has no --trace).
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--from-db",
        type=Path,
        metavar="DB",
        help="calibrate traders, behaviour and demand from a replayed database "
        "(workbench.sim.calibrate) and simulate synthetic demand from the fitted profile; "
        f"without it{' (and without --trace)' if trace else ''} a synthetic platform "
        "(presets.synthetic_config)",
    )
    if trace:
        src.add_argument(
            "--trace",
            type=Path,
            metavar="DB",
            help="replay the real orders of the last --days days of a replayed database, at "
            "their real times and amounts, served by the calibrated traders under each policy",
        )
    p.add_argument(
        "--days", type=opt.days, default=2.0, help="simulated days, warm-up included (default 2)"
    )
    p.add_argument(
        "--warmup-hours",
        type=opt.non_negative,
        default=6.0,
        metavar="H",
        help="hours at the start left out of every metric while queues fill (default 6); "
        "stated in every output",
    )
    p.add_argument(
        "--traders",
        type=opt.positive,
        metavar="N",
        help="traders: the synthetic platform's count, or the calibrated roster cut to (or "
        "repeated up to) this many (default: 60 synthetic, all calibrated)",
    )
    p.add_argument(
        "--orders-per-day",
        type=opt.non_negative,
        metavar="N",
        help="mean orders per day of synthetic or calibrated demand (default: 3000 synthetic, "
        f"the fitted rate calibrated{'; not with --trace' if trace else ''})",
    )
    from ..sim.stress import STRESSES

    p.add_argument(
        "--stress",
        choices=list(STRESSES),
        metavar="NAME",
        help="a stress scenario applied to the platform (workbench.sim.stress): "
        + "; ".join(f"{s.name}: {s.description}" for s in STRESSES.values()).replace("%", "%%"),
    )
    _platform_options(p)
    p.add_argument("--seed", type=int, default=0, help="random seed of the runs (default 0)")
    p.add_argument(
        "--level",
        type=opt.fraction,
        default=0.95,
        help="confidence level of the intervals (default 0.95)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it only shows on a terminal anyway)",
    )


def _platform_options(p: argparse.ArgumentParser) -> None:
    """Cancellations, withdrawals, disputes and outages (workbench.sim.sweep.PLATFORM and the
    outage knobs of workbench.sim.stress), in the units a product team reads."""
    g = p.add_argument_group(
        "the rest of the platform",
        "off unless given on a synthetic platform; with --from-db or --trace, as calibrated "
        "from the database, each option replacing only what it names (0 switches a part off)",
    )
    cancel = g.add_mutually_exclusive_group()
    cancel.add_argument(
        "--cancel-rate",
        type=opt.non_negative,
        metavar="PER_HOUR",
        help="client cancellations: the rate per hour at which a client gives up on an order "
        "still waiting for a trader (exponential patience, Erlang A's theta; 0: none), "
        "e.g. 2 for a mean patience of 30 minutes",
    )
    cancel.add_argument(
        "--patience",
        type=opt.positive_minutes,
        metavar="MINUTES",
        help="client cancellations given as the clients' mean patience in minutes (the same "
        "as --cancel-rate 60/MINUTES)",
    )
    g.add_argument(
        "--client-withdrawals",
        type=opt.non_negative,
        metavar="PER_DAY",
        help="withdrawals each client asks for a day, of a share of its available balance "
        "(workbench.sim.config.Withdrawals; 0: none)",
    )
    g.add_argument(
        "--trader-withdrawals",
        type=opt.non_negative,
        metavar="PER_DAY",
        help="withdrawals each trader asks for a day, of a share of its free deposit, which "
        "leaves less deposit for payin orders (0: none)",
    )
    g.add_argument(
        "--disputes",
        type=opt.per_cent,
        metavar="PER_CENT",
        help="per cent of completed orders the client disputes (0: none; default 40 per cent "
        "of those reversed, see --reversed)",
    )
    g.add_argument(
        "--reversed",
        type=opt.per_cent,
        metavar="PER_CENT",
        help="per cent of disputes support resolves by reversing the order (the money goes "
        "back; the rest are upheld)",
    )
    g.add_argument(
        "--outages",
        type=opt.non_negative,
        metavar="PER_DAY",
        help="random outages of every trader, per trader per day, cut out of its shifts "
        "(over --stress, replaces the preset's; flaky has 3)",
    )
    g.add_argument(
        "--outage-minutes",
        type=opt.positive_minutes,
        metavar="MINUTES",
        help="mean length of an outage (exponential; default 60, or the preset's)",
    )


def _platform_params(args: argparse.Namespace) -> dict[str, float]:
    """The platform options given, as :func:`workbench.sim.sweep.configure` parameters."""
    out: dict[str, float] = {}
    if args.cancel_rate is not None:
        out["cancel_per_hour"] = args.cancel_rate
    if args.patience is not None:
        out["cancel_per_hour"] = 60.0 / args.patience
    if args.client_withdrawals is not None:
        out["client_withdrawals"] = args.client_withdrawals
    if args.trader_withdrawals is not None:
        out["trader_withdrawals"] = args.trader_withdrawals
    if args.disputes is not None:
        out["dispute_share"] = args.disputes / 100.0
    if args.reversed is not None:
        out["reversed_share"] = args.reversed / 100.0
    if args.outages is not None:
        out["outages_per_day"] = args.outages
    if args.outage_minutes is not None:
        out["outage_minutes"] = args.outage_minutes
    return out


def _sim_config(args: argparse.Namespace) -> object:
    """The configuration the simulate and sweep options describe (warm-up in seconds)."""
    from ..sim.sweep import configure

    warmup = args.warmup_hours * 3600.0
    if warmup >= args.days * 86_400:
        raise ValueError(
            f"a warm-up of {args.warmup_hours:g} h leaves nothing of {args.days:g} days"
        )
    trace = getattr(args, "trace", None)
    db = args.from_db or trace
    scale = {}
    if args.traders is not None:
        scale["traders"] = args.traders
    if args.orders_per_day is not None:
        if trace is not None:
            raise ValueError(
                "--orders-per-day does not apply to --trace (the trace has its orders)"
            )
        scale["orders_per_day"] = args.orders_per_day
    if args.stress is not None:
        if trace is not None:
            raise ValueError("--stress sets synthetic demand; it does not apply to --trace")
        scale["stress"] = args.stress
    scale.update(_platform_params(args))
    if db is None:
        return configure(None, days=args.days, warmup=warmup, **scale)
    if not Path(db).exists():
        raise FileNotFoundError(f"{db}: no such database (run `workbench replay` first)")
    from ..sim.calibrate import calibrate

    cal = calibrate(db)
    if trace is not None:
        base = cal.trace_config(days=args.days, warmup=warmup)
    else:
        base = cal.config(days=args.days, warmup=warmup)
    return configure(base, **scale)


def _write_frames(out: Path | None, **frames: object) -> None:
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.write_parquet(out / f"{name}.parquet")  # type: ignore[attr-defined]
    names = ", ".join(f"{n}.parquet" for n in frames)
    print(f"wrote {names} to {out}", file=sys.stderr)


def _simulate(args: argparse.Namespace) -> int:
    from ..sim.study import describe, policy_name, simulate

    policies = args.policy or ["production"]
    for p in policies:
        policy_name(p)  # an unknown name fails before any work
    if args.export is not None and args.export.exists():
        raise FileExistsError(f"{args.export} exists; --export writes a new directory")
    config = _sim_config(args)
    progress = False if args.no_progress else None
    common = not args.independent
    if len(policies) == 1:
        reps = simulate(
            config,  # type: ignore[arg-type]
            policies[0],
            seed=args.seed,
            replications=args.replications,
            common=common,
            progress=progress,
        )
        from ..sim.study import revenue_currency, summarize

        currency = revenue_currency(config)  # type: ignore[arg-type]
        summary = summarize(reps, level=args.level)
        if args.format == "json":
            _print_json({"summary": summary.to_dicts(), "replications": reps.to_dicts()})
        else:
            print(describe(reps, level=args.level, common=common, currency=currency))
        _write_frames(args.out, replications=reps, summary=summary)
    else:
        _compare_and_select(args, config, policies, common, progress)
    if args.export is not None:
        from ..sim.platform import simulate_events

        _, events = simulate_events(config, policies[0], args.seed, args.export, replication=0)  # type: ignore[arg-type]
        print(
            f"exported {len(events)} events of {policies[0]} replication 0 to {args.export}",
            file=sys.stderr,
        )
    return 0


def _compare_and_select(
    args: argparse.Namespace, config: object, policies: list[str], common: bool, progress: object
) -> None:
    """Several policies: the comparison, its Holm-corrected ranking and the selection."""
    from ..sim.ranking import direction
    from ..sim.selection import default_delta, rank, select_best
    from ..sim.study import compare, revenue_currency

    direction(args.select)  # an unrankable metric fails before any work
    delta = default_delta(args.select) if args.delta is None else args.delta
    if delta <= 0:
        raise ValueError("--delta must be positive")
    if args.replications < 2:
        raise ValueError("comparing policies needs --replications of at least 2")
    result = compare(
        config,  # type: ignore[arg-type]
        policies,
        seed=args.seed,
        replications=args.replications,
        level=args.level,
        common=common,
        progress=progress,  # type: ignore[arg-type]
    )
    ranking = rank(result.replications, alpha=args.alpha)
    selection, every = select_best(
        config,  # type: ignore[arg-type]
        policies,
        args.select,
        delta,
        pstar=args.pstar,
        n0=args.replications,
        seed=args.seed,
        common=common,
        max_replications=args.max_replications,
        first=result.replications,
        progress=progress,  # type: ignore[arg-type]
    )
    if args.format == "json":
        _print_json(
            {
                "policies": list(result.policies),
                "baseline": result.baseline,
                "seed": args.seed,
                "common_random_numbers": common,
                "warmup": result.warmup,
                "level": result.level,
                "summary": result.summary.to_dicts(),
                "differences": result.differences.to_dicts(),
                "ranking": ranking.as_dict(),
                "selection": selection.as_dict(),
            }
        )
    else:
        print(result.render(revenue_currency(config)))  # type: ignore[arg-type]
        print()
        print(ranking.render(revenue_currency(config)))  # type: ignore[arg-type]
        print()
        print(selection.sentence())
    _write_frames(
        args.out,
        replications=result.replications,
        differences=result.differences,
        summary=result.summary,
        pairwise=ranking.pairs,
        selection_runs=every,
    )


def _print_json(document: dict[str, object]) -> None:
    import json
    import math

    def clean(x: object) -> object:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    print(json.dumps(clean(document), indent=2, default=str))


def _sweep(args: argparse.Namespace) -> int:
    from functools import partial

    from ..sim.study import policy_name
    from ..sim.sweep import configure, render_sweep, sweep, sweep_summary

    policies = args.policy or ["production"]
    for p in policies:
        policy_name(p)
    params = dict(args.param)
    if len(params) != len(args.param):
        raise ValueError("give each --param once (list all its values after the =)")
    base = _sim_config(args)
    if args.from_db is None:  # rebuild the synthetic platform at each point, e.g. its traders
        warmup = args.warmup_hours * 3600.0
        scale = {k: getattr(args, k) for k in ("traders", "orders_per_day", "stress")}
        fixed = {k: v for k, v in scale.items() if v is not None} | _platform_params(args)
        clash = sorted(set(fixed) & set(params))
        if clash:
            raise ValueError(f"{', '.join(clash)} given both as an option and as a --param")
        factory = partial(configure, None, days=args.days, warmup=warmup, **fixed)
        configs: object = factory
    else:
        configs = base
    frame = sweep(
        configs,  # type: ignore[arg-type]
        policies,
        params,
        replications=args.replications,
        seed=args.seed,
        scheduler=args.scheduler,
        workers=args.workers,
        progress=False if args.no_progress else None,
    )
    summary = sweep_summary(frame, level=args.level)
    from ..sim.study import header

    print(header(frame, level=args.level))
    print()
    print(render_sweep(summary))
    _write_frames(args.out, sweep=frame, summary=summary)
    return 0
