"""POLICY_DEVIATION, the audit's SQL (``workbench/models/audit/audit_policy_pick.sql`` and
``workbench/models/checks/policy_deviation.sql``), against the domain's production policy
(:func:`workbench.domain.scheduler.production_choice` of :func:`~workbench.domain.scheduler.eligible`):
for EVERY assignment that broke no scheduler rule, both must name the same pick, and the findings
must be exactly the assignments whose pick is another trader.

The oracle folds the events the replay kept (``events``, decoded by the domain) in ``(position,
event_id)`` order through :class:`~workbench.domain.world.World` and, just before each
``payment_order.assigned`` that :func:`~workbench.domain.scheduler.broken_rules` passes (with the
pricing the event records, as ASSIGNMENT_VIOLATION judges it), asks the policy at the event's own
rate. Histories: generated (planted and clean, several seeds), a clean day edited at random so
that deviations are common (assignments given to another trader, scores republished, traders'
presence events dropped, limits changed), and the platform's own export (no deviation).
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.audit import policy_deviation_shares, shared
from workbench.audit.run import audit
from workbench.domain import payment_order as po
from workbench.domain.catalog import DecodingError, try_decode
from workbench.domain.money import OrderPricing
from workbench.domain.scheduler import broken_rules, eligible, production_choice
from workbench.domain.world import World
from workbench.export import ENVELOPE_SCHEMA
from workbench.generator import generate
from workbench.notebook import decisions
from workbench.replay.engine import rebuild

SMALL = {"days": 1, "orders_per_day": 200, "traders": 10, "clients": 4}
FIXTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "platform-export-3d"
Picks = dict[str, str | None]  # assigned event_id -> the pick's trader_id (None: nobody)
Row = dict[str, Any]
FEW = settings(max_examples=4, deadline=None, derandomize=True, database=None)


def sql_picks(db: Path) -> tuple[Picks, dict[str, str]]:
    """The model's pick per assignment that broke no rule, and the assigned traders: the pick
    table has the assignments whose pick is not their own trader (or whose own trader fails its
    money rule at the formula's pricing); every other one went to the pick."""
    with duckdb.connect(str(db), read_only=True) as con:
        shared.prepare(con, ["audit_policy_pick"])
        judged = con.sql("SELECT event_id, trader_id, self_ok FROM audit_policy_assignments")
        picks = con.sql("SELECT event_id, pick_id FROM audit_policy_pick").fetchall()
        rows = judged.fetchall()
    assigned = {e: t for e, t, _ in rows}
    chosen: Picks = {e: (t if ok else None) for e, t, ok in rows}
    chosen.update(dict(picks))
    return chosen, assigned


def oracle_picks(db: Path) -> tuple[Picks, dict[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql("SELECT * EXCLUDE (source) FROM events ORDER BY position, event_id")
        events = [try_decode(r) for r in rows.to_arrow_table().to_pylist()]
    world, picks, assigned = World(), {}, {}
    for e in events:
        assert not isinstance(e, DecodingError), e
        if isinstance(p := e.payload, po.OrderAssigned):
            order = world.orders.get(e.aggregate_id) or po.PaymentOrderState(e.aggregate_id)
            pricing = OrderPricing(p.settlement_amount, p.platform_fee, p.trader_reward)
            if not broken_rules(world, order, p.trader_id, pricing):
                choice = production_choice(eligible(world, order, p.rate))
                picks[e.event_id] = choice.trader_id if choice else None
                assigned[e.event_id] = p.trader_id
        world.apply(e)
    return picks, assigned


def deviations(picks: Picks, assigned: dict[str, str]) -> set[str]:
    return {e for e, p in picks.items() if p is not None and p != assigned[e]}


def compare(export: Path, db: Path) -> set[str]:
    """Replay ``export``; the picks and the findings must agree. Returns the deviations."""
    rebuild([export], db, progress=False)
    sql, oracle = sql_picks(db), oracle_picks(db)
    assert sql[1] == oracle[1], "not the same assignments judged as breaking no rule"
    diff = {e: (sql[0][e], oracle[0][e]) for e in oracle[0] if sql[0][e] != oracle[0][e]}
    assert not diff, f"(SQL pick, domain pick) by assigned event: {diff}"
    found = audit(db, record=False).findings.filter(pl.col("check") == "POLICY_DEVIATION")
    expected = deviations(*oracle)
    assert set(found["event_id"]) == expected
    return expected


def compare_rows(rows: list[Row], folder: Path) -> set[str]:
    (folder / "export").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=ENVELOPE_SCHEMA), folder / "export/p.parquet")
    return compare(folder / "export", folder / "db.duckdb")


@pytest.mark.parametrize("seed, clean", [(1, False), (4, False), (2, True)])
def test_generated_histories(seed: int, clean: bool, tmp_path: Path) -> None:
    truth = None if clean else tmp_path / "truth.csv"
    generate(tmp_path / "export", seed=seed, clean=clean, truth=truth, progress=False, **SMALL)
    compare(tmp_path / "export", tmp_path / "db.duckdb")


def test_the_platform_export_has_no_deviation(tmp_path: Path) -> None:
    assert compare(FIXTURE, tmp_path / "db.duckdb") == set()


# --------------------------------------------------------------------------- edited histories
@functools.cache
def clean_rows() -> tuple[Row, ...]:
    """A clean day, generated once per process, in position order."""
    with tempfile.TemporaryDirectory(prefix="policy-diff-") as d:
        generate(Path(d) / "export", seed=12, clean=True, progress=False, **SMALL)
        rows = ds.dataset(str(Path(d) / "export")).to_table(columns=ENVELOPE_SCHEMA.names)
        return tuple(sorted(rows.to_pylist(), key=lambda r: r["position"]))


#: Edit -> the kinds of event it changes (the ``i``-th of them, modulo).
EDITS: dict[str, tuple[str, ...]] = {
    "trader": ("payment_order.assigned",),  # to another trader
    "score": ("trader_rating.published",),  # another score
    "drop": ("trader.went_online", "trader.went_offline"),
    "limits": ("trader.registered", "trader.limits_changed"),  # capacity and amounts
}


def edited(edits: list[tuple[str, int]]) -> list[Row]:
    rows = [dict(r) for r in clean_rows()]
    for name, i in edits:
        among = [r for r in rows if r["kind"] in EDITS[name]]
        if not among:
            continue
        row = among[i % len(among)]
        p = json.loads(row["payload"])
        if name == "drop":
            rows.remove(row)
        elif name == "trader":
            p["trader_id"] = f"tr-{1 + i % SMALL['traders']:02d}"
        elif name == "score":
            p["score"] = str([55, 70, 90, 61.2, 87.5][i % 5])
        elif name == "limits":
            limits = p.get("limits", p)
            limits["max_active_orders"] = 1 + i % 4
            limits["max_amount"] = limits["max_amount"] * (1 + i % 2)
        row["payload"] = json.dumps(p)
    return rows


@FEW
@given(st.lists(st.tuples(st.sampled_from(sorted(EDITS)), st.integers(0, 10**6)), max_size=40))
def test_edited_histories(edits: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory(prefix="policy-diff-") as d:
        compare_rows(edited(edits), Path(d))


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A clean day with many assignments given to another trader, replayed and held to the
    domain once for the tests below: its database and the deviations."""
    folder = tmp_path_factory.mktemp("policy-many")
    found = compare_rows(edited([("trader", i * 7919) for i in range(60)]), folder)
    return folder / "db.duckdb", found


def test_edits_make_deviations_of_every_reason(many: tuple[Path, set[str]]) -> None:
    """Many assignments given to another trader: the policy's pick differs for a score, for the
    load and for the id, and each reason is the detail's."""
    db, found = many
    assert len(found) >= 10
    details = audit(db, record=False).findings.filter(pl.col("check") == "POLICY_DEVIATION")[
        "detail"
    ]
    for reason in ("higher score", "fewer active orders", "smaller id"):
        assert details.str.contains(reason).any(), reason


# --------------------------------------------------------------------------- analysts' shares
def test_the_shares_count_the_domains_deviations(many: tuple[Path, set[str]]) -> None:
    """``policy_deviation_shares`` against the domain's picks on a day with many deviations:
    per trader as assigned and as the pick passed over, and per day, counted here by hand; the
    notebook's helpers read the same."""
    db, found = many
    picks, assigned = oracle_picks(db)
    with duckdb.connect(str(db), read_only=True) as con:
        days = dict(
            con.sql(
                "SELECT event_id, (occurred_at AT TIME ZONE 'UTC')::DATE FROM events"
                " WHERE kind = 'payment_order.assigned'"
            ).fetchall()
        )
    shares = policy_deviation_shares(db)
    assert shares.by_trader["deviated"].sum() == len(found) > 0
    expected: dict[str, dict[str, int]] = {}
    for e, trader in assigned.items():
        mine = expected.setdefault(trader, dict.fromkeys(("a", "d", "p", "o"), 0))
        mine["a"] += 1
        mine["d"] += e in found
        if (pick := picks[e]) is not None:
            theirs = expected.setdefault(pick, dict.fromkeys(("a", "d", "p", "o"), 0))
            theirs["p"] += 1
            theirs["o"] += e in found
    got = {
        r["trader_id"]: {
            "a": r["assigned"],
            "d": r["deviated"],
            "p": r["picked"],
            "o": r["passed_over"],
        }
        for r in shares.by_trader.iter_rows(named=True)
    }
    assert got == expected
    for r in shares.by_trader.iter_rows(named=True):
        assert r["share_assigned"] == (r["deviated"] / r["assigned"] if r["assigned"] else None)
        assert r["share_passed_over"] == (r["passed_over"] / r["picked"] if r["picked"] else None)
    per_day: dict[Any, list[int]] = {}
    for e in assigned:
        per_day.setdefault(days[e], [0, 0])
        per_day[days[e]][0] += 1
        per_day[days[e]][1] += e in found
    assert {
        r["day"]: [r["assignments"], r["deviations"]] for r in shares.by_day.iter_rows(named=True)
    } == per_day
    fig = decisions.deviations_by_day(decisions.policy_shares(db).by_day)
    assert [round(y, 9) for y in fig.data[0].y] == [
        round(100 * d / a, 9) for a, d in (per_day[k] for k in sorted(per_day))
    ]
