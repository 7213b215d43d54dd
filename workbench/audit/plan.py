"""The audit's plan: the order the checks run in, and when each shared table
(``workbench/models/audit/``) is built and dropped, derived from what the models read, never
listed by hand."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .. import models
from ..domain.violations import CHECK_CODES
from . import ratings, shared


@dataclass(frozen=True)
class Step:
    """One check of an audit run, with the shared tables (``workbench/models/audit/``) built just
    before it and dropped around it."""

    check: str
    #: Shared tables built just before the check, in build order.
    build: tuple[str, ...] = ()
    #: Shared tables read only by those builds: dropped before the check runs.
    drop_before: tuple[str, ...] = ()
    #: The same, each dropped as soon as the last build reading it is done (one tuple per build,
    #: in ``build``'s order): at ten million events the builds of one step hold hundreds of MB,
    #: and what is no longer read should not push the next build's sorts to disk.
    drop_after_build: tuple[tuple[str, ...], ...] = ()
    #: Shared tables nothing after the check reads: dropped after it.
    drop_after: tuple[str, ...] = ()


def plan() -> list[Step]:
    """The order the checks run in, and when each shared table is built and dropped, derived
    from what the models read (:attr:`workbench.models.Model.reads`; the Python
    RATING_MISMATCH's from its SQL)."""
    reads = {code: m.reads for code, m in models.checks().items()}
    reads[ratings.CHECK] = ratings.reads()
    if set(reads) != set(CHECK_CODES):
        raise ValueError(
            f"the checks ({sorted(reads)}) are not the check codes ({sorted(CHECK_CODES)}): "
            "each code needs one model in workbench/models/checks/"
        )
    return schedule(reads, {name: m.reads for name, m in shared.tables().items()})


def schedule(reads: dict[str, frozenset[str]], tables: dict[str, frozenset[str]]) -> list[Step]:
    """The checks (code -> tables read) in the order that holds the fewest shared tables
    (``tables``: name -> tables read, in build order), each built before its first reader and
    dropped after its last.

    At ten million events a shared table holds hundreds of MB, so the readers of each run one
    after the other where possible, and a table read only to build another (the trader events,
    for the assignments' trader state) is dropped before the check that reads the latter runs.
    The order minimizes the sum, over the checks, of the shared tables held while each runs: the
    checks that read the same shared tables are run together, and the groups are ordered by
    dynamic programming over the sets of groups already run (a handful of groups, so exact);
    ties go to the order of the groups' first codes."""

    def closure(names: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        todo = [t for t in names if t in tables]
        while todo:
            t = todo.pop()
            if t not in out:
                out.add(t)
                todo.extend(u for u in tables[t] if u in tables)
        return frozenset(out)

    direct = {c: frozenset(t for t in r if t in tables) for c, r in reads.items()}
    need = {c: closure(direct[c]) for c in reads}
    by_sig: dict[tuple[frozenset[str], frozenset[str]], list[str]] = {}
    for c in sorted(reads):
        by_sig.setdefault((direct[c], need[c]), []).append(c)
    groups = sorted(by_sig.values())
    g_direct = [direct[g[0]] for g in groups]
    g_need = [need[g[0]] for g in groups]
    n = len(groups)

    def held(mask: int, g: int) -> int:
        """How many shared tables are held while group ``g`` runs, ``mask`` the groups run so far
        (``g`` included)."""
        built = frozenset().union(*(g_need[h] for h in range(n) if mask >> h & 1))
        rest = [h for h in range(n) if not mask >> h & 1]
        # a table is read later by a check, or by a build of a table not built yet
        later = {t for h in rest for t in g_direct[h]}
        later |= {t for h in rest for m in g_need[h] - built for t in tables[m]}
        return sum(1 for t in built if t in g_direct[g] or t in later)

    best: dict[int, tuple[int, tuple[int, ...]]] = {0: (0, ())}
    for mask in range(1 << n):  # every subset comes before its supersets
        if mask not in best:
            continue
        cost, seq = best[mask]
        for g in range(n):
            if mask >> g & 1:
                continue
            nxt = mask | 1 << g
            cand = (cost + len(groups[g]) * held(nxt, g), (*seq, g))
            if nxt not in best or cand < best[nxt]:
                best[nxt] = cand
    order = [c for g in best[(1 << n) - 1][1] for c in groups[g]]

    # Build each shared table just before the first check that needs it; drop it after the last
    # operation (a check, or a build) that reads it.
    built: set[str] = set()
    builds: list[tuple[str, ...]] = []
    last: dict[str, tuple[int, int]] = {}  # table -> (step, 0: a build in it, 1: its check)
    for i, c in enumerate(order):
        new = tuple(t for t in tables if t in need[c] and t not in built)
        built.update(new)
        builds.append(new)
        for t in new:
            last.setdefault(t, (i, 1))
            for u in tables[t]:
                if u in tables:
                    last[u] = (i, 0)
        for t in direct[c]:
            last[t] = (i, 1)
    steps = []
    for i, c in enumerate(order):
        before = tuple(t for t in tables if last.get(t) == (i, 0))
        last_build = {t: max(j for j, b in enumerate(builds[i]) if t in tables[b]) for t in before}
        steps.append(
            Step(
                c,
                build=builds[i],
                drop_before=before,
                drop_after=tuple(t for t in tables if last.get(t) == (i, 1)),
                drop_after_build=tuple(
                    tuple(t for t in before if last_build[t] == j) for j in range(len(builds[i]))
                ),
            )
        )
    return steps
