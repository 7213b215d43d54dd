"""The audit's plan (:func:`workbench.audit.plan.plan`), derived from what the models read: every
check once, each shared table built before its first reader and dropped after its last, and the
readers of a shared table one after the other, so few are held at once."""

from __future__ import annotations

from workbench.audit import ratings, shared
from workbench.audit.plan import Step, plan, schedule
from workbench.domain.violations import CHECK_CODES
from workbench.models import checks


def _reads(check: str) -> frozenset[str]:
    return ratings.reads() if check == ratings.CHECK else checks()[check].reads


def _held(steps: list[Step], tables: dict[str, frozenset[str]]) -> list[tuple[set[str], set[str]]]:
    """Replays ``steps``: per step, the shared tables present while its check runs and those its
    builds or check read; fails on a table read before it is built or after it is dropped, built
    twice, or never dropped."""
    present: set[str] = set()
    done: set[str] = set()
    out = []
    for step in steps:
        for t in step.build:
            assert t not in present and t not in done, f"{t} built twice"
            assert {u for u in tables[t] if u in tables} <= present, f"{t} built before its inputs"
            present.add(t)
        read = {u for t in step.build for u in tables[t] if u in tables}
        assert set(step.drop_before) <= present
        present -= set(step.drop_before)
        done |= set(step.drop_before)
        direct = {t for t in _reads(step.check) if t in tables}
        assert direct <= present, f"{step.check} reads {direct - present}, not built or dropped"
        out.append((set(present), read | direct))
        assert set(step.drop_after) <= present
        present -= set(step.drop_after)
        done |= set(step.drop_after)
    assert not present, f"{present} never dropped"
    return out


def test_the_plan_runs_every_check_once() -> None:
    steps = plan()
    assert sorted(s.check for s in steps) == sorted(CHECK_CODES)


def test_each_shared_table_lives_from_its_first_reader_to_its_last() -> None:
    tables = {name: m.reads for name, m in shared.tables().items()}
    steps = plan()
    held = _held(steps, tables)
    assert {t for s in steps for t in s.build} == set(tables)
    # the readers of each shared table run one after the other, so few are held at once: at most
    # four. Two were enough until POLICY_DEVIATION, whose pick is built from tables other checks
    # also read: the assignments' rules (ASSIGNMENT_VIOLATION's), the trader events (for the
    # traders' timeline; TRADER_LEDGER_DRIFT's), the attempts' pricing (FEE_MISMATCH's and
    # FX_MISMATCH's), beside the attempts almost every later check reads. Whatever the order, while
    # the first of those checks runs, the tables the pick's build reads later are held too. The
    # policy's own intermediates (timeline, segments, keys, candidates) never are: they are
    # dropped before its check runs (below).
    assert max(len(p) for p, _ in held) <= 4
    for t in tables:
        span = [i for i, (p, _) in enumerate(held) if t in p]
        readers = [i for i, (_, r) in enumerate(held) if t in r]
        assert set(span) <= set(range(min(readers), max(readers) + 1)), t
    # (a table may be held between two readers while checks that do not read it run: the trader
    # events, read by the timeline's build and by TRADER_LEDGER_DRIFT, are held while the
    # assignments are judged, as the plan that holds the fewest tables in all runs them so)


def test_a_table_read_only_to_build_another_is_dropped_before_the_check_runs() -> None:
    tables = {name: m.reads for name, m in shared.tables().items()}
    steps = {s.check: s for s in plan()}
    # the trader's timeline, its states and the assignments' trader side are built once, with the
    # rules, by whichever of ASSIGNMENT_VIOLATION and POLICY_DEVIATION runs first, and dropped
    # before it runs: both read the rules (and the policy its pick) only
    first = next(s for s in plan() if s.check in ("ASSIGNMENT_VIOLATION", "POLICY_DEVIATION"))
    assert {"audit_trader_timeline", "audit_assignment_trader", "audit_assignment_rules"} <= set(
        first.build
    )
    assert {"audit_trader_timeline", "audit_trader_states", "audit_assignment_trader"} <= set(
        first.drop_before
    )
    # the policy's intermediates go before its check runs: it reads the pick only
    step = steps["POLICY_DEVIATION"]
    kept = set(step.build) - set(step.drop_before)
    assert {t for t in kept if t.startswith("audit_policy_")} == {"audit_policy_pick"}
    assert "audit_policy_pick" in step.drop_after
    for s in steps.values():  # whatever is dropped before a check is read by a build, not by it
        for t in s.drop_before:
            assert t not in _reads(s.check), (s.check, t)
            assert any(t in tables[b] for b in s.build), (s.check, t)


def test_the_readers_of_a_table_are_grouped_whatever_their_names() -> None:
    tables = {"x": frozenset({"events"}), "y": frozenset({"events"}), "z": frozenset({"x"})}
    reads = {
        "A": frozenset({"x"}),
        "B": frozenset({"y"}),
        "C": frozenset({"x", "payment_orders"}),
        "D": frozenset({"y", "x"}),
        "E": frozenset({"events"}),
        "F": frozenset({"z"}),
    }
    steps = schedule(reads, tables)
    order = [s.check for s in steps]
    assert sorted(order) == sorted(reads)
    for t in ("x", "y"):
        at = [order.index(c) for c in reads if t in reads[c]]
        assert max(at) - min(at) == len(at) - 1, (t, order)
    built = {t: i for i, s in enumerate(steps) for t in s.build}
    dropped = {t: i for i, s in enumerate(steps) for t in (*s.drop_before, *s.drop_after)}
    assert set(built) == set(dropped) == set(tables)
    assert built["z"] == order.index("F")
    assert all(built[t] <= dropped[t] for t in tables)


def test_a_table_read_only_by_builds_goes_right_after_the_last_of_them() -> None:
    tables = {name: m.reads for name, m in shared.tables().items()}
    for step in plan():
        assert len(step.drop_after_build) == len(step.build)
        early = [t for done in step.drop_after_build for t in done]
        assert sorted(early) == sorted(step.drop_before), step.check  # each once, none else
        for j, done in enumerate(step.drop_after_build):
            for t in done:
                assert t in tables[step.build[j]], (step.check, t)  # that build read it
                assert not any(t in tables[b] for b in step.build[j + 1 :]), (step.check, t)
