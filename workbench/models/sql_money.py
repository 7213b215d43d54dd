"""The catalog's money formulas as exact integer SQL, for auditing millions of rows in DuckDB.

The domain (:mod:`workbench.domain.money`) defines the formulas; this module writes the same
arithmetic as SQL expressions over ``HUGEINT`` so the audit can check every assignment without a
Python call per row. No float and no DECIMAL division appears: a rate ``"92.35"`` is the integer
``9235`` over ``10^2``, the settlement amount is one integer division rounded half to even, and the
property tests check these expressions against the domain's functions on random inputs.
"""

from __future__ import annotations

from ..domain.money import BPS_DENOMINATOR, EXPONENTS


def pow10(k: str) -> str:
    """``10^k`` as an exact ``HUGEINT`` for an integer SQL expression ``0 <= k <= 30`` (a CASE:
    indexing a constant list costs a list per row)."""
    whens = " ".join(f"WHEN {i} THEN {10**i}::HUGEINT" for i in range(0, 31))
    return f"(CASE ({k}) {whens} END)"


def exponent(currency: str) -> str:
    """The minor-unit exponent of a currency column (NULL for an unknown currency)."""
    whens = " ".join(f"WHEN '{c}' THEN {e}" for c, e in sorted(EXPONENTS.items()))
    return f"(CASE {currency} {whens} END)"


def div_half_even(numerator: str, denominator: str) -> str:
    """``round_half_even(n / d)`` for integer expressions with ``d > 0`` (any sign of ``n``)."""
    n, d = f"({numerator})::HUGEINT", f"({denominator})::HUGEINT"
    # Floor division and a non-negative remainder, then ties to the even quotient.
    q = f"(CASE WHEN {n} >= 0 THEN {n} // {d} ELSE -((-{n} + {d} - 1) // {d}) END)"
    r = f"({n} - {q} * {d})"
    return f"({q} + CASE WHEN 2 * {r} > {d} OR (2 * {r} = {d} AND {q} % 2 <> 0) THEN 1 ELSE 0 END)"


def with_half_even(source: str, **outs: tuple[str, str]) -> str:
    """``source`` with a column per keyword: ``round_half_even(n / d)`` of its integer expressions
    ``(n, d)`` when ``d > 0`` (NULL otherwise), the arithmetic of :func:`div_half_even`. The floor
    quotient is a column of its own first: written inline, DuckDB computes the ``HUGEINT``
    division once per use of it, and that was most of the pricing checks' cost."""
    nd = ", ".join(
        f"({n})::HUGEINT AS _n_{k}, ({d})::HUGEINT AS _d_{k}" for k, (n, d) in outs.items()
    )
    q = ", ".join(
        f"CASE WHEN _d_{k} > 0 THEN (CASE WHEN _n_{k} >= 0 THEN _n_{k} // _d_{k} "
        f"ELSE -((-_n_{k} + _d_{k} - 1) // _d_{k}) END) END AS _q_{k}"
        for k in outs
    )
    rounded = ", ".join(
        f"CASE WHEN _d_{k} > 0 THEN _q_{k} + CASE WHEN 2 * (_n_{k} - _q_{k} * _d_{k}) > _d_{k} "
        f"OR (2 * (_n_{k} - _q_{k} * _d_{k}) = _d_{k} AND _q_{k} % 2 <> 0) THEN 1 ELSE 0 END END AS {k}"
        for k in outs
    )
    staged = ", ".join(f"_{x}_{k}" for k in outs for x in "ndq")
    return f"""
    SELECT * EXCLUDE ({staged}), {rounded}
    FROM (SELECT *, {q} FROM (SELECT *, {nd} FROM {source}))
    """


def rate_parts(rate: str) -> tuple[str, str]:
    """A decimal rate string as ``(integer digits, number of decimals)``: ``"92.35"`` → 9235, 2.
    NULL digits for a rate that is not a plain positive decimal."""
    ok = f"regexp_full_match({rate}, '[0-9]{{1,18}}(\\.[0-9]{{1,12}})?')"
    digits = f"(CASE WHEN {ok} THEN replace({rate}, '.', '')::HUGEINT END)"
    decimals = f"(CASE WHEN {ok} THEN coalesce(length(split_part({rate}, '.', 2)), 0) END)"
    return digits, decimals


def settlement(amount: str, fiat: str, rate: str, settle: str, source: str) -> str:
    """A query over ``source`` adding ``expected``: ``round_half_even(amount / 10^exp_fiat / rate *
    10^exp_settle)`` exactly. With ``rate = R / 10^k`` that is ``amount * 10^(k + exp_settle) /
    (R * 10^exp_fiat)``; each step is its own column so no expression is computed twice."""
    digits, decimals = rate_parts(rate)
    parts = f"(SELECT *, {digits} AS _r, {decimals} AS _k FROM {source})"
    n = f"({amount})::HUGEINT * {pow10(f'_k + {exponent(settle)}')}"
    d = f"_r * {pow10(exponent(fiat))}"
    return f"SELECT * EXCLUDE (_r, _k) FROM ({with_half_even(parts, expected=(n, d))})"


def bps_share(amount: str, bps: str) -> str:
    """``round_half_even(amount * bps / 10000)``: the platform fee and the trader reward."""
    return div_half_even(f"({amount})::HUGEINT * ({bps})", str(BPS_DENOMINATOR))


def bps_share_of(amount: str, bps: str) -> tuple[str, str]:
    """:func:`bps_share` as the ``(n, d)`` of :func:`with_half_even`."""
    return f"({amount})::HUGEINT * ({bps})", str(BPS_DENOMINATOR)


def text(minor: str, currency: str, *, signed: bool = False) -> str:
    """An amount as a person reads it, exactly what :func:`workbench.domain.money.format_money`
    prints (major units, the currency's decimals, thousands separators, the currency after; a
    missing or unknown currency left in ``minor units``), so a finding's sentence reads the same
    whether the fold or a model wrote it. Integer arithmetic only; NULL stays NULL."""
    plus = "WHEN x.m > 0 THEN '+' " if signed else ""
    # one lambda binds the amount, its currency and exponent once (written out, the expression
    # grew so large that planning the checks that use it took longer than running them)
    return (
        f"list_transform([{{'m': ({minor})::HUGEINT, 'c': ({currency})::VARCHAR, "
        f"'e': {exponent(f'({currency})')}}}], lambda x: CASE WHEN x.m IS NULL THEN NULL ELSE "
        f"(CASE WHEN x.m < 0 THEN '-' {plus}ELSE '' END) || list_transform("
        f"[lpad(abs(x.m)::VARCHAR, greatest(length(abs(x.m)::VARCHAR), coalesce(x.e, 0) + 1)::INTEGER, '0')], "
        f"lambda d: format('{{:,}}', left(d, length(d) - coalesce(x.e, 0))::HUGEINT) "
        f"|| CASE WHEN x.e > 0 THEN '.' || right(d, x.e) ELSE '' END)[1] || ' ' || "
        f"CASE WHEN x.e IS NULL THEN 'minor units' || coalesce(' ' || nullif(x.c, ''), '') "
        f"ELSE x.c END END)[1]"
    )
