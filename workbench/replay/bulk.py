"""The full build: every projection computed by DuckDB from the models, over all events.

The models (:mod:`workbench.models`: one SQL file per staging table, projection and violation
rule family) are run in the order the registry derives from what each reads. Staging tables and
rule families are temporary tables of the build; projections replace their table's rows.

The per-event fold (:mod:`workbench.domain.world` laid out by :mod:`.rows`) *defines* each
projection; :func:`differences` compares a database the fold wrote with the models' results,
and the differential tests run it on generated histories, anomalies included.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import duckdb

from .. import models
from .schema import BY_NAME, JUDGED_BY_FULL_BUILD

#: Events numbered once per build in ``(position, event_id)`` order (a temp table, not a view:
#: every model reads ``ord``, and a view would sort all events again for each one). Only the
#: two key columns are sorted; the rows are joined to their number (sorting whole rows with their
#: payloads costs twice as much). The JSON text is left out: the models read the payloads typed
#: once at ingest (``payload_<stream>``, joined by ``event_id``), never the text.
PRELUDE = """
CREATE OR REPLACE TEMP TABLE ev AS
SELECT e.* EXCLUDE (source, payload), o.ord, TRUE AS fresh
FROM events e
JOIN (SELECT event_id, row_number() OVER (ORDER BY position, event_id) AS ord FROM events) o
USING (event_id)
"""

#: The state a model runs on from (:mod:`.incremental` loads it from the stored projections
#: when a batch is appended): empty in a full build, which starts from nothing. ``fresh`` in
#: ``ev`` marks the events whose effects move running figures (all of them here).
EMPTY_PRIORS = {
    "prior_traders": "SELECT *, NULL::HUGEINT AS exact_balance FROM traders LIMIT 0",
    "prior_holds": "SELECT * FROM trader_holds LIMIT 0",
    "prior_balances": "SELECT account, currency, NULL::HUGEINT AS own, NULL::HUGEINT AS held "
    "FROM account_balances LIMIT 0",
    "prior_overflows": "SELECT subject, detail FROM violations LIMIT 0",
}


def empty_priors(con: duckdb.DuckDBPyConnection) -> None:
    for name, sql in EMPTY_PRIORS.items():
        _exec(con, f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")


def drop_priors(con: duckdb.DuckDBPyConnection) -> None:
    for name in EMPTY_PRIORS:
        _exec(con, f"DROP TABLE IF EXISTS {name}")


#: The layers a replay builds (the audit's and the incremental path's models are run by them).
BUILD_LAYERS = ("staging", "projections", "violations")
#: The audit's judgments a full build stores (``policy_judgments``, ``policy_judged``), with the
#: audit's shared tables they read: run by a full build only (an appended batch leaves them, see
#: :mod:`.incremental`).
FULL_BUILD_ONLY = frozenset(t.name for t in JUDGED_BY_FULL_BUILD)
#: A full build stores the judgments from this many events on. They spare the audit the
#: policy's search (3.5 s at ten million events, under 0.1 s at a hundred thousand) and cost the
#: build its inputs again, about a quarter of a second however small the log (the models' fixed
#: cost): below this size the audit judges every assignment itself.
JUDGED_FROM_EVENTS = 100_000


def plan(only: tuple[str, ...] | None = None) -> list[models.Model]:
    """The models a build runs, in order: all of them, or what ``only``'s projections need,
    with the audit's shared tables (``workbench/models/audit/``) a stored table reads: those
    POLICY_DEVIATION's stored judgments are made from."""
    names = only
    if names is None:
        names = tuple(m.name for m in models.load().values() if m.layer in BUILD_LAYERS)
    needed: dict[str, models.Model] = {}
    for name in names:
        for m in models.upstream(name, (*BUILD_LAYERS, "audit")):
            needed.setdefault(m.name, m)
    return models.order(needed.values())


@functools.cache
def judged_by() -> str:
    """The fingerprint of the models that make POLICY_DEVIATION's stored judgments, which the
    build stores with them (``policy_judged.judged_by``) and the audit compares with its own
    (once per process: the models do not change while it runs)."""
    return models.fingerprint("policy_judgments", (*BUILD_LAYERS, "audit"))


def _judges(model: models.Model) -> bool:
    """The model makes the stored judgments: one of them, or an audit table they read."""
    return model.layer == "audit" or model.name in FULL_BUILD_ONLY


def projection_plan() -> list[models.Model]:
    """:func:`plan` but the stored judgments and the audit's tables they read: what an appended
    batch runs, and what :func:`differences` compares the fold's tables with."""
    return [m for m in plan() if not _judges(m)]


#: Projections in build order (``trader_holds`` is state, not a projection: see its model).
ORDER: tuple[str, ...] = tuple(
    m.name for m in plan() if m.layer == "projections" and BY_NAME[m.name].projection
)


def _exec(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    con.execute(sql).fetchall()


def run_model(con: duckdb.DuckDBPyConnection, model: models.Model, **context: Any) -> None:
    """Materialize one model: a projection replaces its table's rows, anything else becomes a
    temp table of that name."""
    sql = model.sql(**context)
    if model.layer == "projections":
        cols = ", ".join(BY_NAME[model.name].column_names)
        _exec(con, f"DELETE FROM {model.name}")
        _exec(con, f"INSERT INTO {model.name} ({cols}) {sql}")
    else:
        _exec(con, f"CREATE OR REPLACE TEMP TABLE {model.name} AS {sql}")


def build(
    con: duckdb.DuckDBPyConnection,
    only: tuple[str, ...] | None = None,
    progress: Any = None,
    **context: Any,
) -> dict[str, float]:
    """Replace every projection (or ``only`` those, with what they read) with its model's
    result; returns seconds per model. ``progress`` is an optional tqdm-like bar, advanced once
    per projection. ``context`` goes to the templates (a test's ``hash_expr``)."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    context = {"judged_by": judged_by(), **context}
    _exec(con, PRELUDE)
    empty_priors(con)
    timings["ev"] = time.perf_counter() - start
    steps = plan(only)
    if int(con.execute("SELECT count(*) FROM ev").fetchall()[0][0]) < JUDGED_FROM_EVENTS:
        steps = [m for m in steps if not _judges(m)]
        for name in FULL_BUILD_ONLY:  # none stored: the audit judges every assignment
            _exec(con, f"DELETE FROM {name}")
    last_read = _last_readers(steps)
    for i, model in enumerate(steps):
        start = time.perf_counter()
        if progress is not None and model.name in ORDER:
            progress.set_description(f"replay: {model.name}")
        run_model(con, model, **context)
        # a temp table is dropped as soon as its last reader has run: memory at 10M events
        for done in steps[: i + 1]:
            if done.layer != "projections" and last_read.get(done.name) == i:
                _exec(con, f"DROP TABLE IF EXISTS {done.name}")
        timings[model.name] = time.perf_counter() - start
        if progress is not None and model.name in ORDER:
            progress.update(1)
    for model in steps:
        if model.layer != "projections":
            _exec(con, f"DROP TABLE IF EXISTS {model.name}")
    _exec(con, "DROP TABLE IF EXISTS ev")
    drop_priors(con)
    return timings


def _last_readers(steps: list[models.Model]) -> dict[str, int]:
    """For each model, the index in ``steps`` of the last model that reads it."""
    out: dict[str, int] = {}
    for i, model in enumerate(steps):
        for dep in model.reads:
            out[dep] = i
    return out


def differences(
    con: duckdb.DuckDBPyConnection, limit: int = 5, **context: Any
) -> dict[str, dict[str, Any]]:
    """Row-for-row differences between each projection table and its model (EXCEPT ALL both
    ways). Run it on a database written by the per-event path: an empty result means both
    paths agree."""
    _exec(con, PRELUDE)
    empty_priors(con)
    out: dict[str, dict[str, Any]] = {}
    steps = projection_plan()
    for model in steps:  # staging, rule families and state (`trader_holds`), not projections
        if model.layer != "projections" or not BY_NAME[model.name].projection:
            run_model(con, model, **context)
    for model in steps:
        if model.layer != "projections" or not BY_NAME[model.name].projection:
            continue
        # what the model computes, over the fold's own tables for what it reads
        t = BY_NAME[model.name]
        cols = ", ".join(t.column_names)
        sql = model.sql(**context)
        only_fold = (
            con.sql(f"SELECT {cols} FROM {t.name} EXCEPT ALL SELECT * FROM ({sql}) LIMIT {limit}")
            .to_arrow_table()
            .to_pylist()
        )
        only_sql = (
            con.sql(f"SELECT * FROM ({sql}) EXCEPT ALL SELECT {cols} FROM {t.name} LIMIT {limit}")
            .to_arrow_table()
            .to_pylist()
        )
        if only_fold or only_sql:
            out[t.name] = {"only_in_fold": only_fold, "only_in_sql": only_sql}
    for model in steps:
        if model.layer != "projections":
            _exec(con, f"DROP TABLE IF EXISTS {model.name}")
    _exec(con, "DROP TABLE IF EXISTS ev")
    drop_priors(con)
    return out
