"""SQL of the order projections (payment_orders, order_attempts) and of the violations.

Each query mirrors the per-event fold (:mod:`workbench.domain`) over the ``ev`` table of
:mod:`.bulk` (events in ``(position, event_id)`` order as ``ord``):

* an order's fields are those of the last event of each kind: the ``ord`` of that event is found
  with integer aggregates and its payload fetched by ``ord``, so each payload needed is parsed
  once, after the aggregation (aggregating strings or parsed structs is several times slower);
* an attempt is opened by each ``assigned`` and ended by the first ``assignment_declined``,
  ``assignment_expired``, ``cancelled`` or ``completed`` after it, or superseded by the next
  ``assigned``. An event is inside the open attempt when the last of those boundary events
  before it is an ``assigned``: that is all the fold's ``open_attempt`` means;
* every violation the fold records comes from one CTE per rule, with the fold's exact
  ``detail`` text; the violations table is their union (a set, as the engine writes it) with the
  conflicting duplicates kept in ``quarantine``.

Performance: each payload is parsed at most once, with one ``from_json`` for the fields a query
needs (each ``->>`` parses the whole payload again), and only for the events that need it;
windows carry integers rather than strings where they can (statuses as small codes, the
aggregate as a hash); aggregates keep integers (``ord``), never payloads.
"""

from __future__ import annotations

from datetime import timedelta

from ..domain import clock, payment_order, payout, receipt
from ..domain.client import PAYLOADS as _CLIENT_PAYLOADS
from ..domain.events import STREAMS
from ..domain.money import INT64_MAX, INT64_MIN
from ..domain.trader import PAYLOADS as _TRADER_PAYLOADS

_CLIENT_KINDS = tuple(dict.fromkeys(p.KIND for p in _CLIENT_PAYLOADS))
_TRADER_KINDS = tuple(dict.fromkeys(p.KIND for p in _TRADER_PAYLOADS))

# ----------------------------------------------------------------------------- kinds
_CREATED = "'payment_order.created'"
_ASSIGNED = "'payment_order.assigned'"
_ACCEPTED = "'payment_order.accepted'"
_COMPLETED = "'payment_order.completed'"
_CANCELLED = "'payment_order.cancelled'"
_RECEIPT_ATTACHED = "'payment_order.receipt_attached'"
#: The kinds that end an open attempt (besides a new assignment, which supersedes it).
_ENDERS = (
    "'payment_order.assignment_declined', 'payment_order.assignment_expired', "
    f"{_CANCELLED}, {_COMPLETED}"
)
_BEFORE = "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
_MAX_ORD = "9223372036854775807"

_CREATED_JSON = (
    '{"client_id": "VARCHAR", "direction": "VARCHAR", "amount": "BIGINT", "currency": "VARCHAR", '
    '"money": {"amount": "BIGINT", "currency": "VARCHAR"}, "client_ref": "VARCHAR", '
    '"expires_at": "VARCHAR", "channel": "VARCHAR"}'
)
_ASSIGNED_JSON = (
    '{"attempt": "BIGINT", "trader_id": "VARCHAR", "rate": "VARCHAR", '
    '"settlement_currency": "VARCHAR", "settlement_amount": "BIGINT", "platform_fee": "BIGINT", '
    '"trader_reward": "BIGINT", "accept_by": "VARCHAR"}'
)
_COMPLETED_JSON = '{"trader_id": "VARCHAR", "paid_amount": "BIGINT"}'
#: A posting's debited account may be spelled ``from`` or ``from_`` (the model populates by name).
_HELD_JSON = (
    '{"batch_id": "BIGINT", "postings": [{"from": "VARCHAR", "from_": "VARCHAR", '
    '"to": "VARCHAR", "amount": "BIGINT", "currency": "VARCHAR"}]}'
)


def _lookup(name: str, kind: str, value: str, key: str) -> str:
    """LEFT JOIN the event of ``kind`` whose ``ord`` is in column ``key``, as ``name``."""
    return (
        f"LEFT JOIN (SELECT ord, occurred_at, {value} AS j FROM ev WHERE kind = {kind}) {name}"
        f" ON {name}.ord = g.{key}"
    )


# ---------------------------------------------------------------------- payment_orders
PAYMENT_ORDERS = f"""
WITH a AS (
    SELECT
        aggregate_id,
        max(ord) FILTER (WHERE kind = {_CREATED}) AS created_ord,
        max(ord) FILTER (WHERE kind = {_ASSIGNED}) AS assigned_ord,
        count(*) FILTER (WHERE kind = {_ASSIGNED}) AS attempts,
        list(ord) FILTER (WHERE kind IN ({_ENDERS})) AS ender_ords,
        list(ord) FILTER (WHERE kind = {_ACCEPTED}) AS accepted_ords,
        max(ord) FILTER (WHERE kind = 'payment_order.review_started') AS review_ord,
        max(ord) FILTER (WHERE kind = {_COMPLETED}) AS completed_ord,
        max(ord) FILTER (WHERE kind = {_CANCELLED}) AS cancelled_ord,
        max(ord) FILTER (WHERE kind = 'payment_order.disputed') AS disputed_ord,
        max(ord) FILTER (WHERE kind = 'payment_order.dispute_resolved') AS resolved_ord,
        -- the status is set by every kind but receipt_attached
        max(ord) FILTER (WHERE kind <> {_RECEIPT_ATTACHED}) AS status_ord,
        arg_max(occurred_at, ord) AS updated_at,
        max(seq) AS version
    FROM ev
    WHERE stream = 'payment_order'
    GROUP BY aggregate_id
),
g AS (
    SELECT *,
        -- the last accepted inside the latest attempt while it was open
        list_max(list_filter(accepted_ords, lambda x: x > assigned_ord AND x < coalesce(
            list_min(list_filter(ender_ords, lambda y: y > assigned_ord)), {_MAX_ORD}
        ))) AS accepted_ord
    FROM a
),
r AS (
    SELECT aggregate_id, list(receipt_id ORDER BY ord) AS receipt_ids
    FROM (
        SELECT aggregate_id, ord, payload->>'receipt_id' AS receipt_id
        FROM ev
        WHERE kind = {_RECEIPT_ATTACHED}
    )
    GROUP BY aggregate_id
)
SELECT
    g.aggregate_id AS order_id,
    cr.j.client_id,
    cr.j.direction,
    coalesce(cr.j.amount, cr.j.money.amount, 0)::BIGINT AS amount,
    coalesce(cr.j.currency, cr.j.money.currency) AS currency,
    cr.j.client_ref,
    CASE WHEN cr.schema_version = 1 THEN 'card' ELSE cr.j.channel END AS channel,
    CASE
        WHEN g.status_ord IS NULL THEN NULL
        WHEN g.status_ord = g.created_ord THEN 'pending'
        WHEN g.status_ord = g.assigned_ord THEN 'assigned'
        WHEN g.status_ord = list_max(g.accepted_ords) THEN 'in_progress'
        WHEN g.status_ord = g.review_ord THEN 'in_review'
        WHEN g.status_ord = g.completed_ord THEN 'completed'
        WHEN g.status_ord = g.cancelled_ord THEN 'cancelled'
        WHEN g.status_ord = g.disputed_ord THEN 'disputed'
        WHEN g.status_ord = g.resolved_ord THEN
            CASE WHEN res.j = 'upheld' THEN 'completed' ELSE 'cancelled' END
        ELSE 'pending'  -- assignment_declined, assignment_expired
    END AS status,
    g.attempts::INTEGER AS attempts,
    asg.j.attempt::INTEGER AS attempt,
    asg.j.trader_id,
    asg.j.rate,
    asg.j.settlement_currency,
    asg.j.settlement_amount::BIGINT AS settlement_amount,
    asg.j.platform_fee::BIGINT AS platform_fee,
    asg.j.trader_reward::BIGINT AS trader_reward,
    cr.j.expires_at::TIMESTAMPTZ AS expires_at,
    asg.j.accept_by::TIMESTAMPTZ AS accept_by,
    acc.j::TIMESTAMPTZ AS complete_by,
    cr.occurred_at AS created_at,
    asg.occurred_at AS assigned_at,
    acc.occurred_at AS accepted_at,
    rev.occurred_at AS review_started_at,
    rev.j AS review_reason,
    com.occurred_at AS completed_at,
    com.j.trader_id AS completed_by,
    com.j.paid_amount::BIGINT AS paid_amount,
    can.occurred_at AS cancelled_at,
    can.j AS cancel_reason,
    dis.occurred_at AS disputed_at,
    dis.j AS dispute_reason,
    res.occurred_at AS resolved_at,
    res.j AS dispute_outcome,
    coalesce(r.receipt_ids, []::VARCHAR[]) AS receipt_ids,
    g.updated_at,
    g.version::INTEGER AS version
FROM g
LEFT JOIN r ON r.aggregate_id = g.aggregate_id
LEFT JOIN (
    SELECT ord, occurred_at, schema_version, from_json(payload, '{_CREATED_JSON}') AS j
    FROM ev
    WHERE kind = {_CREATED}
) cr ON cr.ord = g.created_ord
{_lookup("asg", _ASSIGNED, f"from_json(payload, '{_ASSIGNED_JSON}')", "assigned_ord")}
{_lookup("acc", _ACCEPTED, "payload->>'complete_by'", "accepted_ord")}
{_lookup("rev", "'payment_order.review_started'", "payload->>'reason'", "review_ord")}
{_lookup("com", _COMPLETED, f"from_json(payload, '{_COMPLETED_JSON}')", "completed_ord")}
{_lookup("can", _CANCELLED, "payload->>'reason'", "cancelled_ord")}
{_lookup("dis", "'payment_order.disputed'", "payload->>'reason'", "disputed_ord")}
{_lookup("res", "'payment_order.dispute_resolved'", "payload->>'outcome'", "resolved_ord")}
"""

# ---------------------------------------------------------------------- order_attempts
ORDER_ATTEMPTS = f"""
WITH w AS (
    -- the last boundary before each event, as ord * 4 + 1 (an assigned: its attempt is open)
    -- or ord * 4 + 2 (an ender): events inside an open attempt belong to that assigned's ord
    SELECT ord, kind, occurred_at,
        max(CASE WHEN kind = {_ASSIGNED} THEN ord * 4 + 1 WHEN kind <> {_ACCEPTED} THEN ord * 4 + 2 END)
            OVER (PARTITION BY aggregate_id ORDER BY ord {_BEFORE}) AS boundary
    FROM ev
    WHERE stream = 'payment_order' AND kind IN ({_ASSIGNED}, {_ACCEPTED}, {_ENDERS})
),
open AS (
    SELECT
        boundary // 4 AS assigned_ord,
        max(ord) FILTER (WHERE kind = {_ACCEPTED}) AS accepted_ord,
        arg_max(occurred_at, ord) FILTER (WHERE kind = {_ACCEPTED}) AS accepted_at,
        arg_min(occurred_at, ord) FILTER (WHERE kind <> {_ACCEPTED}) AS ended_at,
        arg_min(CASE kind
            WHEN 'payment_order.assignment_declined' THEN 'declined'
            WHEN 'payment_order.assignment_expired' THEN 'expired'
            WHEN {_CANCELLED} THEN 'cancelled'
            WHEN {_COMPLETED} THEN 'completed'
            WHEN {_ASSIGNED} THEN 'superseded'
        END, ord) FILTER (WHERE kind <> {_ACCEPTED}) AS outcome
    FROM w
    WHERE boundary % 4 = 1
    GROUP BY boundary // 4
)
SELECT
    asg.aggregate_id AS order_id,
    asg.j.attempt::INTEGER AS attempt,
    asg.j.trader_id,
    asg.j.rate,
    asg.j.settlement_currency,
    asg.j.settlement_amount::BIGINT AS settlement_amount,
    asg.j.platform_fee::BIGINT AS platform_fee,
    asg.j.trader_reward::BIGINT AS trader_reward,
    asg.occurred_at AS assigned_at,
    asg.j.accept_by::TIMESTAMPTZ AS accept_by,
    o.accepted_at,
    acc.complete_by::TIMESTAMPTZ AS complete_by,
    o.ended_at,
    o.outcome,
    asg.event_id AS assigned_event_id
FROM (
    SELECT aggregate_id, ord, event_id, occurred_at, from_json(payload, '{_ASSIGNED_JSON}') AS j
    FROM ev
    WHERE kind = {_ASSIGNED}
) asg
LEFT JOIN open o ON o.assigned_ord = asg.ord
LEFT JOIN (
    SELECT ord, payload->>'complete_by' AS complete_by
    FROM ev
    WHERE kind = {_ACCEPTED}
) acc ON acc.ord = o.accepted_ord
"""

# -------------------------------------------------------------------------- violations
#: The status each kind leaves its aggregate in (payment_order._STATUS_AFTER, the receipt and
#: payout appliers); ``receipt_attached`` keeps the status and ``dispute_resolved`` sets it from
#: its outcome. For clients and traders the only status is being registered.
_STATUS_AFTER: dict[str, str] = {
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
#: Statuses as small integers (0 is "no status yet"), so the window carries no strings.
_STATUS_CODES: dict[str, int] = {
    name: i + 1 for i, name in enumerate(dict.fromkeys(_STATUS_AFTER.values()))
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
    return sum(1 << (0 if s is None else _STATUS_CODES[s]) for s in statuses)


def _kinds_table() -> str:
    """``(kind, st, mask)`` for every checked kind: the status code after it (NULL: unchanged or
    set from the payload) and the bitmask of the status codes it is allowed in (bit 0: none)."""
    rows = [
        f"('{kind}', {_STATUS_CODES[_STATUS_AFTER[kind]] if kind in _STATUS_AFTER else 'NULL'}, "
        f"{_mask(statuses)})"
        for kind, statuses in sorted(_allowed().items())
    ]
    return "(VALUES " + ", ".join(rows) + ") AS kinds(kind, st, mask)"


#: The status after a dispute is resolved depends on its outcome.
_RESOLVED_ST = (
    "CASE WHEN ev.kind = 'payment_order.dispute_resolved' THEN CASE WHEN payload->>'outcome' = "
    f"'upheld' THEN {_STATUS_CODES['completed']} ELSE {_STATUS_CODES['cancelled']} END END"
)
_STATUS_NAME = (
    "CASE st_prev "
    + " ".join(f"WHEN {c} THEN '{n}'" for n, c in _STATUS_CODES.items())
    + " ELSE 'None' END"
)
_STREAM_CODE = (
    "CASE stream "
    + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STREAMS))
    + " END::UTINYINT"
)


def _event_checks(name: str, where: str, partition: str, hash_expr: str) -> str:
    """CTEs ``{name}`` (each event with what its aggregate was before it: the highest seq and
    the status) and ``{name}_flagged`` (the events that break a rule, plus, for a hashed
    ``partition``, every event of a partition that mixes aggregates). The last status before an
    event is the largest ``ord * 32 + status`` before it (a max is cheaper than a last_value)."""
    return f"""{name} AS (
    SELECT ord, seq, h, mask,
        coalesce(max(seq) OVER wp, 0) AS ver,
        (max(st_at) OVER wp) % 32 AS st_prev,
        coalesce(lag(aggregate_id) OVER wl <> aggregate_id OR lag(sc) OVER wl <> sc, false)
            AS mixed
    FROM (
        SELECT ord, seq, aggregate_id, {hash_expr} AS h, {_STREAM_CODE} AS sc,
            ord * 32 + coalesce(kinds.st, {_RESOLVED_ST}) AS st_at,
            kinds.mask AS mask
        FROM ev
        LEFT JOIN {_kinds_table()} ON kinds.kind = ev.kind
        WHERE {where}
    )
    WINDOW wl AS (PARTITION BY {partition} ORDER BY ord), wp AS (wl {_BEFORE})
),
{name}_flagged AS MATERIALIZED (
    SELECT *
    FROM (
        SELECT *, seq <> ver::BIGINT + 1 AS bad_seq, (mask >> coalesce(st_prev, 0)) & 1 = 0 AS bad_state
        FROM {name}
    )
    WHERE bad_seq OR bad_state OR mixed
)"""


#: The families of violation rules, by what a rule reads. ``aggregate``: sequence, state-machine,
#: hold, plan and clock rules, each over one aggregate's own events; its violations name an event
#: of that aggregate. ``negative``: the running balances of client and trader accounts over the
#: whole ledger in log order. ``overflow``: running money figures (trader deposits, ledger
#: accounts) that leave int64. ``conflict``: the conflicting copies the engine keeps in
#: quarantine. A full build takes them all; the incremental path (:mod:`.incremental`) takes them
#: apart.
PARTS = ("aggregate", "negative", "overflow", "conflict")


def _violations(hash_expr: str, parts: tuple[str, ...] = PARTS) -> str:
    """The violations query. The per-aggregate window is partitioned by ``hash_expr``, a hash of
    (stream, aggregate_id): sorting on one integer is much cheaper than on two strings. Two
    aggregates with the same hash would share a partition; such partitions are detected
    (``mixed``) and their events checked again with the exact partition, so the result never
    depends on the hash (the tests use a hash with many collisions to check that path).

    ``parts`` picks the families of rules (:data:`PARTS`); the result is their union, a set."""
    unknown = set(parts) - set(PARTS)
    if unknown or not parts:
        raise ValueError(f"violation parts must be among {PARTS}, got {parts}")
    ctes: list[str] = []
    selects: list[str] = []
    if "aggregate" in parts or "overflow" in parts:
        ctes.append(_HOLDS)  # the overflow rule reads its holds
    if "aggregate" in parts:
        ctes += [_event_part(hash_expr), CLOCK]
        selects += [
            "SELECT code, event_id, subject, detail FROM event_v",
            "SELECT * FROM hold_v",
            "SELECT * FROM clock_v",
        ]
    if "aggregate" in parts or "negative" in parts or "overflow" in parts:
        ctes.append(LEDGER_BASE)
    if "aggregate" in parts:
        ctes.append(_PLAN_V)
        selects.append("SELECT * FROM plan_v")
    if "negative" in parts or "overflow" in parts:
        ctes.append(BATCH_END)
    if "negative" in parts:
        ctes.append(_NEGATIVE)
        selects.append("SELECT * FROM negative_v")
    if "overflow" in parts:
        ctes.append(_OVERFLOW)
        selects.append("SELECT * FROM overflow_v")
    if "conflict" in parts:
        ctes.append(_CONFLICT)
        selects.append("SELECT * FROM conflict_v")
    return "\nWITH " + ",\n".join(ctes) + "\n" + "\nUNION ".join(selects) + "\n"


def _event_part(hash_expr: str) -> str:
    """Sequence and state-machine rules per aggregate (``event_v``)."""
    exact = f"{hash_expr} IN (SELECT h FROM mixed_h)"
    return f"""{_event_checks("fast", "true", "h", hash_expr)},
mixed_h AS (SELECT DISTINCT h FROM fast_flagged WHERE mixed),
{_event_checks("exact", exact, "sc, aggregate_id", hash_expr)},
flagged AS (
    SELECT f.*, e.event_id, e.stream, e.kind, e.stream || ':' || e.aggregate_id AS subject
    FROM (
        SELECT * FROM fast_flagged WHERE h NOT IN (SELECT h FROM mixed_h)
        UNION ALL
        SELECT * FROM exact_flagged
    ) f
    JOIN ev e ON e.ord = f.ord
),
event_v AS (
    SELECT
        CASE WHEN seq > ver::BIGINT + 1 THEN 'SEQUENCE_GAP' ELSE 'CONFLICTING_DUPLICATE' END AS code,
        event_id,
        subject,
        CASE
            WHEN seq = ver::BIGINT + 2 THEN 'seq ' || (ver::BIGINT + 1) || ' missing before seq ' || seq
            WHEN seq > ver::BIGINT + 2
                THEN 'seq ' || (ver::BIGINT + 1) || '..' || (seq - 1) || ' missing before seq ' || seq
            ELSE 'seq ' || seq || ' was already taken (the aggregate is at seq ' || ver || ')'
        END AS detail
    FROM flagged
    WHERE bad_seq
    UNION ALL
    SELECT 'INVALID_TRANSITION', event_id, subject,
        kind || ' is not allowed in status ' || CASE
            WHEN stream NOT IN ('client', 'trader') THEN {_STATUS_NAME}
            WHEN st_prev IS NULL THEN 'unregistered'
            ELSE 'registered'
        END
    FROM flagged
    WHERE bad_state
    UNION ALL
    -- trader.apply: blocked while blocked, unblocked while active
    SELECT 'INVALID_TRANSITION', event_id, 'trader:' || aggregate_id,
        kind || ' is not allowed in status ' || CASE WHEN blocked_prev THEN 'blocked' ELSE 'active' END
    FROM (
        SELECT event_id, aggregate_id, kind,
            coalesce(lag(kind) OVER (PARTITION BY aggregate_id ORDER BY ord) = 'trader.blocked', false)
                AS blocked_prev
        FROM ev
        WHERE kind IN ('trader.blocked', 'trader.unblocked')
    )
    WHERE (kind = 'trader.blocked') = blocked_prev
    UNION ALL
    -- payment_order.apply: an assignment's attempt number follows the attempts before it
    SELECT 'INVALID_TRANSITION', event_id, 'payment_order:' || aggregate_id,
        'attempt ' || attempt || ' follows attempt ' || before
    FROM (
        SELECT event_id, aggregate_id, (payload->>'attempt')::BIGINT AS attempt,
            row_number() OVER (PARTITION BY aggregate_id ORDER BY ord) - 1 AS before
        FROM ev
        WHERE kind = {_ASSIGNED}
    )
    WHERE attempt <> before + 1
)"""


_HOLDS = """-- trader holds by ref: the last hold event of the same ref says whether one is open
holds AS (
    SELECT aggregate_id, ord, event_id, kind, j[1] AS ref, j[2]::BIGINT AS amount,
        CASE kind WHEN 'trader.hold_released' THEN 'release' ELSE 'capture' END AS verb
    FROM (
        SELECT aggregate_id, ord, event_id, kind,
            json_extract_string(payload, ['$.ref', '$.amount']) AS j
        FROM ev
        WHERE stream = 'trader'
            AND kind IN ('trader.hold_placed', 'trader.hold_released', 'trader.hold_captured')
    )
),
hw AS (
    SELECT *,
        coalesce(lag(kind) OVER wr = 'trader.hold_placed', false) AS was_open,
        lag(amount) OVER wr AS held
    FROM holds
    WINDOW wr AS (PARTITION BY aggregate_id, ref ORDER BY ord)
),
hold_v AS (
    SELECT 'INVALID_TRANSITION' AS code, event_id, 'trader:' || aggregate_id AS subject,
        CASE WHEN kind = 'trader.hold_placed' THEN 'a hold on ' || ref || ' is already open'
            ELSE verb || ' of ' || ref || ', which has no open hold'
        END AS detail
    FROM hw
    WHERE was_open = (kind = 'trader.hold_placed')
    UNION ALL
    SELECT 'TRADER_LEDGER_DRIFT', event_id, 'trader:' || aggregate_id,
        verb || ' ' || amount || ' of ' || ref || ', but ' || held || ' was held'
    FROM hw
    WHERE kind <> 'trader.hold_placed' AND was_open AND held <> amount
)"""

#: The ledger's events parsed once: held batches, plan ends and postings (read by the plan rules,
#: the running balances and the incremental path's balance check).
LEDGER_BASE = f"""-- ledger plans: batches held, plan ends (the first end fixes the plan's status for good)
lp AS MATERIALIZED (
    SELECT aggregate_id AS plan, ord, event_id, kind,
        CASE WHEN kind = 'ledger_plan.batch_held' THEN from_json(payload, '{_HELD_JSON}') END AS h,
        CASE WHEN kind <> 'ledger_plan.batch_held'
            THEN from_json(payload, '{{"batch_ids": ["BIGINT"]}}').batch_ids
        END AS batch_ids
    FROM ev
    WHERE stream = 'ledger_plan'
),
held AS (
    SELECT plan, ord, event_id, h.batch_id AS batch_id, h.postings AS postings
    FROM lp
    WHERE kind = 'ledger_plan.batch_held'
),
ends AS (
    SELECT plan, ord, event_id, kind = 'ledger_plan.committed' AS is_commit,
        kind, batch_ids
    FROM lp
    WHERE kind <> 'ledger_plan.batch_held'
),
first_end AS (
    SELECT plan, min(ord) AS end_ord, arg_min(is_commit, ord) AS is_commit
    FROM ends
    GROUP BY plan
),
held_before_end AS (
    SELECT h.plan, list(h.batch_id ORDER BY h.batch_id) AS batch_ids
    FROM held h JOIN first_end f ON f.plan = h.plan AND h.ord < f.end_ord
    GROUP BY h.plan
),
posts AS MATERIALIZED (
    SELECT plan, ord, event_id, post.amount AS amount, post.currency AS currency,
        coalesce(post.from, post.from_) AS from_account, post.to AS to_account, i
    FROM (
        SELECT plan, ord, event_id,
            unnest(postings) AS post, generate_subscripts(postings, 1) - 1 AS i
        FROM held
    )
)"""

_PLAN_V = """plan_v AS (
    SELECT 'INVALID_TRANSITION' AS code, h.event_id, 'ledger_plan:' || h.plan AS subject,
        'ledger_plan.batch_held is not allowed in status '
            || CASE WHEN f.is_commit THEN 'committed' ELSE 'rolled_back' END AS detail
    FROM held h JOIN first_end f ON f.plan = h.plan AND h.ord > f.end_ord
    UNION ALL
    SELECT 'LEDGER_PLAN_MISMATCH', h.event_id, 'ledger_plan:' || h.plan,
        'batch ' || h.batch_id || ' is held twice'
    FROM held h
    JOIN (
        SELECT plan, batch_id, min(ord) AS first_ord
        FROM held
        GROUP BY plan, batch_id
        HAVING count(*) > 1
    ) d ON d.plan = h.plan AND d.batch_id = h.batch_id AND h.ord > d.first_ord
    UNION ALL
    SELECT 'LEDGER_PLAN_MISMATCH', event_id, 'ledger_plan:' || plan,
        'batch ' || batch_id || ' has no postings'
    FROM held
    WHERE len(postings) = 0
    UNION ALL
    SELECT 'LEDGER_PLAN_MISMATCH', event_id, 'ledger_plan:' || plan,
        'posting ' || i || ' moves ' || amount || ' from ' || from_account || ' to itself'
    FROM posts
    WHERE from_account = to_account
    UNION ALL
    SELECT 'LEDGER_PLAN_MISMATCH', event_id, 'ledger_plan:' || plan,
        'posting ' || i || ' (' || from_account || ' → ' || to_account || ') has amount '
            || amount || ' <= 0'
    FROM posts
    WHERE amount <= 0
    UNION ALL
    SELECT
        CASE
            WHEN x.ord > f.end_ord OR b.plan IS NULL THEN 'INVALID_TRANSITION'
            ELSE 'LEDGER_PLAN_MISMATCH'
        END,
        x.event_id,
        'ledger_plan:' || x.plan,
        CASE
            WHEN x.ord > f.end_ord THEN
                CASE WHEN x.is_commit THEN 'commit' ELSE 'rollback' END
                || ' of a plan already '
                || CASE WHEN f.is_commit THEN 'committed' ELSE 'rolled_back' END
                || ': a plan ends once'
            WHEN b.plan IS NULL THEN x.kind || ' is not allowed in status no batch held'
            ELSE CASE WHEN x.is_commit THEN 'commit' ELSE 'rollback' END
                || ' lists batches ' || list_sort(x.batch_ids)::VARCHAR
                || ' but ' || b.batch_ids::VARCHAR || ' were held'
        END
    FROM ends x
    JOIN first_end f ON f.plan = x.plan
    LEFT JOIN held_before_end b ON b.plan = x.plan
    WHERE x.ord > f.end_ord OR b.plan IS NULL OR list_sort(x.batch_ids) <> b.batch_ids
)"""

#: The account book: a held batch ends at the first end after it that lists it.
BATCH_END = """batch_end AS (
    SELECT h.ord AS held_ord, min(x.ord) AS end_ord, arg_min(x.is_commit, x.ord) AS is_commit
    FROM held h
    JOIN ends x ON x.plan = h.plan AND x.ord > h.ord AND list_contains(x.batch_ids, h.batch_id)
    GROUP BY h.ord
)"""

_NEGATIVE = """-- guarded accounts, numbered: the running balances are one cumulative sum in (id, ord) order
-- minus the sums of the accounts before (much cheaper than a window partitioned by account);
-- materialized, so that every reference sees the same numbering
accounts AS MATERIALIZED (
    SELECT account, currency, row_number() OVER () AS id
    FROM (
        SELECT from_account AS account, currency FROM posts
        UNION
        SELECT to_account, currency FROM posts
    )
    WHERE starts_with(account, 'client:') OR starts_with(account, 'trader:')
),
effects AS (
    SELECT a.id, p.ord, 0 AS d_own, p.amount AS d_held
    FROM posts p JOIN accounts a ON a.account = p.from_account AND a.currency = p.currency
    UNION ALL
    SELECT a.id, b.end_ord, CASE WHEN b.is_commit THEN -(p.amount::HUGEINT) ELSE 0 END,
        -(p.amount::HUGEINT)
    FROM posts p
    JOIN batch_end b ON b.held_ord = p.ord
    JOIN accounts a ON a.account = p.from_account AND a.currency = p.currency
    UNION ALL
    SELECT a.id, b.end_ord, p.amount, 0
    FROM posts p
    JOIN batch_end b ON b.held_ord = p.ord AND b.is_commit
    JOIN accounts a ON a.account = p.to_account AND a.currency = p.currency
),
touched AS MATERIALIZED (
    SELECT id, ord, sum(d_own) AS d_own, sum(d_held) AS d_held
    FROM effects
    GROUP BY id, ord
),
offsets AS (
    SELECT id,
        coalesce(sum(sum(d_own)) OVER o, 0) AS own,
        coalesce(sum(sum(d_held)) OVER o, 0) AS held
    FROM touched
    GROUP BY id
    WINDOW o AS (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
negative AS (
    SELECT a.account, a.currency, r.ord, r.own - o.own AS own, r.held - o.held AS held
    FROM (
        SELECT id, ord, sum(d_own) OVER w AS own, sum(d_held) OVER w AS held
        FROM touched
        WINDOW w AS (ORDER BY id, ord ROWS UNBOUNDED PRECEDING)
    ) r
    JOIN offsets o ON o.id = r.id
    JOIN accounts a ON a.id = r.id
    WHERE (r.own - o.own) - (r.held - o.held) < 0
),
negative_v AS (
    SELECT 'NEGATIVE_AVAILABLE' AS code, l.event_id, n.account AS subject,
        n.account || ' available ' || (n.own - n.held) || ' ' || n.currency || ' < 0 (own '
            || n.own || ', held ' || n.held || ') after ' || l.kind || ' of ' || l.plan AS detail
    FROM negative n JOIN lp l ON l.ord = n.ord
)"""


# ------------------------------------------------------------------------------ clocks
def _ts(value: object) -> str:
    return f"TIMESTAMPTZ '{value:%Y-%m-%d %H:%M:%S}+00'"


def _stamp(column: str) -> str:
    """A timestamp as :func:`workbench.domain.clock.stamp` writes it."""
    return f"strftime({column} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ')"


_SKEW_US = clock.SKEW_TOLERANCE // timedelta(microseconds=1)


def _outside(column: str) -> str:
    return f"NOT ({column} >= {_ts(clock.ERA_START)} AND {column} < {_ts(clock.ERA_END)})"


def clock_rows(source: str, subject: str) -> str:
    """``CLOCK_SKEW`` rows (code, event_id, subject, detail) of the events of ``source`` (with
    ``event_id``, ``occurred_at``, ``recorded_at``), as :func:`workbench.domain.clock.clock_violations`."""
    skew = f"epoch_us(occurred_at) - epoch_us(recorded_at) > {_SKEW_US}"
    occ, rec = _outside("occurred_at"), _outside("recorded_at")
    return f"""SELECT 'CLOCK_SKEW' AS code, event_id, {subject} AS subject,
        'occurred_at ' || {_stamp("occurred_at")} || ', recorded_at ' || {_stamp("recorded_at")}
            || ': ' || concat_ws('; ',
                CASE WHEN {skew} THEN '{clock.SKEW_REASON}' END,
                CASE WHEN {occ} THEN '{clock.OCCURRED_OUTSIDE}' END,
                CASE WHEN {rec} THEN '{clock.RECORDED_OUTSIDE}' END) AS detail
    FROM {source}
    WHERE {skew} OR {occ} OR {rec}"""


#: ``CLOCK_SKEW``: implausible clocks, event by event.
CLOCK = f"""clock_v AS (
    {clock_rows("ev", "stream || ':' || aggregate_id")}
)"""


# --------------------------------------------------------------------------- overflow
def fits(expr: str) -> str:
    """``expr`` (exact, HUGEINT) fits a BIGINT column."""
    return f"(({expr}) BETWEEN {INT64_MIN} AND {INT64_MAX})"


def _past(figures: tuple[tuple[str, str], ...]) -> str:
    """The names of the figures (name, expression) outside int64, as the fold lists them."""
    cases = ", ".join(f"CASE WHEN NOT {fits(e)} THEN '{n}' END" for n, e in figures)
    return f"concat_ws(', ', {cases}) || ' outside the int64 range'"


def deposit_overflow_detail(balance: str, held: str, kind: str, ref: str) -> str:
    """The detail of a trader deposit's ``AMOUNT_OVERFLOW`` (``World._deposit_overflow``)."""
    available = f"{balance} - {held}"
    figures = (("deposit_balance", balance), ("held", held), ("available", available))
    return (
        f"'deposit_balance ' || {balance} || ', held ' || {held} || ', available ' || "
        f"({available}) || ' after ' || {kind} || ' of ' || {ref} || ': ' || {_past(figures)}"
    )


def out_of_int64(balance: str, held: str) -> str:
    """A balance, its held amount or their difference (the available amount) is past int64."""
    return f"NOT ({fits(balance)} AND {fits(held)} AND {fits(f'{balance} - {held}')})"


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


#: The trader stream's money kinds and how each moves the deposit balance.
_CREDITS = "'trader.deposit_topped_up', 'trader.deposit_credited'"
_DEBITS = "'trader.deposit_debited', 'trader.hold_captured'"
HOLD_KINDS = "'trader.hold_placed', 'trader.hold_released', 'trader.hold_captured'"
MONEY_KINDS = f"{_CREDITS}, 'trader.deposit_debited', {HOLD_KINDS}"
#: A money event's change to the deposit balance (``amount`` exact, HUGEINT).
D_BALANCE = (
    f"CASE WHEN kind IN ({_CREDITS}) THEN amount WHEN kind IN ({_DEBITS}) THEN -amount ELSE 0 END"
)

#: ``AMOUNT_OVERFLOW``: a trader's deposit figures or a ledger account's balances left int64.
#: Only the traders and accounts whose figures *could* leave it are followed event by event:
#: no figure can exceed twice the sum of the absolute amounts that ever moved it, so the others
#: (all of them, on real data) are ruled out by one aggregate. A trader's ``held`` moves by the
#: amount a hold event leaves on its ref less what the ref's previous hold event left there.
_OVERFLOW = f"""-- trader deposits: the money events (the holds as the hold rules read them), amounts exact
tm AS MATERIALIZED (
    SELECT aggregate_id, ord, event_id, kind, ref, amount::HUGEINT AS amount FROM holds
    UNION ALL
    SELECT aggregate_id, ord, event_id, kind, j[1], j[2]::HUGEINT
    FROM (
        SELECT aggregate_id, ord, event_id, kind,
            json_extract_string(payload, ['$.ref', '$.amount']) AS j
        FROM ev
        WHERE stream = 'trader' AND kind IN ({_CREDITS}, 'trader.deposit_debited')
    )
),
tm_big AS (
    SELECT aggregate_id FROM tm GROUP BY aggregate_id HAVING 2 * sum(abs(amount)) > {INT64_MAX}
),
tm_run AS (
    SELECT aggregate_id, ord, event_id, kind, ref,
        sum(d_balance) OVER w AS balance, sum(d_held) OVER w AS held
    FROM (
        SELECT *, {D_BALANCE} AS d_balance,
            CASE WHEN kind IN ({HOLD_KINDS})
                THEN placed - coalesce(lag(placed) OVER (
                    PARTITION BY aggregate_id, ref, kind IN ({HOLD_KINDS}) ORDER BY ord), 0)
                ELSE 0 END AS d_held
        FROM (
            SELECT *, CASE WHEN kind = 'trader.hold_placed' THEN amount ELSE 0 END AS placed
            FROM tm
            WHERE aggregate_id IN (SELECT aggregate_id FROM tm_big)
        )
    )
    WINDOW w AS (PARTITION BY aggregate_id ORDER BY ord ROWS UNBOUNDED PRECEDING)
),
deposit_over AS (
    SELECT * FROM tm_run
    WHERE {out_of_int64("balance", "held")}
    QUALIFY row_number() OVER (PARTITION BY aggregate_id ORDER BY ord) = 1
),
-- ledger accounts: the effects of every posting, as the account book applies them
acct_big AS (
    SELECT account, currency
    FROM (
        SELECT from_account AS account, currency, abs(amount::HUGEINT) AS a FROM posts
        UNION ALL
        SELECT to_account, currency, abs(amount::HUGEINT) FROM posts
    )
    GROUP BY ALL
    HAVING 2 * sum(a) > {INT64_MAX}
),
acct_fx AS (
    SELECT p.from_account AS account, p.currency, p.ord, 0::HUGEINT AS d_own,
        p.amount::HUGEINT AS d_held
    FROM posts p SEMI JOIN acct_big g ON g.account = p.from_account AND g.currency = p.currency
    UNION ALL
    SELECT p.from_account, p.currency, b.end_ord,
        CASE WHEN b.is_commit THEN -(p.amount::HUGEINT) ELSE 0 END, -(p.amount::HUGEINT)
    FROM posts p
    SEMI JOIN acct_big g ON g.account = p.from_account AND g.currency = p.currency
    JOIN batch_end b ON b.held_ord = p.ord
    UNION ALL
    SELECT p.to_account, p.currency, b.end_ord, p.amount::HUGEINT, 0
    FROM posts p
    SEMI JOIN acct_big g ON g.account = p.to_account AND g.currency = p.currency
    JOIN batch_end b ON b.held_ord = p.ord AND b.is_commit
),
acct_run AS (
    SELECT account, currency, ord, sum(d_own) OVER w AS own, sum(d_held) OVER w AS held
    FROM (SELECT account, currency, ord, sum(d_own) AS d_own, sum(d_held) AS d_held
          FROM acct_fx GROUP BY ALL)
    WINDOW w AS (PARTITION BY account, currency ORDER BY ord ROWS UNBOUNDED PRECEDING)
),
acct_over AS (
    SELECT * FROM acct_run
    WHERE {out_of_int64("own", "held")}
    QUALIFY row_number() OVER (PARTITION BY account, currency ORDER BY ord) = 1
),
overflow_v AS (
    SELECT 'AMOUNT_OVERFLOW' AS code, event_id, 'trader:' || aggregate_id AS subject,
        {deposit_overflow_detail("balance", "held", "kind", "ref")} AS detail
    FROM deposit_over
    UNION ALL
    SELECT 'AMOUNT_OVERFLOW', l.event_id, o.account,
        {account_overflow_detail("o.account", "o.currency", "o.own", "o.held", "l.kind", "l.plan")}
    FROM acct_over o JOIN lp l ON l.ord = o.ord
)"""

_CONFLICT = """-- conflicting copies of an event, kept in quarantine by the engine
conflict_v AS (
    SELECT 'CONFLICTING_DUPLICATE' AS code, event_id,
        coalesce(stream, 'None') || ':' || coalesce(aggregate_id, 'None') AS subject,
        error AS detail
    FROM quarantine
    WHERE reason = 'conflicting_duplicate'
)"""


VIOLATIONS = _violations("hash(stream, aggregate_id)")

SQL: dict[str, str] = {
    "payment_orders": PAYMENT_ORDERS,
    "order_attempts": ORDER_ATTEMPTS,
    "violations": VIOLATIONS,
}
