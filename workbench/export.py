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
    """Buffers envelope rows per day and writes ``date=YYYY-MM-DD/part-N.parquet`` files."""

    def __init__(
        self, out_dir: Path, seed: int = 0, shuffle: bool = True, max_rows_per_file: int = 500_000
    ) -> None:
        self.out_dir = Path(out_dir)
        self.rng = random.Random(seed)
        self.shuffle = shuffle
        self.max_rows_per_file = max_rows_per_file
        self._days: dict[date, list[dict[str, Any]]] = defaultdict(list)
        self._parts: dict[date, int] = defaultdict(int)
        self.rows_written = 0
        self.files: list[Path] = []

    def add(self, row: dict[str, Any]) -> None:
        self._days[row["occurred_at"].date()].append(row)

    def add_all(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def flush_before(self, day: date) -> None:
        """Write every buffered day earlier than ``day``: bounded memory on long runs."""
        for d in sorted(k for k in self._days if k < day):
            self._write_day(d)

    def close(self) -> list[Path]:
        for d in sorted(self._days):
            self._write_day(d)
        return self.files

    def _write_day(self, day: date) -> None:
        rows = self._days.pop(day, [])
        if not rows:
            return
        if self.shuffle:
            self.rng.shuffle(rows)
        folder = self.out_dir / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(rows), self.max_rows_per_file):
            chunk = rows[start : start + self.max_rows_per_file]
            table = pa.Table.from_pydict(
                {c: [r[c] for r in chunk] for c in COLUMNS}, schema=ENVELOPE_SCHEMA
            )
            path = folder / f"part-{self._parts[day]}.parquet"
            self._parts[day] += 1
            pq.write_table(
                table, path, compression="zstd", row_group_size=100_000, write_statistics=True
            )
            self.files.append(path)
            self.rows_written += len(chunk)
