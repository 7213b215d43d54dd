"""``workbench summary``: read an export, fold it through the domain and say what is in it.

The quick look an analyst wants before anything else: how many events of each kind, how many
were redelivered or undecodable, what state the orders and payouts ended in, how much money moved,
and which rules were broken. It folds event by event through the domain's appliers (the
definition of every projection); the columnar replay into DuckDB builds on the same rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .domain.catalog import DecodingError, try_decode
from .domain.events import Event
from .domain.money import Money
from .domain.violations import Violation
from .domain.world import World
from .sources import iter_rows


@dataclass
class ExportSummary:
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    conflicting: int = 0
    quarantined: list[DecodingError] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    order_status: Counter[str] = field(default_factory=Counter)
    payout_status: Counter[str] = field(default_factory=Counter)
    settled: Counter[str] = field(default_factory=Counter)
    revenue: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    first: Any = None
    last: Any = None

    @property
    def balanced(self) -> bool:
        """Nothing lost: every event read was applied, skipped as a duplicate or quarantined."""
        return self.read == self.applied + self.duplicates + self.conflicting + len(
            self.quarantined
        )

    def render(self) -> str:
        out = [
            f"events read {self.read:,}: applied {self.applied:,}, identical redeliveries skipped "
            f"{self.duplicates:,}, conflicting duplicates {self.conflicting:,}, quarantined "
            f"{len(self.quarantined):,} ({'balanced' if self.balanced else 'NOT BALANCED'})",
            f"business time {self.first} → {self.last}",
            "orders: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.order_status.items())),
            "payouts: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.payout_status.items())),
            "settled by completed orders: "
            + ", ".join(str(Money(v, c)) for c, v in sorted(self.settled.items())),
            "platform revenue (ledger): "
            + ", ".join(str(Money(v, c)) for c, v in sorted(self.revenue.items())),
        ]
        by_code = Counter(v.code for v in self.violations)
        out.append(
            "violations: "
            + (", ".join(f"{k} {v}" for k, v in sorted(by_code.items())) if by_code else "none")
        )
        reasons = Counter(q.reason for q in self.quarantined)
        if reasons:
            out.append("quarantined: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
        return "\n".join(out)


def summarize(sources: Sequence[str | Path]) -> tuple[ExportSummary, World]:
    """Read, decode, keep one copy per ``event_id`` (replay's rule, whatever the row order:
    :mod:`workbench.replay.judging`), sort by ``position`` and fold."""
    from .replay import judging

    s = ExportSummary()
    copies: dict[str, list[tuple[dict[str, Any], Event]]] = {}
    for row in iter_rows(sources):
        s.read += 1
        decoded = try_decode(row)
        if isinstance(decoded, DecodingError):
            s.quarantined.append(decoded)
            continue
        canon = judging.canonical_row(decoded, row["payload"])
        copies.setdefault(decoded.event_id, []).append((canon, decoded))
    events: list[Event] = []
    for found in copies.values():
        found.sort(key=lambda c: judging.winner_key(c[0]))
        winner = found[0][0]
        events.append(found[0][1])
        for canon, _ in found[1:]:
            if judging.differences(canon, winner):
                s.conflicting += 1
            else:
                s.duplicates += 1
    events.sort(key=lambda e: (e.position, e.event_id))
    world = World()
    for e in events:
        world.apply(e)
        s.kinds[e.kind] += 1
    s.applied = len(events)
    s.violations = list(world.violations)
    s.order_status = Counter(o.status or "?" for o in world.orders.values())
    s.payout_status = Counter(p.status or "?" for p in world.payouts.values())
    for o in world.orders.values():
        done = next((a for a in reversed(o.attempts) if a.outcome == "completed"), None)
        if o.status == "completed" and done is not None:
            s.settled[done.settlement_currency] += done.settlement_amount
    for (account, currency), bal in world.book.accounts.items():
        if account == "platform:revenue":
            s.revenue[currency] += bal.own
    if events:
        s.first = min(e.occurred_at for e in events)
        s.last = max(e.occurred_at for e in events)
    return s, world
