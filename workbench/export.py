"""Writing event exports: the catalog's Parquet envelope, hive-partitioned by ``date=``.

Used by the generator and by the simulator, so anything they produce can be replayed and audited
like the platform's own exports. Output is byte-identical for the same rows and seed: rows are
shuffled within a partition by a seeded generator (the platform's exporter does not keep order
either, and replay must not depend on it) and files are written with fixed options.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from .domain.events import Event

ENVELOPE_SCHEMA: Final = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("position", pa.int64(), nullable=False),
        pa.field("stream", pa.string(), nullable=False),
        pa.field("aggregate_id", pa.string(), nullable=False),
        pa.field("seq", pa.int32(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("correlation_id", pa.string()),
        pa.field("causation_id", pa.string()),
        pa.field("payload", pa.string(), nullable=False),
    ]
)

COLUMNS: Final = tuple(ENVELOPE_SCHEMA.names)


class ExportWriter:
    """Buffers envelope rows per day, as columns, and writes ``date=YYYY-MM-DD/part-N.parquet``.

    Rows are appended straight into per-day column lists (no dict per row is kept), which is
    both the fast path and what keeps a long generation's memory flat.
    """

    def __init__(
        self, out_dir: Path, seed: int = 0, shuffle: bool = True, max_rows_per_file: int = 1_000_000
    ) -> None:
        self.out_dir = Path(out_dir)
        self.rng = random.Random(seed)
        self.shuffle = shuffle
        self.max_rows_per_file = max_rows_per_file
        self._days: dict[date, dict[str, list[Any]]] = {}
        self._parts: dict[date, int] = defaultdict(int)
        self.rows_written = 0
        self.files: list[Path] = []

    def _columns(self, day: date) -> dict[str, list[Any]]:
        cols = self._days.get(day)
        if cols is None:
            cols = self._days[day] = {c: [] for c in COLUMNS}
        return cols

    def add(self, row: dict[str, Any]) -> None:
        """One envelope row (a mapping with the catalog's columns)."""
        cols = self._columns(row["occurred_at"].date())
        for c in COLUMNS:
            cols[c].append(row[c])

    def add_all(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def add_event(self, e: Event) -> None:
        """One event, written with its payload in the payload's own schema version."""
        cols = self._columns(e.occurred_at.date())
        cols["event_id"].append(e.event_id)
        cols["position"].append(e.position)
        cols["stream"].append(e.stream)
        cols["aggregate_id"].append(e.aggregate_id)
        cols["seq"].append(e.seq)
        cols["kind"].append(e.kind)
        cols["schema_version"].append(e.payload.VERSION)
        cols["occurred_at"].append(e.occurred_at)
        cols["recorded_at"].append(e.recorded_at)
        cols["correlation_id"].append(e.correlation_id)
        cols["causation_id"].append(e.causation_id)
        cols["payload"].append(e.payload.to_json())

    def flush_before(self, day: date) -> None:
        """Write every buffered day earlier than ``day``: bounded memory on long runs."""
        for d in sorted(k for k in self._days if k < day):
            self._write_day(d)

    def close(self) -> list[Path]:
        for d in sorted(self._days):
            self._write_day(d)
        return self.files

    def _write_day(self, day: date) -> None:
        cols = self._days.pop(day, None)
        if not cols or not cols["event_id"]:
            return
        table = pa.Table.from_pydict(cols, schema=ENVELOPE_SCHEMA)
        if self.shuffle:
            order = list(range(table.num_rows))
            self.rng.shuffle(order)
            table = table.take(pa.array(order, type=pa.int64()))
        folder = self.out_dir / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        for start in range(0, table.num_rows, self.max_rows_per_file):
            chunk = table.slice(start, self.max_rows_per_file)
            path = folder / f"part-{self._parts[day]}.parquet"
            self._parts[day] += 1
            pq.write_table(
                chunk, path, compression="zstd", row_group_size=100_000, write_statistics=True
            )
            self.files.append(path)
            self.rows_written += chunk.num_rows
