"""The state a batch judged at ingest would start from, against the audit's own folds at the end
of whole histories.

``prior_scheduler`` (what the scheduler reads of every trader, from the stored projections)
against ``audit_trader_states``, ``audit_trader_timeline`` and ``audit_trader_deposit`` after
each trader's last event, on generated histories edited so that traders end blocked and ratings
arrive out of `seq` order, and on the platform's export. Compared is what the scheduler's rules
and the policy read: registration, limits (of a registered trader), presence and block (none
read as false), the latest score and its event, the open attempts and the available deposit.
And each client account's stored available amount against the audit's client moves summed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from workbench import models
from workbench.audit import shared
from workbench.export import ENVELOPE_SCHEMA
from workbench.generator import generate
from workbench.models import macros
from workbench.replay.engine import rebuild

FIXTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "platform-export-3d"

READ = """
SELECT trader_id, reg, CASE WHEN reg IS NOT NULL THEN lim END AS lim,
       coalesce(online, FALSE) AS online, coalesce(blocked, FALSE) AS blocked, score, rated_by,
       active, available
FROM {}
"""

AUDIT_END = """
WITH st AS (
    SELECT trader_id, arg_max({'reg': reg, 'lim': lim, 'online': online, 'blocked': blocked,
                               'score': score, 'rated_by': rated_by}, v) AS s
    FROM audit_trader_states GROUP BY trader_id
),
tl AS (
    SELECT trader_id, arg_max(active, {'pos': lo_pos, 'event_id': lo_id, 'k': k IS NULL}) AS active
    FROM audit_trader_timeline GROUP BY trader_id
),
dep AS (
    SELECT trader_id, arg_max(available, {'pos': pos, 'event_id': event_id}) AS available
    FROM audit_trader_deposit GROUP BY trader_id
),
ids AS (SELECT trader_id FROM st UNION SELECT trader_id FROM tl UNION SELECT trader_id FROM dep)
SELECT i.trader_id, s.s.reg, s.s.lim, s.s.online, s.s.blocked, s.s.score, s.s.rated_by,
       coalesce(t.active, 0) AS active, coalesce(d.available, 0)::BIGINT AS available
FROM ids i LEFT JOIN st s USING (trader_id) LEFT JOIN tl t USING (trader_id)
LEFT JOIN dep d USING (trader_id)
"""


def compare(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        shared.prepare(
            con, ["audit_trader_states", "audit_trader_timeline", "audit_trader_deposit"]
        )
        con.execute(f"CREATE TEMP TABLE audit_end AS {AUDIT_END}")
        con.execute(f"CREATE TEMP TABLE prior AS {models.load()['prior_scheduler'].sql()}")
        audit_rows = {r[0]: r for r in con.sql(READ.format("audit_end")).fetchall()}
        prior_rows = {r[0]: r for r in con.sql(READ.format("prior")).fetchall()}
    diff: dict[str, Any] = {
        t: (audit_rows.get(t), prior_rows.get(t))
        for t in audit_rows.keys() | prior_rows.keys()
        if audit_rows.get(t) != prior_rows.get(t)
    }
    assert not diff, diff
    return len(audit_rows)


def planted(folder: Path, seed: int, **size: int) -> None:
    """A generated history with its anomalies planted, in ``folder/export``."""
    generate(
        folder / "export",
        seed=seed,
        orders_per_day=250,
        truth=folder / "truth.csv",
        progress=False,
        **size,
    )


def edited(export: Path, out: Path) -> None:
    """``export`` with every trader's last `unblocked` dropped (it ends blocked if it was ever
    blocked) and the `seq` of each trader's last two ratings swapped (the latest by position is
    then not the latest by `seq`)."""
    rows = sorted(ds.dataset(str(export)).to_table().to_pylist(), key=lambda r: r["position"])
    last_unblock: dict[str, dict[str, Any]] = {}
    ratings: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["kind"] == "trader.unblocked":
            last_unblock[r["aggregate_id"]] = r
        elif r["kind"] == "trader_rating.published":
            ratings.setdefault(r["aggregate_id"], []).append(r)
    for mine in ratings.values():
        if len(mine) >= 2:
            mine[-1]["seq"], mine[-2]["seq"] = mine[-2]["seq"], mine[-1]["seq"]
    dropped = {id(r) for r in last_unblock.values()}
    kept = [r for r in rows if id(r) not in dropped]
    out.mkdir()
    pq.write_table(pa.Table.from_pylist(kept, schema=ENVELOPE_SCHEMA), out / "p.parquet")


@pytest.mark.parametrize("seed", [1, 4, 9])
def test_generated_histories_with_anomalies(seed: int, tmp_path: Path) -> None:
    planted(tmp_path, seed, days=2, traders=12, clients=4)
    edited(tmp_path / "export", tmp_path / "edited")
    rebuild([tmp_path / "edited"], tmp_path / "db.duckdb", progress=False)
    assert compare(tmp_path / "db.duckdb") >= 12
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as con:
        blocked = con.sql("SELECT count(*) FROM traders WHERE status = 'blocked'").fetchall()
    assert blocked[0][0] > 0  # the comparison covers a blocked trader


def test_the_platform_export(tmp_path: Path) -> None:
    rebuild([FIXTURE], tmp_path / "db.duckdb", progress=False)
    assert compare(tmp_path / "db.duckdb") > 0


@pytest.mark.parametrize("seed", [2, 7])
def test_the_stored_balances_are_the_client_moves_summed(seed: int, tmp_path: Path) -> None:
    """The other state a batch's payouts would start from: each client account's available
    amount in ``account_balances`` (``prior_balances`` before a batch) is the sum of its moves
    as the audit's client balance reads them (``client_moves``) at the end of the history."""
    planted(tmp_path, seed, days=1, traders=8, clients=5)
    rebuild([tmp_path / "export"], tmp_path / "db.duckdb", progress=False)
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as con:
        moved = con.sql(
            f"SELECT account, currency, sum(d)::BIGINT FROM {macros.client_moves()} GROUP BY ALL"
        ).fetchall()
        stored = con.sql(
            "SELECT account, currency, available FROM account_balances "
            "WHERE account LIKE 'client:%' AND (own <> 0 OR held <> 0)"
        ).fetchall()
    assert len(moved) >= 5
    assert sorted(r for r in moved if r[2] != 0) == sorted(r for r in stored if r[2] != 0)
