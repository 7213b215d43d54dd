"""``client_moves(accounts)``, the ledger's moves on a few client accounts (POLICY_DEVIATION's
payout candidates read it), against ``client_moves()``, every client's, kept to those accounts:
the narrowed lookup must find exactly the same moves, for any choice of accounts, and none for
no account at all."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from workbench.generator import generate
from workbench.models import macros
from workbench.replay.engine import rebuild


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("client-moves")
    generate(
        folder / "export", seed=5, days=1, orders_per_day=200, traders=8, clients=5, progress=False
    )
    rebuild([folder / "export"], folder / "db.duckdb", progress=False)
    return folder / "db.duckdb"


def test_the_moves_of_some_accounts_are_all_moves_kept_to_them(db: Path) -> None:
    with duckdb.connect(str(db), read_only=True) as con:
        everyone = con.sql(f"SELECT * FROM {macros.client_moves()}").fetchall()
        accounts = sorted({r[0] for r in everyone})
        assert len(accounts) >= 3 and len(everyone) > 100
        for chosen in ([], accounts[:1], accounts[1:3], accounts):
            con.execute("CREATE OR REPLACE TEMP TABLE chosen (account VARCHAR)")
            for a in chosen:
                con.execute("INSERT INTO chosen VALUES (?)", [a])
            some = con.sql(
                f"SELECT * FROM {macros.client_moves('SELECT account FROM chosen')}"
            ).fetchall()
            assert sorted(some) == sorted(r for r in everyone if r[0] in chosen), chosen
