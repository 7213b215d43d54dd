"""The audit's SQL money formulas give exactly what the domain's formulas give."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.domain.money import (
    EXPONENTS,
    bps_share,
    div_round_half_even,
    format_money,
    settlement_amount,
)
from workbench.models import sql_money as m

CURRENCIES = sorted(EXPONENTS)
rates = st.builds(
    lambda whole, frac, places: (
        f"{whole}.{str(frac).zfill(places)[:places]}" if places else str(whole)
    ),
    st.integers(0, 10**6),
    st.integers(0, 10**12),
    st.integers(0, 12),
).filter(lambda r: float(r) > 0)
cases = st.tuples(
    st.integers(0, 10**13), st.sampled_from(CURRENCIES), rates, st.sampled_from(CURRENCIES)
)


@settings(max_examples=30, deadline=None)
@given(st.lists(cases, min_size=1, max_size=50))
def test_settlement_in_sql_is_the_domains(rows: list[tuple[int, str, str, str]]) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t (i INTEGER, amount BIGINT, fiat VARCHAR, rate VARCHAR, settle VARCHAR)"
    ).fetchall()
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [(i, *r) for i, r in enumerate(rows)])
    got = con.execute(
        f"SELECT i, expected FROM ({m.settlement('amount', 'fiat', 'rate', 'settle', 't')}) ORDER BY i"
    ).fetchall()
    assert [int(e) for _, e in got] == [settlement_amount(*r) for r in rows]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-(10**15), 10**15), st.integers(1, 10**6)), min_size=1, max_size=50
    )
)
def test_half_even_division_in_sql_is_the_domains(rows: list[tuple[int, int]]) -> None:
    con = duckdb.connect()
    got = [
        int(con.execute(f"SELECT {m.div_half_even(str(n), str(d))}").fetchall()[0][0])
        for n, d in rows
    ]
    assert got == [div_round_half_even(n, d) for n, d in rows]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**13), st.integers(0, 10_000)), min_size=1, max_size=50))
def test_fee_share_in_sql_is_the_domains(rows: list[tuple[int, int]]) -> None:
    con = duckdb.connect()
    got = [
        int(con.execute(f"SELECT {m.bps_share(str(a), str(b))}").fetchall()[0][0]) for a, b in rows
    ]
    assert got == [bps_share(a, b) for a, b in rows]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-(10**30), 10**30), st.integers(1, 10**15)), min_size=1, max_size=50
    )
)
def test_staged_half_even_division_in_sql_is_the_domains(rows: list[tuple[int, int]]) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, n HUGEINT, d HUGEINT)").fetchall()
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, n, d) for i, (n, d) in enumerate(rows)])
    got = con.execute(
        f"SELECT i, q FROM ({m.with_half_even('t', q=('n', 'd'))}) ORDER BY i"
    ).fetchall()
    assert [int(q) for _, q in got] == [div_round_half_even(n, d) for n, d in rows]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-(2**100), 2**100), st.integers(-(10**7), 10**7)),
            st.one_of(st.none(), st.sampled_from([*CURRENCIES, "", "XYZ"])),
        ),
        min_size=1,
        max_size=40,
    ),
    st.booleans(),
)
def test_an_amount_in_sql_reads_as_the_domain_prints_it(
    rows: list[tuple[int | None, str | None]], signed: bool
) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, minor HUGEINT, currency VARCHAR)").fetchall()
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, *r) for i, r in enumerate(rows)])
    got = con.execute(
        f"SELECT {m.text('minor', 'currency', signed=signed)} FROM t ORDER BY i"
    ).fetchall()
    want = [None if a is None else format_money(a, c, signed=signed) for a, c in rows]
    assert [g for (g,) in got] == want
