"""Every reconciliation check of the audit, one SQL query per check code, over a replayed database.

Each query returns the same columns (:data:`COLUMNS`): the check code, the subject
(``stream:aggregate_id`` or an account), the offending event, the evidence (event ids, the
offending one first), the money at stake (``amount_delta`` in minor units of ``currency``, when
money is involved) and a detail sentence with the numbers. They read the ``events`` table and the
projections the replay built, never Python objects, so the audit of ten million events is a few
DuckDB scans.

Rules the fold already judges event by event (sequence gaps, duplicates, illegal transitions,
plan mismatches, negative available amounts, implausible clocks, money sums past int64) come
from the ``violations`` projection and the
``quarantine``; the rules that compare streams with each other (orders with the ledger, the trader
stream with the ledger, receipts with orders, payouts with plans, assignments with the scheduler's
rules, deadlines, ratings) are here. Money formulas are the domain's, written as exact integer SQL
in :mod:`.sql_money`. Events are ordered by ``(position, event_id)``.

``{ref_time}`` in a query is the audit's reference time: ``--as-of``, or the latest
``recorded_at`` inside the platform's era (never an ``occurred_at``: see :func:`.run._ref_time`).

Amounts are int64 each, but their sums and differences need not be: ``amount_delta`` is NULL
where it does not fit (``TRY_CAST``), never an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..domain import violations as v
from ..domain.scheduler import SWEEP_DELAY
from . import sql_money as m

COLUMNS = ("check", "subject", "event_id", "evidence", "amount_delta", "currency", "detail")

#: A position after every other (for "until the end").
_NEVER = 9223372036854775807


def _names(kinds: tuple[str, ...]) -> str:
    """SQL string literals, comma-separated."""
    return ", ".join(f"'{k}'" for k in kinds)


def _ev(*kinds: str) -> str:
    """Events of the given kinds (short names within their stream are spelled in full).

    DuckDB pushes ``kind IN (...)`` into the scan only as a row-group filter, so every payload
    would be read; the range of the kinds' names is pushed down as a real filter, so the payloads
    read are (mostly) those of the kinds asked for."""
    names = _names(kinds)
    return (
        "(SELECT event_id, position AS pos, stream, aggregate_id, kind, occurred_at, payload, rowid AS row "
        f"FROM events WHERE kind BETWEEN '{min(kinds)}' AND '{max(kinds)}' AND kind IN ({names}))"
    )


# --------------------------------------------------------------- from the fold and the quarantine
FROM_VIOLATIONS = f"""
SELECT code AS check, subject, event_id, [event_id] AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency, detail
FROM violations
WHERE code IN ('{v.CONFLICTING_DUPLICATE}', '{v.SEQUENCE_GAP}', '{v.INVALID_TRANSITION}',
               '{v.LEDGER_PLAN_MISMATCH}', '{v.CLOCK_SKEW}', '{v.AMOUNT_OVERFLOW}')
"""

#: A negative available amount, proven by the event that made it negative and the open holds
#: that were debiting the account at that moment (largest first): the reason it went below zero.
NEGATIVE_AVAILABLE = f"""
WITH n AS (
    SELECT x.subject, x.event_id, x.detail, e.position AS pos,
           TRY_CAST(regexp_extract(x.detail, 'available (-?[0-9]+) ([A-Z]+)', 1) AS BIGINT) AS available,
           regexp_extract(x.detail, 'available (-?[0-9]+) ([A-Z]+)', 2) AS currency
    FROM violations x JOIN events e USING (event_id)
    WHERE x.code = '{v.NEGATIVE_AVAILABLE}'
),
holds AS (
    SELECT n.event_id, lp.held_event_id, lp.amount
    FROM n
    JOIN ledger_postings lp ON lp.from_account = n.subject AND lp.currency = n.currency
    JOIN events h ON h.event_id = lp.held_event_id AND h.position <= n.pos
    JOIN ledger_plans pl ON pl.plan_id = lp.plan_id
    LEFT JOIN events e ON e.event_id = pl.end_event_id
    WHERE (e.position IS NULL OR e.position >= n.pos) AND lp.held_event_id <> n.event_id
    QUALIFY row_number() OVER (PARTITION BY n.event_id ORDER BY lp.amount DESC, lp.held_event_id) <= 3
)
SELECT '{v.NEGATIVE_AVAILABLE}', n.subject, n.event_id,
       list_concat([n.event_id], coalesce((SELECT list(h.held_event_id ORDER BY h.amount DESC, h.held_event_id)
                                           FROM holds h WHERE h.event_id = n.event_id), [])),
       n.available, n.currency, n.detail
FROM n
"""

MALFORMED_EVENT = """
SELECT 'MALFORMED_EVENT' AS check,
       coalesce(stream || ':' || aggregate_id, 'source:' || source) AS subject,
       coalesce(event_id, 'raw:' || md5(raw)) AS event_id,
       [coalesce(event_id, 'raw:' || md5(raw))] AS evidence,
       NULL::BIGINT AS amount_delta, NULL AS currency,
       'quarantined (' || reason || coalesce(', ' || field, '') || '): ' || error AS detail
FROM quarantine
WHERE reason <> 'conflicting_duplicate'
"""

# --------------------------------------------------------------------------- pricing
_ASSIGNED = """
    SELECT a.order_id, a.attempt, a.trader_id, a.rate, a.settlement_currency, a.settlement_amount,
           a.platform_fee, a.trader_reward, a.assigned_event_id, a.assigned_pos AS pos,
           o.client_id, o.amount, o.currency, o.direction
    FROM audit_attempts a
    JOIN payment_orders o USING (order_id)
"""

FX_MISMATCH = f"""
WITH a AS ({_ASSIGNED}),
x AS ({m.settlement("amount", "currency", "rate", "settlement_currency", "a")})
SELECT 'FX_MISMATCH', 'payment_order:' || order_id, assigned_event_id, [assigned_event_id],
       TRY_CAST(settlement_amount::HUGEINT - expected AS BIGINT), settlement_currency,
       format('attempt {{}}: settlement {{}} {{}} for {{}} {{}} at rate {{}}, the formula gives {{}}',
              attempt, settlement_amount, settlement_currency, amount, currency, rate, expected)
FROM x
WHERE expected IS NULL OR settlement_amount <> expected
"""

#: The client's ``fee_bps`` and the trader's ``reward_bps`` in force at each assignment: the
#: latest before it. There are a few fee and registration events per client and trader, so each
#: is given the positions until which it holds and joined by key (an ``ASOF`` join would sort
#: every assignment, twice).
_FEES = f"""
WITH a AS ({_ASSIGNED}),
fees AS (
    SELECT aggregate_id AS client_id, pos, (payload->>'fee_bps')::BIGINT AS fee_bps,
           lead(pos) OVER (PARTITION BY aggregate_id ORDER BY pos, event_id) AS until
    FROM {_ev("client.registered", "client.fee_changed")}
),
rewards AS (
    SELECT aggregate_id AS trader_id, pos, (payload->>'reward_bps')::BIGINT AS reward_bps,
           lead(pos) OVER (PARTITION BY aggregate_id ORDER BY pos, event_id) AS until
    FROM {_ev("trader.registered")}
)
SELECT a.*, f.fee_bps, r.reward_bps
FROM a
LEFT JOIN fees f ON f.client_id = a.client_id AND a.pos > f.pos AND a.pos <= coalesce(f.until, {_NEVER})
LEFT JOIN rewards r ON r.trader_id = a.trader_id AND a.pos > r.pos AND a.pos <= coalesce(r.until, {_NEVER})
"""

FEE_MISMATCH = f"""
WITH x AS ({
    m.with_half_even(
        f"({_FEES})",
        fee_expected=m.bps_share_of("settlement_amount", "fee_bps"),
        reward_expected=m.bps_share_of("settlement_amount", "reward_bps"),
    )
})
SELECT 'FEE_MISMATCH', 'payment_order:' || order_id, assigned_event_id, [assigned_event_id],
       TRY_CAST(CASE WHEN platform_fee IS DISTINCT FROM fee_expected
                     THEN platform_fee::HUGEINT - fee_expected
                     ELSE trader_reward::HUGEINT - reward_expected END AS BIGINT),
       settlement_currency,
       format('attempt {{}}: platform_fee {{}} (formula {{}} at {{}} bps), trader_reward {{}} (formula {{}} at {{}} bps) on settlement {{}}',
              attempt, platform_fee, fee_expected, fee_bps, trader_reward, reward_expected,
              reward_bps, settlement_amount)
FROM x
WHERE platform_fee IS DISTINCT FROM fee_expected OR trader_reward IS DISTINCT FROM reward_expected
   OR trader_reward > platform_fee
"""

# --------------------------------------------------------------------------- receipts
_APPROVED = f"""
    SELECT r.*, e.event_id AS approved_event_id, e.pos AS approved_pos, u.event_id AS uploaded_event_id
    FROM receipts r
    JOIN {_ev("receipt.approved")} e ON e.aggregate_id = r.receipt_id
    LEFT JOIN {_ev("receipt.uploaded")} u ON u.aggregate_id = r.receipt_id
"""

RECEIPT_MISSING = f"""
WITH c AS (
    SELECT e.event_id, e.pos, e.aggregate_id AS order_id
    FROM {_ev("payment_order.completed")} e
    JOIN payment_orders o ON o.order_id = e.aggregate_id AND o.direction = 'payout'
),
ok AS (
    SELECT DISTINCT c.event_id FROM c JOIN ({_APPROVED}) r ON r.order_id = c.order_id AND r.approved_pos < c.pos
)
SELECT 'RECEIPT_MISSING', 'payment_order:' || order_id, event_id, [event_id], NULL::BIGINT, NULL,
       'payout order completed with no approved receipt before it'
FROM c WHERE event_id NOT IN (SELECT event_id FROM ok)
"""

RECEIPT_AMOUNT_MISMATCH = f"""
SELECT 'RECEIPT_AMOUNT_MISMATCH', 'receipt:' || r.receipt_id, r.approved_event_id,
       list_distinct([r.approved_event_id, r.uploaded_event_id]),
       TRY_CAST(r.amount::HUGEINT - o.amount AS BIGINT), o.currency,
       format('receipt approved for {{}} {{}} on order {{}} of {{}} {{}}',
              r.amount, r.currency, o.order_id, o.amount, o.currency)
FROM ({_APPROVED}) r JOIN payment_orders o ON o.order_id = r.order_id
WHERE r.amount IS DISTINCT FROM o.amount OR r.currency IS DISTINCT FROM o.currency
"""

RECEIPT_REUSED = """
WITH u AS (
    SELECT row, pos, aggregate_id AS receipt_id, a AS order_id, b AS sha
    FROM audit_order_payloads WHERE what = 'uploaded'
),
first AS (SELECT sha, arg_min(row, pos) AS first_row, arg_min(order_id, pos) AS first_order FROM u GROUP BY sha),
reused AS (
    SELECT u.*, f.first_row, f.first_order FROM u JOIN first f USING (sha)
    WHERE u.order_id <> f.first_order AND u.row <> f.first_row
),
ids AS (  -- the ids of the few events involved
    SELECT rowid AS row, event_id FROM events
    WHERE rowid IN (SELECT row FROM reused UNION ALL SELECT first_row FROM reused)
)
SELECT 'RECEIPT_REUSED', 'receipt:' || r.receipt_id, e.event_id, [e.event_id, f.event_id],
       NULL::BIGINT, NULL,
       format('file {} already proved order {}; used again for order {}', r.sha, r.first_order, r.order_id)
FROM reused r JOIN ids e ON e.row = r.row JOIN ids f ON f.row = r.first_row
"""

# ---------------------------------------------------------------- attempts: how each one ended
#: Each assignment attempt with the events that opened, accepted and ended it (first ender after
#: the assignment, or the next assignment, which supersedes it). Several checks read it, so
#: :func:`prepare` computes it once per audit into the temp table ``audit_attempts``.
#:
#: One sorted pass over each order's events (in ``(position, event_id)`` order): for every
#: assignment, the first boundary (an assignment or an ender), the first acceptance and the first
#: review after it, each a ``first_value(... IGNORE NULLS)`` over the rows that follow; the
#: acceptance and the review count only when they come before that boundary. The three share one
#: window, so the events are sorted once (range joins per attempt cost twice as much). Payloads
#: are parsed after the window, only for the assignments (and ``complete_by`` of acceptances).
ATTEMPT_SQL = f"""
WITH o AS (
    SELECT event_id, pos, aggregate_id, kind, occurred_at,
           kind NOT IN ('payment_order.accepted', 'payment_order.review_started') AS boundary,
           CASE WHEN kind = 'payment_order.assigned' THEN payload END AS payload,
           CASE WHEN kind = 'payment_order.accepted'
                THEN TRY_CAST(payload->>'complete_by' AS TIMESTAMPTZ) END AS complete_by
    FROM {
    _ev(
        "payment_order.assigned",
        "payment_order.accepted",
        "payment_order.assignment_declined",
        "payment_order.assignment_expired",
        "payment_order.cancelled",
        "payment_order.completed",
        "payment_order.review_started",
    )
}
),
nxt AS (  -- per assignment: the next boundary, acceptance and review (whenever they come)
    SELECT *,
           first_value(CASE WHEN boundary
                            THEN {{'pos': pos, 'event_id': event_id, 'kind': kind, 'at': occurred_at}}
                       END IGNORE NULLS) OVER w AS nb,
           first_value(CASE WHEN kind = 'payment_order.accepted'
                            THEN {{'pos': pos, 'event_id': event_id, 'at': occurred_at, 'complete_by': complete_by}}
                       END IGNORE NULLS) OVER w AS na,
           first_value(CASE WHEN kind = 'payment_order.review_started'
                            THEN {{'pos': pos, 'event_id': event_id}}
                       END IGNORE NULLS) OVER w AS nr
    FROM o
    WINDOW w AS (PARTITION BY aggregate_id ORDER BY pos, event_id
                 ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
    QUALIFY kind = 'payment_order.assigned'
),
att AS (  -- the acceptance and the review belong to this attempt only if before its end
    SELECT *, CASE WHEN na.pos < coalesce(nb.pos, {_NEVER}) THEN na END AS acc,
              CASE WHEN nr.pos < coalesce(nb.pos, {_NEVER}) THEN nr END AS rv
    FROM nxt
)
SELECT aggregate_id AS order_id, (f[1])::INTEGER AS attempt,
       f[2] AS trader_id, event_id AS assigned_event_id, pos AS assigned_pos,
       f[3] AS rate, f[4] AS settlement_currency,
       occurred_at AS assigned_at, TRY_CAST(f[5] AS TIMESTAMPTZ) AS accept_by,
       (f[6])::BIGINT AS settlement_amount,
       (f[7])::BIGINT AS trader_reward,
       (f[8])::BIGINT AS platform_fee,
       nb.pos AS end_pos, nb.event_id AS end_event_id, nb.kind AS end_kind, nb.at AS ended_at,
       acc.event_id AS accepted_event_id, acc.at AS accepted_at, acc.complete_by AS complete_by,
       rv.event_id AS review_event_id, rv.pos AS review_pos
FROM (  -- the assignment's fields, in one parse of its payload
    SELECT *, json_extract_string(payload, ['$.attempt', '$.trader_id', '$.rate', '$.settlement_currency',
                                            '$.accept_by', '$.settlement_amount', '$.trader_reward',
                                            '$.platform_fee']) AS f
    FROM att
)
"""

ATTEMPT_EVENTS = "(SELECT * FROM audit_attempts)"

#: The trader stream's money kinds: deposits and holds.
TRADER_MONEY = (
    "trader.deposit_topped_up",
    "trader.hold_placed",
    "trader.hold_released",
    "trader.hold_captured",
    "trader.deposit_credited",
    "trader.deposit_debited",
)
#: The kinds that change what the scheduler's rules read of a trader.
TRADER_STATE = (
    "trader.registered",
    "trader.limits_changed",
    "trader.went_online",
    "trader.went_offline",
    "trader.blocked",
    "trader.unblocked",
)

#: The trader stream's events, with their payload parsed once: the drift, the hold leaks and the
#: scheduler's rules all read them, so :func:`prepare` keeps them in the temp table
#: ``audit_trader_events`` (one scan of the payloads instead of four). Money events have their
#: ``ref`` and ``amount``; registrations and limit changes their fields in ``state``
#: (:data:`STATE_FIELDS`). Narrow, as it stays in memory: the event is its ``row`` in ``events``
#: (its ``rowid``), and the few ids a finding shows are fetched by it; only the state events,
#: a few per trader, keep their ``event_id`` (it orders them at one position).
STATE_FIELDS = (
    "fiat_currency",
    "settlement_currency",
    "limits.min_amount",
    "min_amount",
    "limits.max_amount",
    "max_amount",
    "limits.max_active_orders",
    "max_active_orders",
)
TRADER_EVENTS_SQL = f"""
SELECT row, pos, aggregate_id AS trader_id, kind, money[1] AS ref, (money[2])::BIGINT AS amount, state,
       CASE WHEN kind IN ({_names(TRADER_STATE)}) THEN event_id END AS event_id
FROM (
    SELECT *,
           CASE WHEN kind IN ({_names(TRADER_MONEY)})
                THEN json_extract_string(payload, ['$.ref', '$.amount']) END AS money,
           CASE WHEN kind IN ('trader.registered', 'trader.limits_changed')
                THEN json_extract_string(payload, [{", ".join(f"'$.{f}'" for f in STATE_FIELDS)}]) END AS state
    FROM {_ev(*TRADER_MONEY, *TRADER_STATE)}
)
"""

#: The payload fields that four checks read of order and receipt events, parsed in one scan:
#: ``what`` is ``created`` (``a``: ``expires_at``), ``completed`` (``a``: ``trader_id``),
#: ``resolved`` (a dispute; ``a``: ``outcome``) or ``uploaded`` (a receipt; ``a``: ``order_id``,
#: ``b``: ``file_sha256``); the event is its ``row`` in ``events``.
ORDER_PAYLOADS_SQL = f"""
SELECT row, what, aggregate_id, pos, occurred_at, f[1] AS a, f[2] AS b
FROM (
    SELECT row, aggregate_id, pos, occurred_at,
           CASE kind WHEN 'payment_order.created' THEN 'created'
                     WHEN 'payment_order.completed' THEN 'completed'
                     WHEN 'payment_order.dispute_resolved' THEN 'resolved' ELSE 'uploaded' END AS what,
           CASE kind WHEN 'payment_order.created' THEN [payload->>'expires_at']
                     WHEN 'payment_order.completed' THEN [payload->>'trader_id']
                     WHEN 'payment_order.dispute_resolved' THEN [payload->>'outcome']
                     ELSE json_extract_string(payload, ['$.order_id', '$.file_sha256']) END AS f
    FROM {
    _ev(
        "payment_order.created",
        "payment_order.completed",
        "payment_order.dispute_resolved",
        "receipt.uploaded",
    )
}
)
"""

#: What several checks share, computed once per audit: temp table -> query. The audit
#: (:func:`~.run.run_checks`) builds each just before its first reader and drops it after its
#: last, so that few are held in memory at once; :func:`prepare` builds them all.
SHARED = {
    "audit_attempts": ATTEMPT_SQL,
    "audit_trader_events": TRADER_EVENTS_SQL,
    "audit_order_payloads": ORDER_PAYLOADS_SQL,
}


def prepare(con: Any, tables: Iterable[str] = SHARED) -> None:
    """Compute what several checks share (:data:`SHARED`, or the given ones of it) once, as temp
    tables of ``con``; tables ``con`` already has are kept."""
    have = {
        r[0]
        for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    }
    for name in tables:
        if name not in have:
            con.execute(f"CREATE TEMP TABLE {name} AS {SHARED[name]}").fetchall()


# --------------------------------------------------------------------------- deadlines
#: The scheduler acts on a deadline within its sweep (:data:`~workbench.domain.scheduler.SWEEP_DELAY`).
_GRACE = f"INTERVAL {int(SWEEP_DELAY.total_seconds() * 1_000_000)} MICROSECONDS"
DEADLINE_MISSED = f"""
WITH late_accept AS (
    SELECT 'payment_order:' || order_id AS subject, accepted_event_id AS event_id,
           [accepted_event_id, assigned_event_id] AS evidence,
           format('attempt {{}} accepted at {{}}, after accept_by {{}}', attempt, accepted_at, accept_by) AS detail
    FROM audit_attempts WHERE accepted_at > accept_by
),
no_review AS (
    SELECT 'payment_order:' || order_id, coalesce(end_event_id, accepted_event_id),
           list_filter([end_event_id, accepted_event_id], lambda x: x IS NOT NULL),
           CASE WHEN end_event_id IS NULL
                THEN format('attempt {{}} still in progress at {{}}, past complete_by {{}}, with no review', attempt, {{ref_time}}, complete_by)
                ELSE format('attempt {{}} in progress until {{}}, past complete_by {{}}, with no review', attempt, ended_at, complete_by) END
    FROM audit_attempts
    WHERE accepted_event_id IS NOT NULL AND review_event_id IS NULL AND complete_by IS NOT NULL
      AND coalesce(ended_at, {{ref_time}}) > complete_by + {_GRACE}
),
o AS (
    SELECT aggregate_id AS order_id, row AS created_row, TRY_CAST(coalesce(a, '') AS TIMESTAMPTZ) AS expires_at
    FROM audit_order_payloads WHERE what = 'created'
),
left_at AS (  -- the first event that took each order out of pending/assigned for good
    SELECT aggregate_id AS order_id, arg_min(event_id, pos) AS event_id, min(occurred_at) AS at
    FROM {_ev("payment_order.accepted", "payment_order.cancelled")}
    GROUP BY aggregate_id
),
late AS (
    SELECT o.*, l.event_id AS left_event_id, l.at FROM o LEFT JOIN left_at l USING (order_id)
    WHERE coalesce(l.at, {{ref_time}}) > o.expires_at + {_GRACE}
),
expiry AS (
    SELECT 'payment_order:' || o.order_id, coalesce(o.left_event_id, c.event_id),
           list_filter([o.left_event_id, c.event_id], lambda x: x IS NOT NULL),
           CASE WHEN o.left_event_id IS NULL
                THEN format('still pending or assigned at {{}}, past expires_at {{}}', {{ref_time}}, o.expires_at)
                ELSE format('left pending or assigned only at {{}}, past expires_at {{}}', o.at, o.expires_at) END
    FROM late o JOIN events c ON c.rowid = o.created_row
)
SELECT 'DEADLINE_MISSED', subject, event_id, evidence, NULL::BIGINT, NULL, detail FROM (
    SELECT subject, event_id, evidence, detail FROM late_accept
    UNION ALL SELECT * FROM no_review
    UNION ALL SELECT * FROM expiry
) AS t(subject, event_id, evidence, detail)
"""

# --------------------------------------------------------------------- trader stream vs ledger
#: The trader stream's money per (trader, ref): net effect on the deposit, and the amount held.
_TRADER_REFS = f"""
SELECT trader_id, ref,
       sum(CASE WHEN kind IN ('trader.deposit_topped_up', 'trader.deposit_credited') THEN amount
                WHEN kind IN ('trader.hold_captured', 'trader.deposit_debited') THEN -amount ELSE 0 END) AS net,
       sum(CASE WHEN kind = 'trader.hold_placed' THEN amount ELSE 0 END) AS placed,
       arg_max(row, pos) AS last_row, count(*) AS n
FROM audit_trader_events
WHERE kind IN ({_names(TRADER_MONEY)})
GROUP BY ALL
"""

#: The ledger's postings on trader accounts, as (trader, plan) movements.
_LEDGER_MOVES = """
SELECT plan_id, substr(from_account, 8) AS trader_id, -amount AS amt, batch_status, held_event_id, currency
FROM ledger_postings WHERE from_account LIKE 'trader:%'
UNION ALL
SELECT plan_id, substr(to_account, 8), amount, batch_status, held_event_id, currency
FROM ledger_postings WHERE to_account LIKE 'trader:%'
"""

#: The ledger's money per (trader account, plan): committed net and the debits held.
_LEDGER_REFS = f"""
SELECT trader_id, plan_id AS ref,
       sum(CASE WHEN batch_status = 'committed' THEN amt ELSE 0 END) AS net,
       sum(CASE WHEN amt < 0 THEN -amt ELSE 0 END) AS debits,
       any_value(currency) AS currency, count(*) AS n
FROM ({_LEDGER_MOVES})
GROUP BY ALL
"""

#: Sums first, over every (trader, ref); the events listed as evidence are gathered afterwards,
#: for the drifting refs only (listing them for the million refs that agree was most of the cost).
TRADER_LEDGER_DRIFT = f"""
WITH t AS ({_TRADER_REFS}), l AS ({_LEDGER_REFS}),
j AS (
    SELECT coalesce(t.trader_id, l.trader_id) AS trader_id, coalesce(t.ref, l.ref) AS ref,
           coalesce(t.net, 0) AS t_net, coalesce(l.net, 0) AS l_net,
           coalesce(t.placed, 0) AS placed, coalesce(l.debits, 0) AS l_debits,
           t.last_row, l.currency,
           t.n IS NOT NULL AS has_t, l.n IS NOT NULL AS has_l,
           -- each side's own key, to fetch its evidence (NULL keys included)
           t.trader_id AS t_trader, t.ref AS t_ref, l.trader_id AS l_trader, l.ref AS l_ref,
           tr.settlement_currency
    FROM t FULL JOIN l ON t.trader_id = l.trader_id AND t.ref = l.ref
    LEFT JOIN traders tr ON tr.trader_id = coalesce(t.trader_id, l.trader_id)
),
drift AS (
    SELECT * FROM j
    WHERE t_net <> l_net
       OR (placed > 0 AND placed <> l_debits)
),
t_ev AS (
    SELECT d.t_trader, d.t_ref, list(e.event_id ORDER BY m.pos, e.event_id) AS events
    FROM (SELECT DISTINCT t_trader, t_ref FROM drift WHERE has_t) d
    JOIN audit_trader_events m  -- its money events (written as "not state" so DuckDB does not
      -- take this and the sums' scan for one subplan and materialize it, which costs more)
      ON m.trader_id IS NOT DISTINCT FROM d.t_trader AND m.ref IS NOT DISTINCT FROM d.t_ref
     AND m.kind NOT IN ({_names(TRADER_STATE)})
    JOIN events e ON e.rowid = m.row
    GROUP BY ALL
),
l_ev AS (
    SELECT d.l_trader, d.l_ref, list(DISTINCT m.held_event_id) AS events
    FROM (SELECT DISTINCT l_trader, l_ref FROM drift WHERE has_l) d
    JOIN (SELECT * FROM ({_LEDGER_MOVES})  -- the drifting plans' moves only, found by plan first
          WHERE plan_id IN (SELECT l_ref FROM drift) OR plan_id IS NULL) m
      ON m.trader_id IS NOT DISTINCT FROM d.l_trader AND m.plan_id IS NOT DISTINCT FROM d.l_ref
    GROUP BY ALL
)
SELECT 'TRADER_LEDGER_DRIFT', 'trader:' || d.trader_id,
       coalesce(last.event_id, le.events[1]),
       list_distinct(list_concat(coalesce(te.events, []), coalesce(le.events, []))),
       TRY_CAST(d.t_net - d.l_net AS BIGINT), coalesce(d.currency, d.settlement_currency),
       format('ref {{}}: trader stream moves {{}} (held {{}}), ledger books {{}} for the trader (debits {{}})',
              d.ref, d.t_net, d.placed, d.l_net, d.l_debits)
FROM drift d
LEFT JOIN t_ev te ON d.has_t
     AND te.t_trader IS NOT DISTINCT FROM d.t_trader AND te.t_ref IS NOT DISTINCT FROM d.t_ref
LEFT JOIN l_ev le ON d.has_l
     AND le.l_trader IS NOT DISTINCT FROM d.l_trader AND le.l_ref IS NOT DISTINCT FROM d.l_ref
LEFT JOIN events last ON last.rowid = d.last_row
"""

# --------------------------------------------------------------------- orders vs their plans
_PLANS = "SELECT plan_id, status, end_event_id FROM ledger_plans"

#: Comparing every plan's legs as sorted lists of strings was most of this check's cost, so the
#: legs are first compared as values, in two classes: the leg to ``platform:revenue`` and the
#: other one (the catalog has at most one of each; the other leg never goes to the platform). A
#: plan with one leg or none in each class, equal to the catalog's, posts the same legs. Only the
#: plans that differ there (or have NULLs, or more legs in a class) are formatted and compared as
#: before, which decides: equal values always format equally, so no difference can be missed.
ORDER_SETTLEMENT_MISMATCH = f"""
WITH o AS (SELECT order_id, direction, client_id FROM payment_orders),
-- what each attempt's plan must post, by the catalog
legs AS (
    SELECT a.order_id, a.attempt, a.assigned_event_id, a.trader_id, a.settlement_amount,
           a.platform_fee, a.trader_reward, o.direction, o.client_id,
           'order:' || a.order_id || ':' || a.attempt AS plan_id,
           CASE WHEN o.direction = 'payin' THEN 'trader:' || a.trader_id ELSE 'client:' || o.client_id END AS payer,
           CASE WHEN o.direction = 'payin' THEN 'client:' || o.client_id ELSE 'trader:' || a.trader_id END AS payee,
           CASE WHEN o.direction = 'payin' THEN a.settlement_amount - a.platform_fee
                ELSE a.settlement_amount + a.trader_reward END AS other_amount,
           a.platform_fee - a.trader_reward AS platform_amount
    FROM audit_attempts a JOIN o USING (order_id)
),
posted AS (  -- each plan's legs by class: how many, and the leg when there is one
    SELECT plan_id,
           count(*) FILTER (WHERE to_account = 'platform:revenue') AS n_platform,
           min(from_account) FILTER (WHERE to_account = 'platform:revenue') AS platform_from,
           min(amount) FILTER (WHERE to_account = 'platform:revenue') AS platform_amount,
           count(*) FILTER (WHERE to_account <> 'platform:revenue') AS n_other,
           min(from_account) FILTER (WHERE to_account <> 'platform:revenue') AS other_from,
           min(to_account) FILTER (WHERE to_account <> 'platform:revenue') AS other_to,
           min(amount) FILTER (WHERE to_account <> 'platform:revenue') AS other_amount,
           bool_or(from_account IS NULL OR to_account IS NULL OR amount IS NULL) AS has_null
    FROM ledger_postings WHERE plan_id LIKE 'order:%' GROUP BY plan_id
),
maybe AS (  -- the attempts whose plan may post other legs than the catalog's
    SELECT e.* FROM legs e LEFT JOIN posted x USING (plan_id)
    WHERE x.plan_id IS NULL OR x.has_null
       OR e.payer IS NULL OR e.payee IS NULL OR e.other_amount IS NULL OR e.platform_amount IS NULL
       OR x.n_platform <> (e.platform_amount <> 0)::INTEGER OR x.n_other <> (e.other_amount <> 0)::INTEGER
       OR (x.n_platform = 1 AND (x.platform_from <> e.payer OR x.platform_amount <> e.platform_amount))
       OR (x.n_other = 1 AND (x.other_from <> e.payer OR x.other_to <> e.payee OR x.other_amount <> e.other_amount))
),
expected AS (
    SELECT order_id, attempt, assigned_event_id, plan_id,
           list_sort(list_filter(CASE WHEN direction = 'payin' THEN [
               format('{{}}>{{}}:{{}}', 'trader:' || trader_id, 'client:' || client_id, settlement_amount - platform_fee),
               format('{{}}>{{}}:{{}}', 'trader:' || trader_id, 'platform:revenue', platform_fee - trader_reward)]
           ELSE [
               format('{{}}>{{}}:{{}}', 'client:' || client_id, 'trader:' || trader_id, settlement_amount + trader_reward),
               format('{{}}>{{}}:{{}}', 'client:' || client_id, 'platform:revenue', platform_fee - trader_reward)]
           END, lambda x: NOT ends_with(x, ':0'))) AS legs,
           CASE WHEN direction = 'payin' THEN settlement_amount - platform_fee
                ELSE settlement_amount + trader_reward END AS client_leg
    FROM maybe
),
actual AS (
    SELECT plan_id, list_sort(list(format('{{}}>{{}}:{{}}', from_account, to_account, amount))) AS legs,
           sum(CASE WHEN from_account LIKE 'client:%' OR to_account LIKE 'client:%' THEN amount ELSE 0 END)
             FILTER (WHERE from_account LIKE 'client:%' AND to_account LIKE 'trader:%'
                        OR from_account LIKE 'trader:%' AND to_account LIKE 'client:%') AS client_leg,
           arg_min(held_event_id, batch_id) AS held_event_id, any_value(currency) AS currency
    FROM ledger_postings WHERE plan_id IN (SELECT plan_id FROM maybe) GROUP BY plan_id
),
postings AS (
    SELECT 'payment_order:' || e.order_id AS subject, coalesce(x.held_event_id, e.assigned_event_id) AS event_id,
           list_filter([x.held_event_id, e.assigned_event_id], lambda v: v IS NOT NULL) AS evidence,
           TRY_CAST(coalesce(x.client_leg, 0) - e.client_leg AS BIGINT) AS delta, x.currency,
           format('plan {{}} posts [{{}}], the catalog says [{{}}]', e.plan_id,
                  array_to_string(coalesce(x.legs, []), ', '), array_to_string(e.legs, ', ')) AS detail
    FROM expected e LEFT JOIN actual x USING (plan_id)
    WHERE x.legs IS DISTINCT FROM e.legs
),
finished AS (  -- completed attempts must be committed; other ended attempts must not be
    SELECT 'payment_order:' || a.order_id, a.end_event_id,
           list_filter([a.end_event_id, p.end_event_id, a.assigned_event_id], lambda v: v IS NOT NULL),
           NULL::BIGINT, NULL,
           format('attempt {{}} ended by {{}} but its plan {{}} is {{}}', a.attempt, a.end_kind,
                  'order:' || a.order_id || ':' || a.attempt, coalesce(p.status, 'missing'))
    FROM audit_attempts a LEFT JOIN ({_PLANS}) p ON p.plan_id = 'order:' || a.order_id || ':' || a.attempt
    WHERE a.end_kind IS NOT NULL AND p.status IS DISTINCT FROM 'held'
      AND ((a.end_kind = 'payment_order.completed') <> (p.status IS NOT DISTINCT FROM 'committed'))
),
reversed AS (
    SELECT 'payment_order:' || r.aggregate_id, e.event_id, [e.event_id], NULL::BIGINT, NULL,
           format('dispute reversed but plan {{}} is {{}}', 'reverse:order:' || r.aggregate_id, coalesce(p.status, 'missing'))
    FROM audit_order_payloads r
    LEFT JOIN ({_PLANS}) p ON p.plan_id = 'reverse:order:' || r.aggregate_id
    JOIN events e ON e.rowid = r.row
    WHERE r.what = 'resolved' AND r.a = 'reversed' AND p.status IS DISTINCT FROM 'committed'
)
SELECT 'ORDER_SETTLEMENT_MISMATCH', * FROM (
    SELECT * FROM postings UNION ALL SELECT * FROM finished UNION ALL SELECT * FROM reversed
)
"""

# --------------------------------------------------------------------------- holds left open
HOLD_LEAK = f"""
WITH ends AS (  -- what ended each plan's business: an attempt, or a payout
    SELECT 'order:' || order_id || ':' || attempt AS ref, end_event_id AS event_id, end_kind AS how,
           'payment_order:' || order_id AS owner_subject
    FROM audit_attempts WHERE end_event_id IS NOT NULL
    UNION ALL
    SELECT 'payout:' || aggregate_id, arg_min(event_id, pos), arg_min(kind, pos), 'payout:' || aggregate_id
    FROM {_ev("payout.confirmed", "payout.cancelled", "payout.failed")} GROUP BY aggregate_id
),
open_plans AS (
    SELECT p.plan_id AS ref, any_value(lp.held_event_id) AS held_event_id
    FROM ledger_plans p JOIN ledger_postings lp USING (plan_id)
    WHERE p.status = 'held' GROUP BY p.plan_id
),
open_holds AS (
    SELECT ref, trader_id,
           sum(CASE WHEN kind = 'trader.hold_placed' THEN 1 ELSE -1 END) AS open,
           arg_min(row, pos) FILTER (WHERE kind = 'trader.hold_placed') AS placed_row
    FROM audit_trader_events
    WHERE kind IN ('trader.hold_placed', 'trader.hold_released', 'trader.hold_captured')
    GROUP BY ALL HAVING sum(CASE WHEN kind = 'trader.hold_placed' THEN 1 ELSE -1 END) > 0
),
leaks AS (
    SELECT e.ref, e.event_id, e.how, op.held_event_id, oh.placed_row, oh.trader_id
    FROM ends e
    LEFT JOIN open_plans op ON op.ref = e.ref
    LEFT JOIN open_holds oh ON oh.ref = e.ref
    WHERE op.ref IS NOT NULL OR oh.ref IS NOT NULL
),
leaks_ids AS (SELECT l.*, p.event_id AS placed_event_id FROM leaks l LEFT JOIN events p ON p.rowid = l.placed_row)
SELECT 'HOLD_LEAK', 'ledger_plan:' || ref, event_id,
       list_filter([event_id, held_event_id, placed_event_id], lambda x: x IS NOT NULL),
       NULL::BIGINT, NULL,
       format('{{}} ended by {{}} but {{}} still open', ref, how,
              array_to_string(list_filter([CASE WHEN held_event_id IS NOT NULL THEN 'its ledger plan' END,
                                           CASE WHEN placed_event_id IS NOT NULL THEN 'the hold on trader:' || trader_id END],
                                          lambda x: x IS NOT NULL), ' and '))
FROM leaks_ids
"""

# --------------------------------------------------------------------------- payouts
PAYOUT_MISMATCH = f"""
WITH p AS (
    SELECT po.*, c.event_id AS created_event_id, c.pos AS created_pos, c.occurred_at AS created_occ,
           pl.status AS plan_status, pl.end_event_id AS plan_end_event_id,
           rv.status AS revert_status,
           x.event_id AS end_event_id
    FROM payouts po
    LEFT JOIN {_ev("payout.created")} c ON c.aggregate_id = po.payout_id
    LEFT JOIN ledger_plans pl ON pl.plan_id = po.plan_id
    LEFT JOIN ledger_plans rv ON rv.plan_id = 'revert:' || po.plan_id
    LEFT JOIN (SELECT aggregate_id, arg_max(event_id, pos) AS event_id
               FROM {_ev("payout.confirmed", "payout.cancelled", "payout.failed", "payout.paid")} GROUP BY ALL) x
           ON x.aggregate_id = po.payout_id
),
plan_state AS (
    SELECT 'payout:' || payout_id, coalesce(end_event_id, created_event_id),
           list_filter([end_event_id, plan_end_event_id, created_event_id], lambda v: v IS NOT NULL),
           amount, currency,
           format('payout {{}} but its plan {{}} is {{}}', status, plan_id, coalesce(plan_status, 'missing'))
    FROM p
    WHERE plan_status IS DISTINCT FROM 'held' AND NOT (
        (status IN ('unpaid', 'paid') AND plan_status = 'held')
        OR (status = 'confirmed' AND plan_status = 'committed')
        OR (status = 'failed' AND plan_status = 'rolled_back')
        OR (status = 'cancelled' AND cancelled_from = 'confirmed' AND plan_status = 'committed')
        OR (status = 'cancelled' AND cancelled_from IS DISTINCT FROM 'confirmed' AND plan_status = 'rolled_back'))
),
revert AS (
    SELECT 'payout:' || payout_id, end_event_id, [end_event_id, created_event_id], amount, currency,
           format('cancelled after confirmation but revert plan {{}} is {{}}', 'revert:' || plan_id,
                  coalesce(revert_status, 'missing'))
    FROM p WHERE status = 'cancelled' AND cancelled_from = 'confirmed'
      AND revert_status IS DISTINCT FROM 'committed'
),
dup AS (
    SELECT 'payout:' || b.payout_id, b.created_event_id, [b.created_event_id, a.created_event_id],
           b.amount, b.currency,
           format('same owner {{}}, amount {{}} {{}} and destination {{}} as payout {{}} created {{}} s earlier',
                  b.owner, b.amount, b.currency, b.destination_masked, a.payout_id,
                  epoch(b.created_occ) - epoch(a.created_occ))
    FROM p a JOIN p b ON a.owner = b.owner AND a.amount = b.amount AND a.currency = b.currency
         AND a.destination_masked = b.destination_masked AND a.created_pos < b.created_pos
         AND b.created_occ - a.created_occ <= INTERVAL 10 MINUTE
    QUALIFY row_number() OVER (PARTITION BY b.payout_id ORDER BY a.created_pos DESC) = 1
)
SELECT 'PAYOUT_MISMATCH', * FROM (
    SELECT * FROM plan_state UNION ALL SELECT * FROM revert UNION ALL SELECT * FROM dup
)
"""

#: Every check's SQL (the ratings and the scheduler's rules are computed in their own modules).
SQL: dict[str, str] = {
    "fold": FROM_VIOLATIONS,
    v.MALFORMED_EVENT: MALFORMED_EVENT,
    v.NEGATIVE_AVAILABLE: NEGATIVE_AVAILABLE,
    v.TRADER_LEDGER_DRIFT: TRADER_LEDGER_DRIFT,
    "ORDER_SETTLEMENT_MISMATCH": ORDER_SETTLEMENT_MISMATCH,
    "FX_MISMATCH": FX_MISMATCH,
    "FEE_MISMATCH": FEE_MISMATCH,
    "RECEIPT_MISSING": RECEIPT_MISSING,
    "RECEIPT_AMOUNT_MISMATCH": RECEIPT_AMOUNT_MISMATCH,
    "RECEIPT_REUSED": RECEIPT_REUSED,
    "DEADLINE_MISSED": DEADLINE_MISSED,
    "HOLD_LEAK": HOLD_LEAK,
    "PAYOUT_MISMATCH": PAYOUT_MISMATCH,
}
