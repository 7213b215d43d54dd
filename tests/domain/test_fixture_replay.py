"""The platform's own export (tests/domain/conftest.py reads it): a correct history, so a replay
applies every event with no violation, and every figure the platform recorded agrees with the
catalog's formulas evaluated on the world folded just before the event."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from workbench.domain import catalog, ledger, money, payment_order, rating, scheduler
from workbench.domain.events import Event
from workbench.domain.world import World, fold

EXPECTED_KINDS = {
    ("trader.registered", 1),
    ("trader.registered", 2),
    ("payment_order.created", 1),
    ("payment_order.created", 2),
}


@pytest.fixture(scope="module")
def replay(fixture_events: list[Event]) -> dict[str, Any]:
    """Fold the export once, recording what the checks need just before each event."""
    w = World()
    ratings: list[tuple[Event, rating.RatingCounts, Decimal]] = []
    pricing: list[tuple[Event, money.OrderPricing, money.OrderPricing]] = []
    rules: list[tuple[Event, list[str]]] = []
    per_event_violations: list[Any] = []
    for e in fixture_events:
        p = e.payload
        if isinstance(p, rating.RatingPublished):
            counts = w.history.counts(e.aggregate_id, p.as_of, p.window_days)
            ratings.append((e, counts, rating.score(counts)))
        elif isinstance(p, payment_order.OrderAssigned):
            order = w.orders[e.aggregate_id]
            client = w.clients[order.client_id or ""]
            trader = w.traders[p.trader_id]
            assert client.fee_bps is not None and order.currency is not None
            assert trader.settlement_currency == p.settlement_currency
            want = money.price_order(
                order.amount,
                order.currency,
                p.rate,
                p.settlement_currency,
                client.fee_bps,
                trader.reward_bps,
            )
            got = money.OrderPricing(p.settlement_amount, p.platform_fee, p.trader_reward)
            pricing.append((e, got, want))
            rules.append((e, scheduler.broken_rules(w, order, p.trader_id, want)))
        per_event_violations.extend(w.apply(e))
    return {
        "world": w,
        "ratings": ratings,
        "pricing": pricing,
        "rules": rules,
        "violations": per_event_violations,
    }


def test_export_rows_and_redeliveries(
    fixture_rows: list[dict[str, Any]], fixture_unique_rows: list[dict[str, Any]]
) -> None:
    counts = Counter(r["event_id"] for r in fixture_rows)
    redelivered = [eid for eid, n in counts.items() if n > 1]
    assert redelivered, "the README promises a few identical redeliveries"
    assert (
        len(fixture_unique_rows)
        == len(counts)
        == len(fixture_rows) - sum(n - 1 for n in counts.values())
    )


def test_every_row_decodes(fixture_unique_rows: list[dict[str, Any]]) -> None:
    errors = [
        err
        for row in fixture_unique_rows
        if isinstance(err := catalog.try_decode(row), catalog.DecodingError)
    ]
    assert errors == []


def test_fixture_kinds_are_known_and_both_versions_present(fixture_events: list[Event]) -> None:
    seen = {(e.kind, e.schema_version) for e in fixture_events}
    assert seen <= set(catalog.PAYLOADS)
    assert seen >= EXPECTED_KINDS
    for e in fixture_events:
        newest = max(v for k, v in catalog.PAYLOADS if k == e.kind)
        assert newest == e.payload.VERSION


def test_envelope_invariants(fixture_events: list[Event]) -> None:
    positions = [e.position for e in fixture_events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    by_aggregate: dict[tuple[str, str], list[int]] = defaultdict(list)
    for e in fixture_events:
        assert e.recorded_at >= e.occurred_at
        assert e.kind.startswith(e.stream + ".")
        by_aggregate[(e.stream, e.aggregate_id)].append(e.seq)
    for key, seqs in by_aggregate.items():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), key
    ids = {e.event_id for e in fixture_events}
    # causation points at an event of the export (when it is in the export at all) that came first
    index = {e.event_id: e.position for e in fixture_events}
    for e in fixture_events:
        if e.causation_id in ids:
            assert index[e.causation_id] < e.position


def test_replay_has_no_violation(replay: dict[str, Any], fixture_events: list[Event]) -> None:
    w: World = replay["world"]
    assert [str(v) for v in w.violations] == []
    assert replay["violations"] == []
    assert w.events_applied == len(fixture_events)
    # fold() gives the same world
    again = fold(fixture_events)
    assert again.violations == [] and again.book.accounts == w.book.accounts


def test_every_published_rating_matches_history(replay: dict[str, Any]) -> None:
    checked = replay["ratings"]
    assert checked, "the export has published ratings"
    bad = []
    for e, counts, want in checked:
        p = e.payload
        if (p.assignments, p.completed, p.on_time, p.disputed) != dataclasses.astuple(
            counts
        ) or p.score != want:
            bad.append((e.event_id, p, counts, want))
    assert bad == []
    # the ratings are not all the zero-count default: the check has teeth
    assert any(c != rating.RatingCounts(0, 0, 0, 0) for _, c, _ in checked)
    assert len({s for _, _, s in checked}) > 3


def test_every_assignment_is_priced_by_the_catalog(replay: dict[str, Any]) -> None:
    checked = replay["pricing"]
    assert checked
    assert [(e.event_id, got, want) for e, got, want in checked if got != want] == []
    for _, got, _ in checked:
        assert got.trader_reward <= got.platform_fee <= got.settlement_amount


def test_export_contains_half_way_cases(
    replay: dict[str, Any], fixture_events: list[Event]
) -> None:
    """The README's half-way cases: exact ties where half-up would price differently."""
    w = World()
    ties = 0
    for e in fixture_events:
        p = e.payload
        if isinstance(p, payment_order.OrderAssigned):
            o = w.orders[e.aggregate_id]
            assert o.currency is not None
            exact = (
                Fraction(o.amount, 10 ** money.EXPONENTS[o.currency])
                / Fraction(Decimal(p.rate))
                * 10 ** money.EXPONENTS[p.settlement_currency]
            )
            c = w.clients[o.client_id or ""]
            t = w.traders[p.trader_id]
            assert c.fee_bps is not None
            shares = [exact] + [
                Fraction(p.settlement_amount * b, 10_000) for b in (c.fee_bps, t.reward_bps)
            ]
            ties += sum(1 for x in shares if x.denominator == 2)
        w.apply(e)
    assert ties > 0


def test_every_assignment_passes_the_scheduler_rules(replay: dict[str, Any]) -> None:
    checked = replay["rules"]
    assert checked
    assert [(e.event_id, e.aggregate_id, broken) for e, broken in checked if broken] == []


def test_trader_stream_agrees_with_ledger(replay: dict[str, Any]) -> None:
    w: World = replay["world"]
    assert w.traders
    for trader_id, t in w.traders.items():
        assert t.settlement_currency is not None
        acct = w.book.get(f"trader:{trader_id}", t.settlement_currency)
        assert (t.balance, t.held, t.available) == (acct.own, acct.held, acct.available), trader_id
        assert t.available >= 0


def test_guarded_accounts_never_negative_and_money_is_conserved(replay: dict[str, Any]) -> None:
    w: World = replay["world"]
    totals: Counter[str] = Counter()
    for (account, currency), bal in w.book.accounts.items():
        totals[currency] += bal.own
        if ledger.is_guarded(account):
            assert bal.available >= 0, account
    # every committed posting moves money between two accounts: the book sums to zero
    assert all(v == 0 for v in totals.values()), totals


def test_plans_end_once_and_order_money_matches_attempts(replay: dict[str, Any]) -> None:
    """Each attempt's plan: committed iff the attempt completed, rolled back if it ended otherwise."""
    w: World = replay["world"]
    checked = 0
    for oid, o in w.orders.items():
        for a in o.attempts:
            plan = w.plans.get(f"order:{oid}:{a.attempt}")
            assert plan is not None, (oid, a.attempt)
            if a.outcome == "completed":
                assert plan.status == "committed", (oid, a.attempt)
            elif a.outcome is not None:
                assert plan.status == "rolled_back", (oid, a.attempt, a.outcome)
            else:
                assert plan.status == "held", (oid, a.attempt)
            checked += 1
    assert checked > 0
