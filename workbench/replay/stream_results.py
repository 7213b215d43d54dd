"""What a batch and a stream run did: the counts that prove nothing was lost, the lag, the
latencies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: What a batch adds to a run's totals (a message counted once, by sequence).
COUNTS = ("messages", "redelivered", "applied", "duplicates", "conflicting", "quarantined")


def add_counts(total: BatchResult | StreamSummary, batch: BatchResult) -> None:
    """Add ``batch``'s counts to ``total`` (a database's totals, a run's summary)."""
    for name in COUNTS:
        setattr(total, name, getattr(total, name) + getattr(batch, name))


@dataclass
class BatchResult:
    """What one committed batch did."""

    messages: int = 0  # messages taken in (each counted once, by sequence)
    redelivered: int = 0  # messages the database already had by sequence (acknowledged only)
    applied: int = 0
    duplicates: int = 0
    conflicting: int = 0
    quarantined: int = 0
    last_seq: int | None = None
    how: str = "none"  # none, incremental or full (see incremental.apply)
    seconds: float = 0.0
    committed_at: float = 0.0  # time.time() of the commit

    @property
    def balanced(self) -> bool:
        return self.messages == self.applied + self.duplicates + self.quarantined


@dataclass
class StreamSummary:
    """What a stream run did (``catch_up`` returns it; ``--follow`` prints it at the end)."""

    db: Path
    url: str
    run_id: int
    consumer: str = ""
    batches: int = 0
    messages: int = 0
    redelivered: int = 0
    applied: int = 0
    duplicates: int = 0
    conflicting: int = 0
    quarantined: int = 0
    full_builds: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    skipped_gone: int = (
        0  # messages removed from the stream (retention) before this database read them
    )
    total_events: int = 0
    seconds: float = 0.0
    lag_events: int | None = None
    lag_seconds: float | None = None
    latencies: list[float] = field(
        default_factory=list, repr=False
    )  # commit - publish, per message
    hashes: dict[str, str] = field(default_factory=dict)
    stopped_by: str = ""

    @property
    def balanced(self) -> bool:
        return self.messages == self.applied + self.duplicates + self.quarantined

    @property
    def events_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def latency(self, q: float) -> float | None:
        """The ``q`` quantile of the per-message latency, publish to commit, in seconds."""
        if not self.latencies:
            return None
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))]

    def __str__(self) -> str:
        lines = [
            f"stream run {self.run_id} from {self.url} into {self.db} (consumer {self.consumer}): "
            f"{self.messages:,} messages in {self.batches:,} batches, {self.seconds:.1f} s "
            f"({self.events_per_second:,.0f}/s)"
            + (f", stopped by {self.stopped_by}" if self.stopped_by else ""),
            f"  applied {self.applied:,} new, skipped {self.duplicates:,} identical redeliveries, "
            f"quarantined {self.quarantined:,} ({self.conflicting:,} conflicting duplicates) — "
            + ("nothing lost" if self.balanced else "NOT BALANCED"),
            f"  stream sequence now {self.last_seq if self.last_seq is not None else '-'}"
            + (
                f" ({self.redelivered:,} messages delivered again, acknowledged only)"
                if self.redelivered
                else ""
            )
            + (
                f"; {self.skipped_gone:,} messages were gone from the stream before this database read them"
                if self.skipped_gone
                else ""
            ),
            f"  database now holds {self.total_events:,} events"
            + (
                f"; {self.full_builds} batch(es) reached back in the log and were applied by a full build"
                if self.full_builds
                else ""
            ),
        ]
        if self.lag_events is not None or self.lag_seconds is not None:
            lines.append("  lag at the end: " + _lag_text(self.lag_events, self.lag_seconds))
        p50, p99 = self.latency(0.5), self.latency(0.99)
        if p50 is not None and p99 is not None:
            lines.append(f"  latency publish → commit: p50 {p50:.3f} s, p99 {p99:.3f} s")
        return "\n".join(lines)


def _lag_text(events: int | None, seconds: float | None) -> str:
    ev = "?" if events is None else f"{events:,} events"
    sec = "?" if seconds is None else f"{seconds:.2f} s"
    return f"{ev}, {sec} behind"
