"""The traders' side of a calibration: the platform's windows, each trader's behaviour, the
traders as registered (deposits, top-ups) and the clients' balances.

Why apart: these fits read the attempts and receipts per trader (own fit or pooled, see
:data:`.fit.MIN_N`); the demand (:mod:`.demand`) reads only the orders.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from ...domain.receipt import REVIEW_CONFIDENCE
from ...domain.scheduler import Deadlines
from ..config import Behaviour, ClientSpec, TraderSpec
from .fit import Row, _cdf, _fit_by_trader, _groups, _row, _shares

#: The catalog's review threshold: a receipt analysed below this confidence goes to review.
#: The catalog's review threshold (section 4), defined once in the domain.
LOW_CONFIDENCE = float(REVIEW_CONFIDENCE)


def _deadlines(orders: pl.DataFrame, attempts: pl.DataFrame, rows: list[Row]) -> Deadlines:
    """The platform's windows as observed (median, whole seconds), the defaults where unseen."""
    base = Deadlines()
    out = {}
    for name, col, frame, default in (
        ("accept", "accept_window", attempts, base.accept),
        ("complete", "complete_window", attempts, base.complete),
        ("expire", "expiry_window", orders, base.expire),
    ):
        x = frame[col].drop_nulls().to_numpy()
        v = round(float(np.median(x))) if x.size else default.total_seconds()
        out[name] = timedelta(seconds=v)
        rows.append(
            _row(
                "pooled",
                f"{name}_window",
                int(x.size),
                "const",
                param_a=v,
                obs_mean=float(x.mean()) if x.size else None,
                fit_mean=v,
                obs_p50=float(np.median(x)) if x.size else None,
                fit_p50=v,
            )
        )
    return Deadlines(out["accept"], out["complete"], out["expire"])


def _behaviour(
    attempts: pl.DataFrame,
    receipts: pl.DataFrame,
    deadlines: Deadlines,
    min_n: int,
    rows: list[Row],
) -> tuple[dict[str, Behaviour], Behaviour]:
    default = Behaviour()
    a = attempts.with_columns(
        pl.when(pl.col("outcome") == "declined")
        .then(pl.lit("decline"))
        .when((pl.col("outcome") == "expired") & pl.col("accepted").is_null())
        .then(pl.lit("ignore"))
        .when(pl.col("accepted").is_not_null())
        .then(pl.lit("accept"))
        .otherwise(None)
        .alias("decision")
    )
    decided = a.filter(pl.col("decision").is_not_null())
    counts = decided.group_by("trader_id").agg(
        pl.len().alias("n"),
        (pl.col("decision") == "decline").sum().alias("declined"),
        (pl.col("decision") == "ignore").sum().alias("ignored"),
    )
    dec = {r["trader_id"]: (r["declined"], r["n"]) for r in counts.iter_rows(named=True)}
    ign = {r["trader_id"]: (r["ignored"], r["n"]) for r in counts.iter_rows(named=True)}
    p_dec, own_dec = _shares(dict(sorted(dec.items())), "decline", min_n, rows)
    p_ign, own_ign = _shares(dict(sorted(ign.items())), "ignore", min_n, rows)

    acc = a.filter(pl.col("accepted").is_not_null()).with_columns(
        (pl.col("accepted") - pl.col("assigned")).alias("x")
    )
    d_acc, own_acc = _fit_by_trader(_groups(acc, "x"), "accept_delay", min_n, rows)
    dcl = a.filter(pl.col("decision") == "decline").with_columns(
        (pl.col("ended") - pl.col("assigned")).alias("x")
    )
    d_dcl, own_dcl = _fit_by_trader(_groups(dcl, "x"), "decline_delay", min_n, rows)
    work = acc.with_columns(
        pl.when(pl.col("direction") == "payin")
        .then(pl.when(pl.col("outcome") == "completed").then(pl.col("ended")))
        .otherwise(pl.col("uploaded"))
        .sub(pl.col("accepted"))
        .alias("x")
    ).filter(pl.col("x").is_not_null())
    d_work, own_work = _fit_by_trader(_groups(work, "x"), "complete", min_n, rows)
    for direction, q in (("payin", "complete_payin"), ("payout", "upload_payout")):
        # Shown, not used: the two halves of ``complete``, pooled.
        _fit_by_trader(
            _groups(work.filter(pl.col("direction") == direction), "x"),
            q,
            min_n,
            rows,
            pooled_only=True,
        )

    rc = receipts.filter(pl.col("confidence").is_not_null())
    low = rc.group_by("trader_id").agg(
        (pl.col("confidence") < LOW_CONFIDENCE).sum().alias("k"), pl.len().alias("n")
    )
    p_low, own_low = _shares(
        dict(sorted((r["trader_id"], (r["k"], r["n"])) for r in low.iter_rows(named=True))),
        "low_confidence",
        min_n,
        rows,
    )
    ana = receipts.with_columns((pl.col("analyzed") - pl.col("uploaded")).alias("x"))
    d_ana, _ = _fit_by_trader(_groups(ana, "x"), "analyse_delay", min_n, rows, pooled_only=True)
    rev = receipts.filter(pl.col("approved_by") == "reviewer").with_columns(
        (
            pl.col("decided")
            - pl.max_horizontal(pl.col("analyzed"), pl.col("review_started").fill_null(0.0))
        ).alias("x")
    )
    d_rev, _ = _fit_by_trader(_groups(rev, "x"), "review", min_n, rows, pooled_only=True)

    window = deadlines.accept.total_seconds()

    def build(tid: str | None) -> Behaviour:
        def pick(own: dict[str, Any], pooled: Any, dflt: Any) -> Any:
            if tid is not None and tid in own:
                return own[tid]
            return pooled if pooled is not None else dflt

        decline = pick(own_dec, p_dec, default.decline)
        ignored = pick(own_ign, p_ign, default.ignore)
        accept = pick(own_acc, d_acc, default.accept_delay)
        # Accepts slower than the window are never seen as accepts but the simulator turns them
        # into expiries: take them out of the ignore share so expiries come out as observed.
        q = 1.0 - float(_cdf(accept, np.array([window]))[0]) if accept.kind == "lognormal" else 0
        if q > 0:
            ignored = (ignored - (1 - decline) * q) / (1 - q)
        ignored = min(max(ignored, 0.0), 1.0 - decline)
        return Behaviour(
            decline=decline,
            ignore=ignored,
            accept_delay=accept,
            decline_delay=pick(own_dcl, d_dcl, default.decline_delay),
            complete=pick(own_work, d_work, default.complete),
            low_confidence=pick(own_low, p_low, default.low_confidence),
            analyse_delay=d_ana if d_ana is not None else default.analyse_delay,
            review=d_rev if d_rev is not None else default.review,
        )

    pooled_b = build(None)
    tids = set(attempts["trader_id"].to_list()) | set(receipts["trader_id"].to_list())
    behaviours = {str(t): build(str(t)) for t in sorted(tids)}
    # The ignore share used after the censoring correction.
    for r in rows:
        if r["quantity"] == "ignore" and r["kind"] == "share":
            b = pooled_b if r["trader"] == "pooled" else behaviours[r["trader"]]
            r["param_b"] = r["fit_mean"] = b.ignore
    return behaviours, pooled_b


def _traders(
    t: pl.DataFrame,
    top_ups: pl.DataFrame,
    behaviours: dict[str, Behaviour],
    pooled: Behaviour,
    rows: list[Row],
) -> dict[str, TraderSpec]:
    """Traders as registered now. The deposit is the level top-ups bring the available deposit
    to (their median); the top-up threshold is the platform's, pooled over traders: the largest
    share of that level still available when a restoring top-up (one that adds at least a tenth
    of the level and ends within a tenth of it, not the first funding) was made."""
    levels = top_ups.group_by("trader_id").agg(pl.col("after").median().alias("level"))
    lv = {r["trader_id"]: r["level"] for r in levels.iter_rows(named=True)}
    restoring = (
        top_ups.join(levels, on="trader_id")
        .filter(
            (pl.col("k") > 1)
            & (pl.col("level") > 0)
            & (pl.col("after") - pl.col("before") >= 0.1 * pl.col("level"))
            & (pl.col("after") >= 0.9 * pl.col("level"))
        )
        .with_columns((pl.col("before") / pl.col("level")).alias("r"))
    )
    ratios = restoring["r"].to_numpy()
    below = float(ratios.max()) if ratios.size else 0.4
    below = min(max(below, 0.05), 0.95)
    rows.append(
        _row(
            "pooled",
            "deposit_top_up_below",
            restoring.height,
            "level",
            param_a=below,
            obs_mean=float(ratios.mean()) if ratios.size else None,
            fit_mean=below,
        )
    )
    out = {}
    for r in t.iter_rows(named=True):
        tid = r["trader_id"]
        level = lv.get(tid)
        deposit = (
            int(level)
            if level is not None and level > 0
            else max(int(r["deposit_balance"] or 0), 0)
        )
        n = int((top_ups["trader_id"] == tid).sum())
        rows.append(_row(tid, "deposit", n, "level", param_a=deposit, fit_mean=deposit))
        out[tid] = TraderSpec(
            trader_id=tid,
            fiat_currency=r["fiat_currency"],
            min_amount=int(r["min_amount"] or 0),
            max_amount=int(r["max_amount"] or 0),
            max_active_orders=int(r["max_active_orders"] or 1),
            reward_bps=int(r["reward_bps"] or 0),
            deposit=deposit,
            settlement_currency=r["settlement_currency"] or "USDT",
            behaviour=behaviours.get(tid, pooled),
            top_up_below=below,
        )
    return out


def _clients(c: pl.DataFrame, ledger: pl.DataFrame, rows: list[Row]) -> dict[str, ClientSpec]:
    """Clients with their fee as now; the balance is the typical (median) level a top-up brought
    the committed ledger balance to, and the top-up threshold the typical share of it left when
    a later top-up was made (pooled over clients; with fewer than three, the model's default).
    Payins credit the clients, so their balances seldom need a top-up."""
    ups = ledger.filter(pl.col("top_up") & (pl.col("own") > 0))
    later = ups.filter(pl.int_range(pl.len()).over("client_id") > 0)
    below = (
        float((later["before"] / later["own"]).median())  # type: ignore[arg-type]
        if later.height >= 3
        else 0.25  # the model's default: too few top-ups to say
    )
    below = min(max(below, 0.05), 0.95)
    rows.append(
        _row("pooled", "client_top_up_below", later.height, "level", param_a=below, fit_mean=below)
    )
    out = {}
    for r in c.iter_rows(named=True):
        cid = r["client_id"]
        mine = ups.filter(pl.col("client_id") == cid)
        if mine.height:
            balance = int(mine["own"].median())  # type: ignore[arg-type]
        else:
            g = ledger.filter(pl.col("client_id") == cid)
            balance = int(g["own"].median()) if g.height else 0  # type: ignore[arg-type]
        rows.append(
            _row(cid, "client_balance", mine.height, "level", param_a=balance, fit_mean=balance)
        )
        out[cid] = ClientSpec(
            client_id=cid,
            fee_bps=int(r["fee_bps"] or 0),
            balance=max(balance, 0),
            settlement_currency=r["settlement_currency"] or "USDT",
            top_up_below=below,
        )
    return out
