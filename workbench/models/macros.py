"""What the models' SQL takes from the domain, generated from it: never a copy of a rule.

The state machines (which kinds are allowed in which status), the clocks' tolerance and era,
int64's range, the money formulas and the scheduler's sweep are defined once in
:mod:`workbench.domain`; the models read them through these names (Jinja globals), so a change
there changes the SQL too. Everything here is a SQL fragment or a function returning one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..domain import clock, payment_order, payout, receipt
from ..domain.client import PAYLOADS as _CLIENT_PAYLOADS
from ..domain.events import STREAMS
from ..domain.money import INT64_MAX, INT64_MIN
from ..domain.rating import DEFAULT_SCORE as _DEFAULT_SCORE
from ..domain.scheduler import SWEEP_DELAY
from ..domain.trader import PAYLOADS as _TRADER_PAYLOADS
from ..statements.rules import WINDOW_DAYS as STATEMENT_WINDOW_DAYS
from . import sql_money

_CLIENT_KINDS = tuple(dict.fromkeys(p.KIND for p in _CLIENT_PAYLOADS))
_TRADER_KINDS = tuple(dict.fromkeys(p.KIND for p in _TRADER_PAYLOADS))

#: A position (or ``ord``) after every other: "until the end".
NEVER = 9223372036854775807
#: A trader's score before any published rating (the fold's ``World.score``).
DEFAULT_SCORE = f"{_DEFAULT_SCORE}::DECIMAL(18, 6)"


def names(kinds: tuple[str, ...] | list[str]) -> str:
    """SQL string literals, comma-separated."""
    return ", ".join(f"'{k}'" for k in kinds)


# ------------------------------------------------------------------------------ status
#: The status each kind leaves its aggregate in (payment_order._STATUS_AFTER, the receipt and
#: payout appliers); ``receipt_attached`` keeps the status and ``dispute_resolved`` sets it from
#: its outcome. For clients and traders the only status is being registered.
STATUS_AFTER: dict[str, str] = {
    "payment_order.created": "pending",
    "payment_order.assigned": "assigned",
    "payment_order.accepted": "in_progress",
    "payment_order.assignment_declined": "pending",
    "payment_order.assignment_expired": "pending",
    "payment_order.review_started": "in_review",
    "payment_order.completed": "completed",
    "payment_order.cancelled": "cancelled",
    "payment_order.disputed": "disputed",
    "receipt.uploaded": "uploaded",
    "receipt.analyzed": "analyzed",
    "receipt.approved": "approved",
    "receipt.rejected": "rejected",
    "payout.created": "unpaid",
    "payout.paid": "paid",
    "payout.confirmed": "confirmed",
    "payout.cancelled": "cancelled",
    "payout.failed": "failed",
    "client.registered": "registered",
    "trader.registered": "registered",
}
#: Statuses as small integers (0 is "no status yet"), so windows carry no strings.
STATUS_CODES: dict[str, int] = {
    name: i + 1 for i, name in enumerate(dict.fromkeys(STATUS_AFTER.values()))
}


def _allowed() -> dict[str, frozenset[str | None]]:
    """For each checked kind, the statuses it is allowed in (the domain's state machines; a
    client or trader event other than its registration needs one, a registration none)."""
    out: dict[str, set[str | None]] = {}
    for machine in (payment_order.ALLOWED, receipt.ALLOWED, payout.ALLOWED):
        for status, kinds in machine.items():
            for kind in kinds:
                out.setdefault(kind, set()).add(status)  # type: ignore[arg-type]
    for kind in (*_CLIENT_KINDS, *_TRADER_KINDS):
        out[kind] = {None} if kind.endswith(".registered") else {"registered"}
    return {k: frozenset(v) for k, v in out.items()}


def _mask(statuses: frozenset[str | None]) -> int:
    return sum(1 << (0 if s is None else STATUS_CODES[s]) for s in statuses)


def kinds_table() -> str:
    """``(kind, st, mask)`` for every checked kind: the status code after it (NULL: unchanged or
    set from the payload) and the bitmask of the status codes it is allowed in (bit 0: none)."""
    rows = [
        f"('{kind}', {STATUS_CODES[STATUS_AFTER[kind]] if kind in STATUS_AFTER else 'NULL'}, "
        f"{_mask(statuses)})"
        for kind, statuses in sorted(_allowed().items())
    ]
    return "(VALUES " + ", ".join(rows) + ") AS kinds(kind, st, mask)"


def status_code(name: str) -> int:
    return STATUS_CODES[name]


def status_name(code: str) -> str:
    """The status named by a code column (``'None'`` for no status, as the fold prints it)."""
    whens = " ".join(f"WHEN {c} THEN '{n}'" for n, c in STATUS_CODES.items())
    return f"CASE {code} {whens} ELSE 'None' END"


def attempt_outcome(kind: str) -> str:
    """The outcome the event of kind ``kind`` gives the attempt it ends (the domain's
    ``payment_order.ATTEMPT_OUTCOMES``; NULL for any other kind)."""
    whens = " ".join(f"WHEN '{k}' THEN '{o}'" for k, o in payment_order.ATTEMPT_OUTCOMES.items())
    return f"CASE {kind} {whens} END"


def outcome_kind(outcome: str) -> str:
    """The kind of the event that gave an attempt ``outcome`` (:func:`attempt_outcome` read
    back: the checks name the ending event's kind)."""
    whens = " ".join(f"WHEN '{o}' THEN '{k}'" for k, o in payment_order.ATTEMPT_OUTCOMES.items())
    return f"CASE {outcome} {whens} END"


def stream_code() -> str:
    """The ``stream`` column as a small integer."""
    whens = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STREAMS))
    return f"CASE stream {whens} END::UTINYINT"


# ------------------------------------------------------------------------------ clocks
def _ts(value: object) -> str:
    return f"TIMESTAMPTZ '{value:%Y-%m-%d %H:%M:%S}+00'"


def stamp(column: str) -> str:
    """A timestamp as :func:`workbench.domain.clock.stamp` writes it."""
    return f"strftime({column} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ')"


def _outside(column: str) -> str:
    return f"NOT ({column} >= {_ts(clock.ERA_START)} AND {column} < {_ts(clock.ERA_END)})"


def clock_rows(source: str, subject: str) -> str:
    """``CLOCK_SKEW`` rows (code, event_id, subject, detail) of the events of ``source`` (with
    ``event_id``, ``occurred_at``, ``recorded_at``), as
    :func:`workbench.domain.clock.clock_violations` finds them."""
    skew_us = clock.SKEW_TOLERANCE // timedelta(microseconds=1)
    skew = f"epoch_us(occurred_at) - epoch_us(recorded_at) > {skew_us}"
    occ, rec = _outside("occurred_at"), _outside("recorded_at")
    return f"""SELECT 'CLOCK_SKEW' AS code, event_id, {subject} AS subject,
        'occurred_at ' || {stamp("occurred_at")} || ', recorded_at ' || {stamp("recorded_at")}
            || ': ' || concat_ws('; ',
                CASE WHEN {skew} THEN '{clock.SKEW_REASON}' END,
                CASE WHEN {occ} THEN '{clock.OCCURRED_OUTSIDE}' END,
                CASE WHEN {rec} THEN '{clock.RECORDED_OUTSIDE}' END) AS detail
    FROM {source}
    WHERE {skew} OR {occ} OR {rec}"""


def era_start() -> str:
    return _ts(clock.ERA_START)


def era_end() -> str:
    return _ts(clock.ERA_END)


# --------------------------------------------------------------------------- money sums
def fits(expr: str) -> str:
    """``expr`` (exact, HUGEINT) fits a BIGINT column."""
    return f"(({expr}) BETWEEN {INT64_MIN} AND {INT64_MAX})"


def _past(figures: tuple[tuple[str, str], ...]) -> str:
    """The names of the figures (name, expression) outside int64, as the fold lists them."""
    cases = ", ".join(f"CASE WHEN NOT {fits(e)} THEN '{n}' END" for n, e in figures)
    return f"concat_ws(', ', {cases}) || ' outside the int64 range'"


def out_of_int64(balance: str, held: str) -> str:
    """A balance, its held amount or their difference (the available amount) is past int64."""
    return f"NOT ({fits(balance)} AND {fits(held)} AND {fits(f'{balance} - {held}')})"


def deposit_overflow_detail(balance: str, held: str, kind: str, ref: str) -> str:
    """The detail of a trader deposit's ``AMOUNT_OVERFLOW`` (``World._deposit_overflow``)."""
    available = f"{balance} - {held}"
    figures = (("deposit_balance", balance), ("held", held), ("available", available))
    return (
        f"'deposit_balance ' || {balance} || ', held ' || {held} || ', available ' || "
        f"({available}) || ' after ' || {kind} || ' of ' || {ref} || ': ' || {_past(figures)}"
    )


def account_overflow_detail(
    account: str, currency: str, own: str, held: str, kind: str, plan: str
) -> str:
    """The detail of a ledger account's ``AMOUNT_OVERFLOW`` (``World._book``)."""
    available = f"{own} - {held}"
    figures = (("own", own), ("held", held), ("available", available))
    return (
        f"{account} || ' ' || {currency} || ' own ' || {own} || ', held ' || {held} || "
        f"', available ' || ({available}) || ' after ' || {kind} || ' of ' || {plan} || ': ' || "
        f"{_past(figures)}"
    )


def negative_detail(account: str, currency: str, own: str, held: str, kind: str, plan: str) -> str:
    """The detail of a ``NEGATIVE_AVAILABLE`` (``World._book``), its amounts as people read
    them (:func:`workbench.models.sql_money.text`, the SQL of ``format_money``)."""
    return (
        f"{account} || ' available ' || {sql_money.text(f'{own} - {held}', currency)} || ' < 0 (own ' "
        f"|| {sql_money.text(own, currency)} || ', held ' || {sql_money.text(held, currency)} "
        f"|| ') after ' || {kind} || ' of ' || {plan}"
    )


#: The trader stream's kinds, by what they do to the deposit.
CREDITS = "'trader.deposit_topped_up', 'trader.deposit_credited'"
DEBITS = "'trader.deposit_debited', 'trader.hold_captured'"
HOLD_KINDS = "'trader.hold_placed', 'trader.hold_released', 'trader.hold_captured'"
MONEY_KINDS = f"{CREDITS}, 'trader.deposit_debited', {HOLD_KINDS}"
#: A money event's change to the deposit balance (``amount`` exact, HUGEINT).
D_BALANCE = (
    f"CASE WHEN kind IN ({CREDITS}) THEN amount WHEN kind IN ({DEBITS}) THEN -amount ELSE 0 END"
)

# ------------------------------------------------------------------------------ audit
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
#: The registration and limit fields the scheduler's rules read (v2 nests limits).
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


def deposit_moves(trader_events: str, key: str) -> str:
    """Each trader money event's change to the deposit's available amount, as the catalog (3.2)
    and the fold define it: to the balance (top-ups and credits in; debits and captures out),
    less to what is held. One hold per ref: a hold event changes what is held by its placed
    amount (none for a release or a capture) less what was open on the ref before it (the amount
    of the ref's previous hold event if that placed it). A query of ``(trader_id, key, d)`` over
    ``trader_events`` (columns ``trader_id, kind, ref, amount`` and those ``key``, a SQL
    expression ordering the events, reads). ASSIGNMENT_VIOLATION's trader side and
    POLICY_DEVIATION's candidates sum it, so the rule is written once."""
    return f"""
        SELECT trader_id, key,
               {D_BALANCE}
               - (CASE WHEN kind = 'trader.hold_placed' THEN amount ELSE 0 END
                  - CASE WHEN lag(kind) OVER wr = 'trader.hold_placed' THEN lag(amount) OVER wr ELSE 0 END) AS d
        FROM (SELECT trader_id, {key} AS key, kind, ref, amount::HUGEINT AS amount
              FROM {trader_events} WHERE kind IN ({HOLD_KINDS}))
        WINDOW wr AS (PARTITION BY trader_id, ref ORDER BY key)  -- the ref's previous hold event
        UNION ALL
        SELECT trader_id, key, {D_BALANCE}
        FROM (SELECT trader_id, {key} AS key, kind, amount::HUGEINT AS amount
              FROM {trader_events} WHERE kind IN ({CREDITS}, 'trader.deposit_debited'))"""


def client_moves(accounts: str | None = None) -> str:
    """Every move of the ledger on a client account, as a subquery of ``(account, currency, pos,
    event_id, d)``: a debit leaves at its batch's hold, a credit arrives when the batch commits, a
    rolled-back debit comes back when it rolls back (the fold's :class:`AccountBook`). A client's
    available balance before an event is the sum of its moves before it, in ``(position,
    event_id)`` order: ASSIGNMENT_VIOLATION's client balance and POLICY_DEVIATION's candidates
    read it, so the rule is written once. ``accounts``, a query of account names, keeps only
    their moves, and looks up only their ledger events (none at all when it is empty: POLICY_
    DEVIATION's few candidates usually need no client balance of their own)."""
    held = ("ledger_plan.batch_held", "ledger_plan.committed", "ledger_plan.rolled_back")
    # with ``accounts``: the postings of every plan that moves one of them (two plain filters: an
    # `IN ... OR IN ...` here was planned as mark joins over every posting, 0.3 s for none), and
    # only those accounts' moves kept at the end
    postings = (
        "ledger_postings"
        if accounts is None
        else "(SELECT * FROM ledger_postings WHERE plan_id IN ("
        f"SELECT plan_id FROM ledger_postings WHERE from_account IN ({accounts}) UNION ALL "
        f"SELECT plan_id FROM ledger_postings WHERE to_account IN ({accounts})))"
    )
    plans = (
        "ledger_plans"
        if accounts is None
        else f"(SELECT * FROM ledger_plans WHERE plan_id IN (SELECT plan_id FROM {postings}))"
    )
    events = (  # the ledger's own events (their typed table, not every event), or those plans'
        typed_of("ledger_plan", *held)
        if accounts is None
        else f"(SELECT event_id, position AS pos FROM payload_ledger_plan WHERE kind IN "
        f"({names(held)}) AND event_id IN (SELECT held_event_id FROM {postings} UNION ALL "
        f"SELECT end_event_id FROM {plans}))"
    )
    keep = "" if accounts is None else f" WHERE account IN ({accounts})"
    return f"""(
    WITH le AS (  -- positions of the ledger's own events (their typed table, not every event)
        SELECT event_id, pos FROM {events}
    ),
    lp AS (  -- only the columns used: this is materialized, once for the three kinds of move
        SELECT p.from_account, p.to_account, p.amount, p.currency, p.batch_status,
               h.pos AS held_pos, h.event_id AS held_id, e.pos AS end_pos, e.event_id AS end_id
        FROM {postings} p
        JOIN {plans} pl USING (plan_id)
        JOIN le h ON h.event_id = p.held_event_id
        LEFT JOIN le e ON e.event_id = pl.end_event_id
        WHERE p.from_account LIKE 'client:%' OR p.to_account LIKE 'client:%'
    )
    SELECT * FROM (
        SELECT from_account AS account, currency, held_pos AS pos, held_id AS event_id, -amount AS d
        FROM lp WHERE from_account LIKE 'client:%'
        UNION ALL
        SELECT to_account, currency, end_pos, end_id, amount FROM lp
        WHERE to_account LIKE 'client:%' AND batch_status = 'committed' AND end_pos IS NOT NULL
        UNION ALL
        SELECT from_account, currency, end_pos, end_id, amount FROM lp
        WHERE from_account LIKE 'client:%' AND batch_status = 'rolled_back' AND end_pos IS NOT NULL
    ){keep}
)"""


def events_of(*kinds: str) -> str:
    """The stored events of the given kinds, as a subquery.

    DuckDB pushes ``kind IN (...)`` into the scan only as a row-group filter, so every payload
    would be read; the range of the kinds' names is pushed down as a real filter, so the payloads
    read are (mostly) those of the kinds asked for."""
    return (
        "(SELECT event_id, position AS pos, stream, aggregate_id, kind, occurred_at, payload, "
        f"rowid AS row FROM events WHERE kind BETWEEN '{min(kinds)}' AND '{max(kinds)}' "
        f"AND kind IN ({names(kinds)}))"
    )


def typed(stream: str) -> str:
    """The events of ``ev`` of one stream with their payloads' typed columns (the stored
    ``payload_<stream>``, decoded once at ingest), and those columns as one struct ``j``."""
    from ..replay.payload_types import PAYLOAD_ENVELOPE, payload_columns
    from ..replay.schema import PAYLOAD_TABLES

    fields = ", ".join(f"'{c.name}': p.\"{c.name}\"" for c in payload_columns(stream))
    return (
        f"(SELECT ev.*, p.* EXCLUDE ({', '.join(PAYLOAD_ENVELOPE)}), {{{fields}}} AS j "
        f"FROM ev JOIN {PAYLOAD_TABLES[stream].name} p USING (event_id))"
    )


def typed_of(stream: str, *kinds: str) -> str:
    """The stored events of ``stream`` of the given kinds with their typed payloads (the stored
    ``payload_<stream>``), as a subquery: what the audit reads instead of ``events_of`` where it
    needs a payload field. ``row`` is the event's row in ``payload_<stream>`` (its ``rowid``),
    so a narrow temp table can fetch the few ids a finding shows from that table by it."""
    from ..replay.schema import PAYLOAD_TABLES

    return (
        f"(SELECT *, position AS pos, rowid AS row FROM {PAYLOAD_TABLES[stream].name} "
        f"WHERE kind IN ({names(kinds)}))"
    )


#: Below this OCR confidence a receipt sends its order to review (catalog 4; the domain's
#: ``receipt.REVIEW_CONFIDENCE``, a ``DECIMAL`` literal, as the typed ``confidence`` is).
REVIEW_CONFIDENCE = f"{receipt.REVIEW_CONFIDENCE}::DECIMAL(18, 6)"


def interval(value: timedelta) -> str:
    """A ``timedelta`` as an exact SQL interval (whole microseconds)."""
    return f"INTERVAL {value // timedelta(microseconds=1)} MICROSECONDS"


def process_kinds(stream: str, which: str) -> str:
    """The kinds of ``stream`` (``ledger_plan``, ``trader``) that open a step of a process
    (``which="openings"``) or close one (``"compensations"``), or both (``"steps"``), as SQL
    literals (:mod:`workbench.domain.process`)."""
    from ..domain.process import COMPENSATES, OPENINGS

    pick = {"openings": set(OPENINGS), "compensations": set(COMPENSATES)}
    kinds = pick.get(which) or set(OPENINGS) | set(COMPENSATES)
    return names(sorted(k for k in kinds if k.startswith(stream + ".")))


def kind_range(stream: str) -> str:
    """``kind BETWEEN`` the first and last of a stream's process step kinds: DuckDB pushes a
    range into the scan as a real filter (see :func:`events_of`)."""
    from ..domain.process import COMPENSATES, OPENINGS

    kinds = sorted(k for k in {*OPENINGS, *COMPENSATES} if k.startswith(stream + "."))
    return f"'{kinds[0]}' AND '{kinds[-1]}'"


def order_figures(created: str) -> str:
    """The figures a ``payment_order.created`` gives its order (client, direction, amount,
    currency), from its typed payload ``created`` (a struct or a row of ``payload_payment_order``):
    v1 has the amount and currency at the top, v2 under ``money`` (the fold's upcast); amount 0
    where there is none (the fold's empty order)."""
    c = created
    return (
        f"{c}.client_id AS client_id, {c}.direction AS direction, "
        f"coalesce({c}.amount, {c}.money.amount, 0)::BIGINT AS amount, "
        f"coalesce({c}.currency, {c}.money.currency) AS currency"
    )


def judged_after(pos: str, event_id: str | None, since: tuple[int, str] | None) -> str:
    """A condition on ``(pos, event_id)``: after ``since`` in the fold's order, the last event
    POLICY_DEVIATION's stored judgments reach (``policy_judged``; the audit judges only what
    comes after it), or TRUE where ``since`` is None (judge everything: the full build, and any
    caller that does not read the stored judgments). The event id is a literal, quoted.
    Without ``event_id``, the position alone: not before ``since`` (a coarser bound that lets a
    table with no event id skip its rows before it)."""
    if since is None:
        return "TRUE"
    p, e = int(since[0]), str(since[1]).replace("'", "''")
    if event_id is None:
        return f"{pos} >= {p}"
    return f"({pos} > {p} OR {pos} = {p} AND {event_id} > '{e}')"


#: The scheduler acts on a deadline within its sweep.
GRACE = f"INTERVAL {int(SWEEP_DELAY.total_seconds() * 1_000_000)} MICROSECONDS"

GLOBALS: dict[str, Any] = {
    "names": names,
    "attempt_outcome": attempt_outcome,
    "outcome_kind": outcome_kind,
    "kinds_table": kinds_table,
    "status_code": status_code,
    "status_name": status_name,
    "stream_code": stream_code,
    "clock_rows": clock_rows,
    "era_start": era_start,
    "era_end": era_end,
    "fits": fits,
    "out_of_int64": out_of_int64,
    "deposit_overflow_detail": deposit_overflow_detail,
    "account_overflow_detail": account_overflow_detail,
    "negative_detail": negative_detail,
    "CREDITS": CREDITS,
    "DEBITS": DEBITS,
    "HOLD_KINDS": HOLD_KINDS,
    "MONEY_KINDS": MONEY_KINDS,
    "D_BALANCE": D_BALANCE,
    "INT64_MAX": INT64_MAX,
    "INT64_MIN": INT64_MIN,
    "NEVER": NEVER,
    "DEFAULT_SCORE": DEFAULT_SCORE,
    "TRADER_MONEY": TRADER_MONEY,
    "TRADER_STATE": TRADER_STATE,
    "STATE_FIELDS": STATE_FIELDS,
    "events_of": events_of,
    "deposit_moves": deposit_moves,
    "client_moves": client_moves,
    "typed": typed,
    "typed_of": typed_of,
    "GRACE": GRACE,
    "REVIEW_CONFIDENCE": REVIEW_CONFIDENCE,
    "money": sql_money,
    "process_kinds": process_kinds,
    "kind_range": kind_range,
    "judged_after": judged_after,
    "order_figures": order_figures,
}

#: Values a model may be rendered with: the per-aggregate hash that partitions the sequence and
#: state rules (the tests use one with many collisions), the audit's "now", the statement
#: matching's value-date window in days (:mod:`workbench.statements.rules`), the time an
#: audit ``--as-of`` reads the statements as they stood (NULL: all of them) and how long a
#: review may stay open before it is overdue (``REVIEW_OVERDUE``, an interval), and the last
#: event POLICY_DEVIATION's stored judgments reach (``(position, event_id)``; None: judge all)
#: and the fingerprint of the models that judged them (the full build's).
DEFAULTS: dict[str, Any] = {
    "hash_expr": "hash(stream, aggregate_id)",
    "ref_time": "now()",
    "statement_window_days": STATEMENT_WINDOW_DAYS,
    "statement_as_of": "NULL::TIMESTAMPTZ",
    "review_overdue": interval(receipt.REVIEW_OVERDUE),
    "policy_from": None,
    "judged_by": "",
}
