"""Where in the stored tables a batch's aggregates and event ids can be: lower bounds on row ids,
so that a live batch reads the tail of ``events`` and of the typed payload tables, not all of
them.

The follower appends: every row a batch stores gets a row id past every row committed before
it, and a row keeps its row id while no row of its table is deleted. So for each aggregate
(``stream``, ``aggregate_id``) the smallest row id of its events in ``events`` and of its typed
rows in ``payload_<stream>``, and for each ``event_id`` its row in ``events``, bound from below
everything a batch must read of it: a scan filtered on ``rowid >= bound`` (DuckDB skips the row
groups below it) finds exactly what a scan of the whole table would, however large the database
grows. An aggregate or id not in the index has no stored row at all, so the bound is the end of
the table. Rows a batch inserts are read inside its transaction with row ids past every
committed one, so they are always within the bound.

The index is held in memory by the process that writes (:class:`~.stream_db.StreamDatabase`):
loaded from the database when the stream opens it, told each committed batch's new rows after
the commit (a batch rolled back leaves it as it was), and loaded again whenever a table's row
ids may have moved: a batch that deleted rows (a stored event displaced by a conflicting copy),
or any change in a table's count of deleted-but-kept row ids (a checkpoint that compacted them).

Keys are 64-bit hashes (DuckDB's ``hash``): two keys that collide share the smaller bound,
which can only widen a scan, never miss a row. Memory: 16 bytes per stored event and per
aggregate (about 18 MB at a million events).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb
import numpy as np

from .schema import PAYLOAD_TABLES

#: Pending additions are merged into the sorted arrays once there are this many.
_MERGE_AT = 50_000


class MinRows:
    """hash → the smallest row id recorded under it: sorted arrays plus a small dict of recent
    additions, merged now and then (a sort per batch would cost more than the lookups save)."""

    def __init__(self, keys: np.ndarray | None = None, rows: np.ndarray | None = None) -> None:
        self._keys = np.empty(0, np.uint64)
        self._rows = np.empty(0, np.int64)
        self._recent: dict[int, int] = {}
        if keys is not None and rows is not None and len(keys):
            self._set(keys.astype(np.uint64), rows.astype(np.int64))

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    def _set(self, keys: np.ndarray, rows: np.ndarray) -> None:
        order = np.lexsort((rows, keys))  # by key, the smallest row first
        keys, rows = keys[order], rows[order]
        first = np.ones(len(keys), bool)
        first[1:] = keys[1:] != keys[:-1]
        self._keys, self._rows = keys[first], rows[first]

    def lowest(self, keys: np.ndarray) -> int | None:
        """The smallest row recorded under any of ``keys`` (``None``: none of them is known)."""
        best: int | None = None
        if len(self._keys) and len(keys):
            at = np.searchsorted(self._keys, keys)
            at[at == len(self._keys)] = 0
            hit = self._keys[at] == keys
            if hit.any():
                best = int(self._rows[at[hit]].min())
        if self._recent:
            found = [r for k in keys.tolist() if (r := self._recent.get(k)) is not None]
            if found:
                low = min(found)
                best = low if best is None else min(best, low)
        return best

    def add(self, keys: Iterable[int], row: int) -> None:
        """Record ``row`` under each of ``keys`` (a key keeps the smallest row recorded)."""
        recent = self._recent
        for k in keys:
            old = recent.get(k)
            if old is None or row < old:
                recent[k] = row
        if len(recent) >= _MERGE_AT:
            ks = np.fromiter(recent.keys(), np.uint64, len(recent))
            rs = np.fromiter(recent.values(), np.int64, len(recent))
            self._set(np.concatenate([self._keys, ks]), np.concatenate([self._rows, rs]))
            recent.clear()


@dataclass
class Bounds:
    """One batch's lower bounds on row ids: ``events`` for the scope's (non-trader) aggregates'
    events, ``dedup`` for the stored copies of the batch's event ids, ``payloads`` per stream
    for the scope's typed rows; ``fresh`` and ``fresh_payloads`` for the batch's own rows (the
    tables' ends before it). 0 (or absent) everywhere: read whole tables (no index)."""

    events: int = 0
    dedup: int = 0
    fresh: int = 0
    payloads: dict[str, int] = field(default_factory=dict)
    fresh_payloads: dict[str, int] = field(default_factory=dict)


#: Each table's shape: its next row id and its row ids deleted but kept.
_Shapes = dict[str, tuple[int, int]]


def _tables() -> list[str]:
    return ["events", *(t.name for t in PAYLOAD_TABLES.values())]


def _shapes(con: duckdb.DuckDBPyConnection) -> _Shapes:
    """One query for all tables: ``max(rowid)`` and ``count(*)`` come from the storage's
    statistics, not a scan."""
    sql = " UNION ALL ".join(f"SELECT '{t}', max(rowid), count(*) FROM {t}" for t in _tables())
    out: _Shapes = {}
    for name, top, n in con.execute(sql).fetchall():
        nxt = 0 if top is None else int(top) + 1
        out[str(name)] = (nxt, nxt - int(n))
    return out


class RowIndex:
    """The bounds of :mod:`this module <.row_index>` for one database connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.loads = 0
        self.load(con)

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read the index from the committed tables (outside a batch's transaction)."""
        self.loads += 1
        ids = con.execute("SELECT hash(event_id) AS h, rowid AS r FROM events").fetchnumpy()
        self.event_ids = MinRows(ids["h"], ids["r"])
        aggs = con.execute(
            "SELECT hash(stream, aggregate_id) AS h, min(rowid) AS r FROM events GROUP BY ALL"
        ).fetchnumpy()
        self.aggregates = MinRows(aggs["h"], aggs["r"])
        self.payloads: dict[str, MinRows] = {}
        for stream, table in PAYLOAD_TABLES.items():
            rows = con.execute(
                f"SELECT hash('{stream}', aggregate_id) AS h, min(rowid) AS r "
                f"FROM {table.name} GROUP BY ALL"
            ).fetchnumpy()
            self.payloads[stream] = MinRows(rows["h"], rows["r"])
        self.shapes = _shapes(con)

    def refresh(self, con: duckdb.DuckDBPyConnection) -> None:
        """Before a batch (outside its transaction): loaded again if any table is not as the
        last commit left it (a checkpoint compacted deleted rows, another writer)."""
        if _shapes(con) != self.shapes:
            self.load(con)

    def bounds(self, con: duckdb.DuckDBPyConnection, batch: str) -> Bounds:
        """The bounds for the rows of temp table ``batch`` (the columns of ``events``), inside
        the batch's transaction."""
        got = con.execute(
            f"SELECT hash(event_id) AS e, hash(stream, aggregate_id) AS a, stream AS s "
            f"FROM {batch} WHERE event_id IS NOT NULL"
        ).fetchnumpy()
        end = self.shapes["events"][0]
        e = self.event_ids.lowest(got["e"])
        out = Bounds(dedup=end if e is None else min(e, end), fresh=end)
        streams = np.asarray(got["s"], dtype=object)
        # traders: the batch's own events only (the models run on from the stored trader)
        scoped = got["a"][streams != "trader"]
        a = self.aggregates.lowest(scoped)
        out.events = end if a is None else min(a, end)
        for stream, table in PAYLOAD_TABLES.items():
            p_end = self.shapes[table.name][0]
            out.fresh_payloads[stream] = p_end
            if stream == "trader":
                out.payloads[stream] = p_end
                continue
            p = self.payloads[stream].lowest(got["a"][streams == stream])
            out.payloads[stream] = p_end if p is None else min(p, p_end)
        return out

    def staged(self, con: duckdb.DuckDBPyConnection, batch: str) -> dict[str, np.ndarray]:
        """What :meth:`committed` needs of a batch's stored rows (read before ``batch`` goes)."""
        return dict(
            con.execute(
                f"SELECT hash(event_id) AS e, hash(stream, aggregate_id) AS a, stream AS s "
                f"FROM {batch}"
            ).fetchnumpy()
        )

    def committed(
        self, con: duckdb.DuckDBPyConnection, new: dict[str, np.ndarray] | None, deleted: bool
    ) -> None:
        """After a commit: the batch's new rows (``staged``) recorded at the ends the tables had
        before it. Loaded again instead if the batch deleted rows, or if any table did not grow
        by exactly the batch's rows (its typed tables made from scratch, a compaction)."""
        shapes = _shapes(con)
        n = 0 if new is None else len(new["e"])
        streams = np.asarray(new["s"], dtype=object) if new is not None else np.empty(0, object)
        grew = {"events": n}
        for stream, table in PAYLOAD_TABLES.items():
            grew[table.name] = int((streams == stream).sum())
        if deleted or any(
            shapes[t] != (self.shapes[t][0] + grew[t], self.shapes[t][1]) for t in shapes
        ):
            self.load(con)
            return
        if new is not None and n:
            self.event_ids.add(new["e"].tolist(), self.shapes["events"][0])
            self.aggregates.add(new["a"].tolist(), self.shapes["events"][0])
            for stream, table in PAYLOAD_TABLES.items():
                mine = new["a"][streams == stream]
                if len(mine):
                    self.payloads[stream].add(mine.tolist(), self.shapes[table.name][0])
        self.shapes = shapes
