"""ASSIGNMENT_VIOLATION, the audit's SQL (``workbench/models/checks/assignment_violation.sql`` and
``workbench/models/audit/audit_assignment_trader.sql``), against the domain's scheduler rules
(:func:`workbench.domain.scheduler.broken_rules`, catalog section 4): both must name the same rules
broken by the same assignments.

The oracle folds the events the replay kept (``events``, decoded by the domain) in ``(position,
event_id)`` order through :class:`~workbench.domain.world.World` and asks ``broken_rules`` just
before each ``payment_order.assigned``, with the pricing the event records (as the SQL does).
Histories: generated with planted anomalies (they break ``online`` and ``capacity``) and clean
(both sides empty); a clean day edited at random (trader events dropped or turned into blocks,
currencies, traders, capacities changed) and on the edges of the money rules, placed there by
the domain's own state; a few of the replay fuzzer's hostile exports (``tests/fuzz``). Then the
three disagreements this test found, each fixed in the SQL and kept here: a finding with no detail
(an unregistered trader, an order never created: DuckDB's ``format()`` is NULL when an argument
is), the trader's available deposit (balance less the open holds by ref, not a sum of hold
amounts) and events at one position (ordered by ``event_id`` after the position, everywhere).
A fourth, the order read as it ends instead of as it stood at the assignment (created after it,
or again), is fixed too and tested at the end.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import replay_diff  # tests/audit/replay_diff.py, beside this file
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_diff import SMALL, Row, clean_rows

from workbench.audit.run import audit
from workbench.domain import payment_order as po
from workbench.domain.catalog import DecodingError, try_decode
from workbench.domain.money import OrderPricing
from workbench.domain.scheduler import RULES, broken_rules
from workbench.domain.world import World
from workbench.generator import generate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, as benchmarks/fuzz_long.py
from fuzz.strategies import KNOWN_FAILURES, HostileExport, hostile_exports, write_files

MONEY_RULES = {"amount_limits", "trader_deposit", "client_balance"}
Pairs = set[tuple[str, str]]  # (assigned event_id, rule)
FEW = settings(max_examples=3, deadline=None, derandomize=True, database=None)


def sql_side(db: Path) -> Pairs:
    """The rules each finding's detail names (``?`` for a finding with no detail)."""
    found = audit(db, record=False).findings.filter(pl.col("check") == "ASSIGNMENT_VIOLATION")
    out: Pairs = set()
    for event_id, detail in found.select("event_id", "detail").iter_rows():
        m = re.search(r" breaking rule (.+?) \(", detail or "")
        out |= {(event_id, r) for r in (m.group(1).split(", ") if m else ["?"])}
    return out


def oracle_side(db: Path) -> Pairs:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql("SELECT * EXCLUDE (source) FROM events ORDER BY position, event_id")
        events = [try_decode(r) for r in rows.to_arrow_table().to_pylist()]
    world, out = World(), set()
    for e in events:
        assert not isinstance(e, DecodingError), e
        if isinstance(p := e.payload, po.OrderAssigned):
            order = world.orders.get(e.aggregate_id) or po.PaymentOrderState(e.aggregate_id)
            pricing = OrderPricing(p.settlement_amount, p.platform_fee, p.trader_reward)
            out |= {(e.event_id, r) for r in broken_rules(world, order, p.trader_id, pricing)}
        world.apply(e)
    return out


def compare(export: Path, db: Path) -> Pairs:
    return replay_diff.compare(export, db, sql_side, oracle_side)


def compare_rows(rows: list[Row], folder: Path) -> Pairs:
    return replay_diff.compare_rows(rows, folder, sql_side, oracle_side)


def _with(row: Row, **changes: Any) -> str:
    return json.dumps({**json.loads(row["payload"]), **changes})


@pytest.mark.parametrize("seed, clean", [(1, False), (4, False), (9, False), (2, True)])
def test_generated_histories(seed: int, clean: bool, tmp_path: Path) -> None:
    truth = None if clean else tmp_path / "truth.csv"
    generate(tmp_path / "export", seed=seed, clean=clean, truth=truth, progress=False, **SMALL)
    assert bool(compare(tmp_path / "export", tmp_path / "db.duckdb")) is not clean


# --------------------------------------------------------------------------- edited histories


#: Edit -> the kinds of event it changes (the ``i``-th of them, modulo).
EDITS: dict[str, tuple[str, ...]] = {
    "drop": tuple(
        f"trader.{k}"
        for k in ("went_online", "went_offline", "unblocked", "limits_changed", "hold_released")
    ),
    "block": ("trader.went_offline", "trader.deposit_topped_up"),  # becomes trader.blocked
    "currency": ("payment_order.created",),
    "trader": ("payment_order.assigned",),  # to another registered trader
    "retry": ("payment_order.assigned",),  # a later attempt, to the order's first trader
    "capacity": ("trader.registered", "trader.limits_changed"),
}


def edited(edits: list[tuple[str, int]]) -> list[Row]:
    rows = [dict(r) for r in clean_rows()]
    for name, i in edits:
        among = [r for r in rows if r["kind"] in EDITS[name]]
        firsts = {r["aggregate_id"]: r for r in reversed(among)}
        if name == "retry":  # an order's first assignment is no retry
            among = [r for r in among if r is not firsts[r["aggregate_id"]]]
        if not among:  # all dropped or blocked already
            continue
        row = among[i % len(among)]
        p = json.loads(row["payload"])
        if name == "drop":
            rows.remove(row)
        elif name == "block":
            row["kind"], p = "trader.blocked", {"reason": "edited"}
        elif name == "currency":
            money = p.get("money", p)  # v2 nests it
            money["currency"] = {"RUB": "KZT", "KZT": "UZS", "UZS": "RUB"}[money["currency"]]
        elif name == "trader":
            p["trader_id"] = f"tr-{1 + i % SMALL['traders']:02d}"
        elif name == "retry":
            p["trader_id"] = json.loads(firsts[row["aggregate_id"]]["payload"])["trader_id"]
        elif name == "capacity":
            p.get("limits", p)["max_active_orders"] = i % 3
        row["payload"] = json.dumps(p)
    return rows


@FEW
@given(st.lists(st.tuples(st.sampled_from(sorted(EDITS)), st.integers(0, 10**6)), max_size=30))
def test_edited_histories(edits: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory(prefix="assign-diff-") as d:
        compare_rows(edited(edits), Path(d))


def test_the_edits_reach_every_other_rule(tmp_path: Path) -> None:
    oracle = compare_rows(edited([(n, i * 7919) for n in EDITS for i in range(8)]), tmp_path)
    assert {rule for _, rule in oracle} >= set(RULES) - MONEY_RULES - {"registered"}


def test_the_edges_of_the_money_rules(tmp_path: Path) -> None:
    """Every 3rd order assigned once is put on the edge of the deposit or balance rule and of its
    amount limits as the domain stands just before the assignment, or one minor unit past them
    (every other one); every 5th credit of a trader's deposit is turned into a debit first."""
    rows = [dict(r) for r in clean_rows()]
    for r in [r for r in rows if r["kind"] == "trader.deposit_credited"][::5]:
        r["kind"] = "trader.deposit_debited"
    assigned = Counter(r["aggregate_id"] for r in rows if r["kind"] == "payment_order.assigned")
    created = {r["aggregate_id"]: r for r in rows if r["kind"] == "payment_order.created"}
    world, edges, k = World(), {}, 0
    for r in rows:
        e = try_decode(r)
        assert not isinstance(e, DecodingError)
        once = isinstance(p := e.payload, po.OrderAssigned) and assigned[e.aggregate_id] == 1
        if once and (k := k + 1) % 3 == 0:
            t, o, past = world.traders[p.trader_id], world.orders[e.aggregate_id], k % 2
            if o.direction == "payin":
                settlement = t.available + p.trader_reward + past
            else:
                owned = world.book.available(f"client:{o.client_id}", p.settlement_currency)
                settlement = owned - p.platform_fee + past
            if settlement > 0:
                r["payload"] = _with(r, settlement_amount=settlement)
                e, edges[r["event_id"]] = try_decode(r), past
                c = json.loads(created[e.aggregate_id]["payload"])
                limit = t.max_amount + past if k % 4 < 2 else t.min_amount - past
                c.get("money", c)["amount"] = limit
                created[e.aggregate_id]["payload"] = json.dumps(c)
        world.apply(e)
    oracle = compare_rows(rows, tmp_path)
    for past in (0, 1):
        broken = {rule for e, rule in oracle if edges.get(e) == past}
        assert broken & MONEY_RULES == (MONEY_RULES if past else set())


@FEW
@given(ex=hostile_exports(specs=(2, 8), files=(1, 2), bodies=(0, 0), exclude=KNOWN_FAILURES))
def test_hostile_exports(ex: HostileExport) -> None:
    with tempfile.TemporaryDirectory(prefix="assign-diff-") as d:
        write_files(ex.files, Path(d) / "export")
        compare(Path(d) / "export", Path(d) / "db.duckdb")


# --------------------------------------------------------------------------- found and fixed
def on_the_edge(rows: list[Row], past: dict[str, int]) -> set[str]:
    """Put each assignment of ``past`` (event_id -> minor units) on the edge of its money rule
    as the fold stands just before it (the trader's deposit for a payin, the client's balance for
    a payout), or that many units beyond it, in one fold; returns those it could (a positive
    settlement)."""
    world, done = World(), set()
    for r in sorted(rows, key=lambda r: (r["position"], r["event_id"])):
        e = try_decode(r)
        assert not isinstance(e, DecodingError), e
        if r["event_id"] in past and isinstance(p := e.payload, po.OrderAssigned):
            order = world.orders[e.aggregate_id]
            if order.direction == "payin":
                settlement = world.traders[p.trader_id].available + p.trader_reward
            else:
                owned = world.book.available(f"client:{order.client_id}", p.settlement_currency)
                settlement = owned - p.platform_fee
            if settlement + past[r["event_id"]] > 0:
                r["payload"] = _with(r, settlement_amount=settlement + past[r["event_id"]])
                e, _ = try_decode(r), done.add(r["event_id"])
        world.apply(e)
    return done


def assigned(rows: list[Row], direction: str | None = None) -> list[Row]:
    """The first assignments of orders, in position order (of ``direction``'s orders if given)."""
    created = {
        r["aggregate_id"]: json.loads(r["payload"])
        for r in rows
        if r["kind"] == "payment_order.created"
    }
    return [
        r
        for r in rows
        if r["kind"] == "payment_order.assigned"
        and json.loads(r["payload"])["attempt"] == 1
        and (direction is None or created[r["aggregate_id"]]["direction"] == direction)
    ]


def test_an_unregistered_trader_and_an_order_never_created(tmp_path: Path) -> None:
    """An assignment to an unregistered trader breaks `registered`; one of an order never
    created, the fold's empty order (amount 0, no currency, no direction), `currency` and
    `amount_limits`. Was: no rule named, the finding's detail NULL (the trader's limits and
    currency, the order's currency)."""
    rows = edited([])
    unregistered, uncreated = assigned(rows)[:2]
    unregistered["payload"] = _with(unregistered, trader_id="tr-99")
    rows = [
        r
        for r in rows
        if not (
            r["kind"] == "payment_order.created" and r["aggregate_id"] == uncreated["aggregate_id"]
        )
    ]
    oracle = compare_rows(rows, tmp_path)
    assert {r for e, r in oracle if e == unregistered["event_id"]} == {"registered"}
    assert {r for e, r in oracle if e == uncreated["event_id"]} >= {"currency", "amount_limits"}
    found = audit(tmp_path / "db.duckdb", record=False).findings
    mine = (pl.col("check") == "ASSIGNMENT_VIOLATION") & (
        pl.col("event_id") == unregistered["event_id"]
    )
    [detail] = found.filter(mine)["detail"].to_list()
    assert "active 0 of missing" in detail and "within missing..missing," in detail, detail


HOLD_EDITS = {
    # a release of more than was held (the SQL added the released amount)
    "trader.hold_released": lambda p: {**p, "amount": p["amount"] * 1000},
    # a capture of less than was held (the SQL ignored captures)
    "trader.hold_captured": lambda p: {**p, "amount": p["amount"] // 2},
}


def test_holds_that_do_not_match(tmp_path: Path) -> None:
    """The available deposit is the balance less the open holds by ref (catalog 3.2): a hold
    event changes what is held by what it places less what the ref held before. Four traders'
    holds are broken (a release larger than its hold, a capture smaller, a release of a ref with
    no hold, a ref placed twice then captured), and each one's later payins put on the edge of
    the deposit rule as the fold stands (every other one a unit past it), so any other sum
    shows. Was: the sum of the amounts (placed -, released +, captured 0)."""
    rows = edited([])
    targets: list[Row] = []

    def pick(kind: str) -> Row:
        used = {t["aggregate_id"] for t in targets}
        row = next(r for r in rows if r["kind"] == kind and r["aggregate_id"] not in used)
        targets.append(row)
        return row

    for kind, change in HOLD_EDITS.items():
        r = pick(kind)
        r["payload"] = json.dumps(change(json.loads(r["payload"])))
    r = pick("trader.hold_released")
    r["payload"] = _with(r, ref=json.loads(r["payload"])["ref"] + ":none")
    r = pick("trader.hold_captured")  # placed again, just before it: holds the last amount
    again = {**r, "kind": "trader.hold_placed", "event_id": "00000000-0000-4000-8000-000000000001"}
    again["payload"] = _with(r, amount=json.loads(r["payload"])["amount"] * 3)
    rows.append(again)
    past: dict[str, int] = {}
    for t in targets:
        later = [
            a["event_id"]
            for a in assigned(rows, "payin")
            if a["position"] > t["position"]
            and json.loads(a["payload"])["trader_id"] == t["aggregate_id"]
        ][:6]
        past |= {e: i % 2 for i, e in enumerate(later)}
    beyond = {e for e in on_the_edge(rows, past) if past[e]}
    assert len(beyond) >= len(targets)
    oracle = compare_rows(rows, tmp_path)
    assert {e for e, rule in oracle if rule == "trader_deposit"} >= beyond


def debits(row: Row, account: str, currency: str) -> bool:
    """A ledger batch that takes money from ``account`` in ``currency``."""
    postings = json.loads(row["payload"]).get("postings", [])
    return any(q["from"] == account and q["currency"] == currency for q in postings)


BEFORE, AFTER = "00000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffff00"


#: The kinds of event moved to an assignment's position, with the assignment's direction and the
#: rule the move shows in.
MOVED = {
    "trader.went_offline": ("payin", "online"),  # the trader's state
    "trader.hold_placed": ("payin", "trader_deposit"),  # its deposit
    "ledger_plan.batch_held": ("payout", "client_balance"),  # the client's balance
}


def test_events_at_an_assignments_position(tmp_path: Path) -> None:
    """For six assignments (for each kind, other traders or other clients), the next
    event that one of their rules reads (the trader going offline, a hold on its deposit, a debit
    of the client's account) is moved to the assignment's position, its event_id before the
    assignment's or after it; each assignment is put one unit past the edge of its money rule as
    the fold stands. Before it, the event counts; after it, not. And a copy of an assignment at
    its own position, its event_id after it, breaks `not_assigned_before` (and counts the first as
    active). Was: events at one position never counted, copies at one rank, neither tried."""
    rows = edited([])
    first = assigned(rows)[0]
    copy = {**first, "event_id": "ffffffff-ffff-4fff-bfff-ffffffffffff"}  # sorts after it
    rows.append(copy)
    moved: dict[str, tuple[str, bool]] = {}  # assignment -> (kind moved, before it)
    copied = json.loads(first["payload"])["trader_id"]
    used: set[tuple[str, str]] = set()  # (kind, trader or client) moved once
    seen = {}  # assignment -> (client account, its trader online), as the fold stands before it
    world = World()
    for r in sorted(rows, key=lambda r: (r["position"], r["event_id"])):
        e = try_decode(r)
        assert not isinstance(e, DecodingError), e
        if isinstance(q := e.payload, po.OrderAssigned) and q.trader_id in world.traders:
            seen[r["event_id"]] = (
                f"client:{world.orders[e.aggregate_id].client_id}",
                world.traders[q.trader_id].online,
            )
        world.apply(e)
    for before, kind in itertools.product((True, False), MOVED):
        direction = MOVED[kind][0]
        for a in assigned(rows, direction):
            p = json.loads(a["payload"])
            client, online = seen.get(a["event_id"], (None, False))
            mover = p["trader_id"] if kind.startswith("trader.") else client
            if (
                a["event_id"] in moved
                or p["trader_id"] == copied
                or (kind, mover) in used
                or (kind == "trader.went_offline" and not online)
            ):
                continue
            nxt = next(
                (
                    r
                    for r in rows
                    if r["position"] > a["position"]
                    and r["kind"] == kind
                    and (
                        r["aggregate_id"] == p["trader_id"]
                        if kind.startswith("trader.")
                        else debits(r, client, p["settlement_currency"])
                    )
                ),
                None,
            )
            if nxt is not None:
                break
        else:
            raise AssertionError(f"no {kind} after a {direction} assignment")
        n = f"{len(moved):02d}"
        nxt.update(position=a["position"], event_id=(BEFORE if before else AFTER)[:-2] + n)
        moved[a["event_id"]] = (kind, before)
        used.add((kind, mover))
    assert on_the_edge(rows, dict.fromkeys(moved, 1)) == set(moved)
    oracle = compare_rows(rows, tmp_path)
    assert (copy["event_id"], "not_assigned_before") in oracle
    for a, (kind, before) in moved.items():
        rule = MOVED[kind][1]
        counted = before or rule != "online"  # one unit past the edge either way
        assert ((a, rule) in oracle) is counted, (kind, before, sorted(oracle))


# ------------------------------------------------------------------- the order at the assignment
def test_an_order_created_after_its_assignment(tmp_path: Path) -> None:
    """The order is judged as it stands at the assignment (``audit_attempt_orders``): not created
    yet, it is the fold's empty order, whatever its later creation says."""
    rows = edited([])
    first = assigned(rows)[0]
    created = next(
        r
        for r in rows
        if r["kind"] == "payment_order.created" and r["aggregate_id"] == first["aggregate_id"]
    )
    created.update(position=first["position"], event_id="ffffffff-ffff-4fff-bfff-fffffffffff0")
    compare_rows(rows, tmp_path)  # the domain: `currency`, `amount_limits`; the SQL: none
