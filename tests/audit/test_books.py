"""The daily books on generated histories: every account's ledger closes at its
``account_balances`` balance, any day range opens where the day before closed, each posting is
booked by the event that committed its batch, and the platform's revenue is what the catalog says
the orders and payouts earn. The expected figures come from the stored events, folded here in
Python (not from the SQL under test)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.audit import account_ledger, revenue
from workbench.audit.books import UnknownAccount
from workbench.cli import main
from workbench.generator import generate
from workbench.replay import rebuild, store

FEW = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _history(root: Path, *, clean: bool) -> Path:
    generate(
        root / "export",
        seed=5,
        days=2,
        orders_per_day=80,
        traders=6,
        clients=3,
        clean=clean,
        progress=False,
    )
    db = root / "books.duckdb"
    rebuild([root / "export"], db, progress=False)
    return db


@pytest.fixture(scope="module")
def anomalous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small history with anomalies of every check planted (ledger ones among them)."""
    return _history(tmp_path_factory.mktemp("anomalous"), clean=False)


@pytest.fixture(scope="module")
def con(anomalous: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = store.connect(anomalous, read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _history(tmp_path_factory.mktemp("clean"), clean=True)


@pytest.fixture(scope="module")
def moves(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every committed posting, folded from the stored ledger events: a held batch moves its
    postings when the first end after it, in its plan, that lists it is a commit."""
    events = (
        con.sql(
            "SELECT event_id, aggregate_id, kind, occurred_at, batch_id, postings, batch_ids "
            "FROM payload_ledger_plan ORDER BY position, event_id"
        )
        .to_arrow_table()
        .to_pylist()
    )
    by_plan: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_plan[e["aggregate_id"]].append(e)
    out = []
    for plan, evs in by_plan.items():
        for i, held in enumerate(evs):
            if held["kind"] != "ledger_plan.batch_held":
                continue
            end = next(
                (
                    x
                    for x in evs[i + 1 :]
                    if x["kind"] != "ledger_plan.batch_held" and held["batch_id"] in x["batch_ids"]
                ),
                None,
            )
            if end is None or end["kind"] != "ledger_plan.committed":
                continue
            for k, p in enumerate(held["postings"]):
                out.append(
                    {
                        "plan_id": plan,
                        "held_event_id": held["event_id"],
                        "posting_index": k,
                        "commit_event_id": end["event_id"],
                        "day": end["occurred_at"].astimezone(UTC).date(),
                        "from": p["from"],
                        "to": p["to"],
                        "amount": p["amount"],
                        "currency": p["currency"],
                    }
                )
    assert out, "the history has no committed posting"
    return out


def _balances(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], int | None]:
    rows = con.execute("SELECT account, currency, own FROM account_balances").fetchall()
    return {(a, c): own for a, c, own in rows}


def _net(moves: list[dict[str, Any]], account: str, currency: str, until: date) -> int:
    """The account's committed balance at the end of ``until`` (UTC), from the fold."""
    total = 0
    for m in moves:
        if m["currency"] == currency and m["day"] <= until:
            total += (m["amount"] if m["to"] == account else 0) - (
                m["amount"] if m["from"] == account else 0
            )
    return total


def test_every_account_closes_at_its_account_balance(con: duckdb.DuckDBPyConnection) -> None:
    balances = _balances(con)
    assert len({a for a, _ in balances}) > 5
    for (account, currency), own in sorted(balances.items()):
        books = account_ledger(con, account)
        assert books.closing(currency) == own, (account, currency)
        assert books.opening(currency) == 0  # the default range starts at the first commit


def test_each_posting_is_booked_by_the_event_that_committed_its_batch(
    con: duckdb.DuckDBPyConnection, moves: list[dict[str, Any]]
) -> None:
    for account, _ in sorted(_balances(con)):
        got = account_ledger(con, account).postings
        mine = {
            (r["held_event_id"], r["posting_index"]): (
                r["commit_event_id"],
                r["day"],
                r["amount_in_minor"],
                r["amount_out_minor"],
                r["plan_id"],
            )
            for r in got.iter_rows(named=True)
        }
        want = {
            (m["held_event_id"], m["posting_index"]): (
                m["commit_event_id"],
                m["day"],
                m["amount"] if m["to"] == account else 0,
                m["amount"] if m["from"] == account else 0,
                m["plan_id"],
            )
            for m in moves
            if account in (m["from"], m["to"])
        }
        assert mine == want, account
        assert got.height == len(mine)  # no posting listed twice


@FEW
@given(data=st.data())
def test_any_day_range_opens_where_the_day_before_closed(
    con: duckdb.DuckDBPyConnection, moves: list[dict[str, Any]], data: st.DataObject
) -> None:
    accounts = sorted(_balances(con))
    account, currency = data.draw(st.sampled_from(accounts), label="account")
    first = min(m["day"] for m in moves)
    last = max(m["day"] for m in moves)
    start = first + timedelta(days=data.draw(st.integers(-1, (last - first).days + 1)))
    end = start + timedelta(days=data.draw(st.integers(0, 3)))
    books = account_ledger(con, account, start, end.isoformat())
    assert (books.day_from, books.day_to) == (start, end)
    assert books.opening(currency) == _net(moves, account, currency, start - timedelta(days=1))
    assert books.closing(currency) == _net(moves, account, currency, end)
    days = books.days.filter(books.days["currency"] == currency).sort("day").to_dicts()
    assert [d["day"] for d in days] == [
        start + timedelta(days=i) for i in range((end - start).days + 1)
    ]
    for before, after in itertools.pairwise(days):
        assert after["opening_minor"] == before["closing_minor"]
    for d in days:
        assert d["closing_minor"] == _net(moves, account, currency, d["day"])
        assert d["closing_minor"] == d["opening_minor"] + d["in_minor"] - d["out_minor"]
    rows = books.postings.filter(books.postings["currency"] == currency)
    if rows.height:
        assert rows["balance_minor"][-1] == books.closing(currency)
        assert rows["day"].min() >= start and rows["day"].max() <= end
    statement = books.statement().filter(books.statement()["currency"] == currency)
    assert statement["entry"].to_list() == ["opening"] + ["posting"] * rows.height + ["closing"]


def test_revenue_is_what_the_orders_and_payouts_earned(clean: Path) -> None:
    """On a clean history, per day: order fees are the completed attempts' ``platform_fee -
    trader_reward`` (catalog 3.3), payout fees the confirmed payouts' fees (3.5), reversals the
    reversed disputes' share taken back; the balance at the end is ``account_balances``."""
    c = store.connect(clean, read_only=True)
    try:
        frame = revenue(c)
        orders = dict(
            c.execute(
                "SELECT (ended_at AT TIME ZONE 'UTC')::DATE, sum(platform_fee - trader_reward) "
                "FROM order_attempts WHERE outcome = 'completed' GROUP BY ALL"
            ).fetchall()
        )
        payouts = dict(
            c.execute(
                "SELECT (confirmed_at AT TIME ZONE 'UTC')::DATE, sum(fee) FROM payouts "
                "WHERE confirmed_at IS NOT NULL GROUP BY ALL"
            ).fetchall()
        )
        reversed_ = dict(
            c.execute(
                "SELECT (o.resolved_at AT TIME ZONE 'UTC')::DATE, -sum(a.platform_fee - a.trader_reward) "
                "FROM payment_orders o JOIN order_attempts a "
                "ON a.order_id = o.order_id AND a.outcome = 'completed' "
                "WHERE o.dispute_outcome = 'reversed' GROUP BY ALL"
            ).fetchall()
        )
        own = _balances(c)[("platform:revenue", "USDT")]
    finally:
        c.close()
    assert frame.height >= 2 and sum(orders.values()) > 0
    for r in frame.iter_rows(named=True):
        assert r["order_fees_minor"] == orders.get(r["day"], 0), r
        assert r["payout_fees_minor"] == payouts.get(r["day"], 0), r
        assert r["reversals_minor"] == reversed_.get(r["day"], 0), r
        assert r["other_minor"] == 0
        assert r["revenue_minor"] == (
            r["order_fees_minor"] + r["payout_fees_minor"] + r["reversals_minor"]
        )
    assert frame["revenue_minor"].sum() == own == frame["balance_minor"][-1]


def test_an_unknown_account_is_one_line_and_exit_2(
    anomalous: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UnknownAccount, match="did you mean client:"):
        account_ledger(anomalous, "cl-01")
    assert main(["ledger", "client:nobody", "--db", str(anomalous)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "unknown account 'client:nobody'" in err[0], err
    assert (
        main(
            [
                "ledger",
                "platform:revenue",
                "--db",
                str(anomalous),
                "--from",
                "2026-11-02",
                "--to",
                "2026-11-01",
            ]
        )
        == 2
    )
    assert "ends (2026-11-01) before it starts" in capsys.readouterr().err
    assert main(["revenue", "--db", str(anomalous), "--format", "xlsx"]) == 2
    assert "needs --out" in capsys.readouterr().err


def test_the_ledger_csv_keeps_full_ids_and_exact_minor_units(
    con: duckdb.DuckDBPyConnection, anomalous: Path, tmp_path: Path
) -> None:
    import polars as pl

    account = "platform:revenue"
    out = tmp_path / "ledger.csv"
    assert (
        main(["ledger", account, "--db", str(anomalous), "--format", "csv", "--out", str(out)]) == 0
    )
    back = pl.read_csv(out, schema_overrides={"balance_minor": pl.Int64})
    books = account_ledger(con, account)
    assert back["entry"].to_list() == ["opening"] + ["posting"] * books.postings.height + [
        "closing"
    ]
    posted = back.filter(pl.col("entry") == "posting")
    assert posted["commit_event_id"].to_list() == books.postings["commit_event_id"].to_list()
    assert all(len(e) == 36 for e in posted["commit_event_id"])  # uuids, not shortened
    assert posted["amount_in_minor"].to_list() == books.postings["amount_in_minor"].to_list()
    assert back["balance_minor"][-1] == _balances(con)[(account, "USDT")]
