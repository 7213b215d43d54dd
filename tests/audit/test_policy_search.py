"""POLICY_DEVIATION's search (``audit_policy_sequence`` and ``audit_policy_hits``) against a
brute-force pairing, on synthetic tables large enough for every path of its range maximum: runs
of up to 64 assignments, blocks of 64 between, and the descent through runs of 4,096.

The whole-history differential test (``test_policy_differential.py``) holds the pick to the
domain, but its small histories rarely keep a segment open over more than a hundred assignments.
Here the two tables the search reads are made up: assignments at even positions in two
currencies, each ending a segment of its own trader (the state it was assigned in), and other
traders' segments of every length, with random scores and loads (a trader's segments may overlap
here, which a replay's never do). Every pair the brute force finds (a segment open at an
assignment, in its currency, with a better key; any open segment where the assigned trader fails
its money rule at the formula's pricing) must be a hit, and no other. The assigned trader's own
segments are left in here; `audit_policy_candidates` drops them.
"""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa
import pytest

from workbench.audit import shared

BRUTE = """
SELECT m.k, s.sid
FROM audit_policy_assignments m
JOIN (SELECT hi_k, score, active FROM audit_policy_segments) own ON own.hi_k = m.k
JOIN (SELECT rowid AS sid, * FROM audit_policy_segments) s
  ON s.fiat = m.currency AND (s.lo_pos, s.lo_id) < (m.pos, m.event_id)
 AND (s.hi_pos IS NULL OR (m.pos, m.event_id) <= (s.hi_pos, s.hi_id))
 AND (NOT m.self_ok OR s.score > own.score
      OR s.score = own.score AND (s.active < own.active
                                  OR s.active = own.active AND s.trader_id < m.trader_id))
"""


def tables(
    con: duckdb.DuckDBPyConnection, seed: int, n: int, extra: int, tied: bool = False
) -> None:
    """``n`` assignments over two currencies and ``extra`` other segments, from ``seed``.
    ``tied``: some segments start or end at an assignment's position, at an event before or
    after it there (their order is then the ids')."""
    rng = random.Random(seed)
    scores = [55, 60, 61.5, 70, 90]
    asg, seg = [], []
    for i in range(n):
        pos = 2 * (i + 1)
        cur = "KZT" if rng.random() < 0.3 else "RUB"
        trader = f"tr-{rng.randrange(40):02d}"
        asg.append((i, cur, pos, f"e{pos:08d}", rng.random() > 0.01, trader))
        lo = max(1, pos - rng.choice([1, 3, 9, 200]))  # its own segment ends at it
        seg.append(
            (
                trader,
                cur,
                rng.choice(scores),
                rng.randrange(3),
                lo,
                pos,
                i,
                f"e{lo:08d}",
                f"e{pos:08d}",
            )
        )
    for _ in range(extra):
        lo = 2 * rng.randrange(n) + 1  # odd: never an assignment's position
        span = rng.choice([1, 2, 5, 63, 64, 65, 127, 128, 129, 500, 4095, 4097, 9000, 2 * n])
        hi = lo + 2 * span if rng.random() < 0.9 else None
        cur = "KZT" if rng.random() < 0.3 else "RUB"
        ids = [f"e{lo:08d}", None if hi is None else f"e{hi:08d}"]
        if tied and rng.random() < 0.5:  # at an assignment's position, before or after it
            lo += 1
            hi = None if hi is None else hi + 1
            ids = [f"{rng.choice('dz')}{p:08d}" if p is not None else None for p in (lo, hi)]
        seg.append(
            (
                f"tr-{rng.randrange(40):02d}",
                cur,
                rng.choice(scores),
                rng.randrange(3),
                lo,
                hi,
                None,
                *ids,
            )
        )
    con.register(
        "a",
        pa.table(
            list(zip(*asg, strict=True)),
            names=["k", "currency", "pos", "event_id", "self_ok", "trader_id"],
        ),
    )
    con.register(
        "s",
        pa.table(
            list(zip(*seg, strict=True)),
            names=[
                "trader_id",
                "fiat",
                "score",
                "active",
                "lo_pos",
                "hi_pos",
                "hi_k",
                "lo_id",
                "hi_id",
            ],
        ),
    )
    con.execute("CREATE TEMP TABLE audit_policy_assignments AS SELECT * FROM a")
    con.execute(
        "CREATE TEMP TABLE audit_policy_segments AS SELECT trader_id, fiat,"
        " score::DECIMAL(18, 6) AS score, active::BIGINT AS active, lo_pos::BIGINT AS lo_pos,"
        " hi_pos::BIGINT AS hi_pos, hi_k::BIGINT AS hi_k, lo_id, hi_id FROM s"
    )


@pytest.mark.parametrize(
    ("seed", "tied", "key_bits"), [(1, False, 62), (2, False, 62), (3, True, 62), (4, True, 0)]
)
def test_the_hits_are_the_brute_forces_pairs(seed: int, tied: bool, key_bits: int) -> None:
    """``key_bits`` 0: the keys are ranked, as where they do not fit one BIGINT."""
    with duckdb.connect() as con:
        tables(con, seed, n=9000, extra=400, tied=tied)
        for name in ("audit_policy_sequence", "audit_policy_hits"):
            shared.build(con, name, key_bits=key_bits)
        hits = set(con.sql("SELECT k, sid FROM audit_policy_hits").fetchall())
        brute = set(con.sql(BRUTE).fetchall())
    assert len(brute) > 1000  # the search has work to do, on every path
    assert hits == brute
