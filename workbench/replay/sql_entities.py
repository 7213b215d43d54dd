"""SQL of the entity projections (clients, traders, receipts, payouts, ratings, ledger).

Each query reproduces what the per-event fold (:mod:`workbench.domain` laid out by
:mod:`.rows`) leaves in the table, illegal events included: events count in ``ord`` order
(``position``, then ``event_id``), so "the last X" is ``arg_max(x, ord) FILTER (WHERE kind = X)``
and "the first X" is ``arg_min``. ``arg_max_null`` is used where the value itself may be null
(the fold then keeps the null, not an earlier value). ``version`` is ``max(seq)`` (the fold keeps
the highest ``seq`` seen) and ``updated_at`` the ``occurred_at`` of the last event by ``ord``.

Each query reads ``ev`` once (a CTE used twice is materialized, so the window behind ``ord`` is
computed once per query). Payload fields are parsed once per event with ``json_transform`` into
a struct (fields a kind does not have are null) rather than one JSON parse per ``->>``; only the
tiny client stream uses ``->>``.

``DECIMAL(18,6)`` columns (``receipts.confidence``, ``trader_ratings.score``): the fold keeps the
JSON number exactly and rounds half-even to six places only if it has more. DuckDB reads a JSON
number as a double and casts it rounding half away from zero; for the catalog's values (at most
two places, every generated value has at most two) both give the same number.

Sums of money (a trader's deposit and holds, an account's balances) are exact: ``HUGEINT``
(``sum`` of a ``BIGINT`` is one; a negated amount is cast first, so even ``-INT64_MIN`` is
exact). A sum that does not fit its ``BIGINT`` column is stored as NULL (``TRY_CAST``), as the
fold does (:func:`workbench.domain.money.as_int64`); the violations say which and why.
"""

from __future__ import annotations

#: Trader payload fields, all kinds together (v1 limits at top level, v2 under ``limits``).
_TRADER_FIELDS = (
    '{"name": "VARCHAR", "fiat_currency": "VARCHAR", "settlement_currency": "VARCHAR", '
    '"country": "VARCHAR", "min_amount": "BIGINT", "max_amount": "BIGINT", '
    '"max_active_orders": "INTEGER", "reward_bps": "INTEGER", '
    '"limits": {"min_amount": "BIGINT", "max_amount": "BIGINT", "max_active_orders": "INTEGER"}, '
    '"ref": "VARCHAR", "amount": "BIGINT"}'
)

_RECEIPT_FIELDS = (
    '{"order_id": "VARCHAR", "trader_id": "VARCHAR", "amount": "BIGINT", "currency": "VARCHAR", '
    '"paid_at": "VARCHAR", "bank": "VARCHAR", "file_sha256": "VARCHAR", '
    '"extracted_amount": "BIGINT", "extracted_paid_at": "VARCHAR", "confidence": "VARCHAR", '
    '"flags": ["VARCHAR"], "by": "VARCHAR", "reason": "VARCHAR"}'
)

_PAYOUT_FIELDS = (
    '{"owner": "VARCHAR", "amount": "BIGINT", "fee": "BIGINT", "currency": "VARCHAR", '
    '"destination_masked": "VARCHAR", "plan_id": "VARCHAR", "bank_ref": "VARCHAR", '
    '"details": "VARCHAR", "error": "VARCHAR"}'
)

_RATING_FIELDS = (
    '{"as_of": "VARCHAR", "window_days": "INTEGER", "assignments": "INTEGER", '
    '"completed": "INTEGER", "on_time": "INTEGER", "disputed": "INTEGER", "score": "VARCHAR"}'
)

CLIENTS = """
SELECT
    aggregate_id AS client_id,
    count(*) FILTER (WHERE kind = 'client.registered') > 0 AS registered,
    arg_max_null(payload->>'name', ord) FILTER (WHERE kind = 'client.registered') AS name,
    arg_max_null(payload->>'settlement_currency', ord) FILTER (WHERE kind = 'client.registered')
        AS settlement_currency,
    arg_max_null((payload->>'fee_bps')::INTEGER, ord)
        FILTER (WHERE kind IN ('client.registered', 'client.fee_changed')) AS fee_bps,
    arg_min(occurred_at, ord) FILTER (WHERE kind = 'client.registered') AS registered_at,
    arg_max(occurred_at, ord) AS updated_at,
    max(seq)::INTEGER AS version
FROM ev
WHERE stream = 'client'
GROUP BY aggregate_id
"""

#: A trader's fields as folded from a run of its events (``t``: the events with their payload
#: read into ``j``), the traders projection's core; the live stream folds a batch with it too.
TRADER_FOLD = """        count(*) FILTER (WHERE kind = 'trader.registered') > 0 AS registered,
        arg_max_null(j.name, ord) FILTER (WHERE kind = 'trader.registered') AS name,
        arg_max_null(j.fiat_currency, ord) FILTER (WHERE kind = 'trader.registered')
            AS fiat_currency,
        arg_max_null(j.settlement_currency, ord) FILTER (WHERE kind = 'trader.registered')
            AS settlement_currency,
        -- v1 registrations have no country (upcast to null)
        arg_max_null(CASE WHEN schema_version >= 2 THEN j.country END, ord)
            FILTER (WHERE kind = 'trader.registered') AS country,
        arg_max_null(
            CASE WHEN kind = 'trader.registered' AND schema_version >= 2
                 THEN j.limits.min_amount ELSE j.min_amount END, ord)
            FILTER (WHERE kind IN ('trader.registered', 'trader.limits_changed')) AS min_amount,
        arg_max_null(
            CASE WHEN kind = 'trader.registered' AND schema_version >= 2
                 THEN j.limits.max_amount ELSE j.max_amount END, ord)
            FILTER (WHERE kind IN ('trader.registered', 'trader.limits_changed')) AS max_amount,
        arg_max_null(
            CASE WHEN kind = 'trader.registered' AND schema_version >= 2
                 THEN j.limits.max_active_orders ELSE j.max_active_orders END, ord)
            FILTER (WHERE kind IN ('trader.registered', 'trader.limits_changed'))
            AS max_active_orders,
        arg_max_null(j.reward_bps, ord) FILTER (WHERE kind = 'trader.registered') AS reward_bps,
        arg_max(kind, ord) FILTER (WHERE kind IN ('trader.blocked', 'trader.unblocked'))
            AS last_block,
        arg_max(kind, ord) FILTER (WHERE kind IN ('trader.went_online', 'trader.went_offline'))
            AS last_presence,
        sum(CASE WHEN kind IN ('trader.deposit_topped_up', 'trader.deposit_credited')
                 THEN j.amount::HUGEINT
                 WHEN kind IN ('trader.deposit_debited', 'trader.hold_captured')
                 THEN -(j.amount::HUGEINT)
                 ELSE 0 END) AS balance,
        arg_min(occurred_at, ord) FILTER (WHERE kind = 'trader.registered') AS registered_at,
        arg_max(occurred_at, ord) AS updated_at,
        max(seq) AS version"""

TRADERS = f"""
WITH t AS (
    SELECT aggregate_id, ord, seq, kind, schema_version, occurred_at,
           json_transform(payload, '{_TRADER_FIELDS}') AS j
    FROM ev
    WHERE stream = 'trader'
),
-- A hold is open when the last hold event on its ref places it (placing twice keeps the
-- last amount; a release or capture removes the ref whatever its amount).
holds AS (
    SELECT aggregate_id, sum(amount) AS held, count(*)::INTEGER AS open_holds
    FROM (
        SELECT aggregate_id, j.ref,
               arg_max(kind, ord) AS last_kind,
               arg_max_null(j.amount, ord) AS amount
        FROM t
        WHERE kind IN ('trader.hold_placed', 'trader.hold_released', 'trader.hold_captured')
        GROUP BY aggregate_id, j.ref
    )
    WHERE last_kind = 'trader.hold_placed'
    GROUP BY aggregate_id
),
-- payment_orders is built before traders: its trader_id is the latest attempt's trader.
active AS (
    SELECT trader_id, count(*)::INTEGER AS n
    FROM payment_orders
    WHERE status IN ('assigned', 'in_progress', 'in_review') AND trader_id IS NOT NULL
    GROUP BY trader_id
),
a AS (
    SELECT
        aggregate_id,
{TRADER_FOLD}
    FROM t
    GROUP BY aggregate_id
)
SELECT
    a.aggregate_id AS trader_id,
    a.registered,
    a.name,
    a.fiat_currency,
    a.settlement_currency,
    a.country,
    coalesce(a.min_amount, 0)::BIGINT AS min_amount,
    coalesce(a.max_amount, 0)::BIGINT AS max_amount,
    coalesce(a.max_active_orders, 0)::INTEGER AS max_active_orders,
    coalesce(a.reward_bps, 0)::INTEGER AS reward_bps,
    CASE WHEN a.last_block = 'trader.blocked' THEN 'blocked' ELSE 'active' END AS status,
    coalesce(a.last_presence = 'trader.went_online', false) AS online,
    TRY_CAST(a.balance AS BIGINT) AS deposit_balance,
    TRY_CAST(coalesce(h.held, 0) AS BIGINT) AS held,
    TRY_CAST(a.balance - coalesce(h.held, 0) AS BIGINT) AS available,
    coalesce(h.open_holds, 0)::INTEGER AS open_holds,
    coalesce(ac.n, 0)::INTEGER AS active_orders,
    a.registered_at,
    a.updated_at,
    a.version::INTEGER AS version
FROM a
LEFT JOIN holds h ON h.aggregate_id = a.aggregate_id
LEFT JOIN active ac ON ac.trader_id = a.aggregate_id
"""

RECEIPTS = f"""
WITH r AS (
    SELECT aggregate_id, ord, seq, kind, occurred_at, json_transform(payload, '{_RECEIPT_FIELDS}') AS j
    FROM ev
    WHERE stream = 'receipt'
)
SELECT
    aggregate_id AS receipt_id,
    arg_max_null(j.order_id, ord) FILTER (WHERE kind = 'receipt.uploaded') AS order_id,
    arg_max_null(j.trader_id, ord) FILTER (WHERE kind = 'receipt.uploaded') AS trader_id,
    coalesce(arg_max_null(j.amount, ord) FILTER (WHERE kind = 'receipt.uploaded'), 0)::BIGINT
        AS amount,
    arg_max_null(j.currency, ord) FILTER (WHERE kind = 'receipt.uploaded') AS currency,
    (arg_max_null(j.paid_at, ord) FILTER (WHERE kind = 'receipt.uploaded'))::TIMESTAMPTZ
        AS paid_at,
    arg_max_null(j.bank, ord) FILTER (WHERE kind = 'receipt.uploaded') AS bank,
    arg_max_null(j.file_sha256, ord) FILTER (WHERE kind = 'receipt.uploaded') AS file_sha256,
    -- every receipt event sets the status named by its kind
    split_part(arg_max(kind, ord), '.', 2) AS status,
    arg_max(occurred_at, ord) FILTER (WHERE kind = 'receipt.uploaded') AS uploaded_at,
    arg_max_null(j.extracted_amount, ord) FILTER (WHERE kind = 'receipt.analyzed')::BIGINT
        AS extracted_amount,
    (arg_max_null(j.extracted_paid_at, ord) FILTER (WHERE kind = 'receipt.analyzed'))::TIMESTAMPTZ
        AS extracted_paid_at,
    -- exact for catalog values (see the module docstring)
    (arg_max_null(j.confidence, ord) FILTER (WHERE kind = 'receipt.analyzed'))::DECIMAL(18, 6)
        AS confidence,
    coalesce(
        arg_max_null(j.flags, ord) FILTER (WHERE kind = 'receipt.analyzed'), []::VARCHAR[]
    ) AS flags,
    arg_max(occurred_at, ord) FILTER (WHERE kind = 'receipt.analyzed') AS analyzed_at,
    arg_max_null(j.by, ord) FILTER (WHERE kind = 'receipt.approved') AS approved_by,
    arg_max_null(j.reason, ord) FILTER (WHERE kind = 'receipt.rejected') AS reject_reason,
    arg_max(occurred_at, ord) FILTER (WHERE kind IN ('receipt.approved', 'receipt.rejected'))
        AS decided_at,
    max(seq)::INTEGER AS version
FROM r
GROUP BY aggregate_id
"""

# A payout's status is set by every event; a cancel remembers the status it came from, i.e.
# the status set by the event just before it in the payout's own order.
PAYOUTS = f"""
WITH x AS (
    SELECT aggregate_id, ord, seq, kind, occurred_at,
           json_transform(payload, '{_PAYOUT_FIELDS}') AS j,
           CASE kind WHEN 'payout.created' THEN 'unpaid' ELSE split_part(kind, '.', 2) END
               AS status_after
    FROM ev
    WHERE stream = 'payout'
),
y AS (
    SELECT *, lag(status_after) OVER (PARTITION BY aggregate_id ORDER BY ord) AS status_before
    FROM x
)
SELECT
    aggregate_id AS payout_id,
    arg_max_null(j.owner, ord) FILTER (WHERE kind = 'payout.created') AS owner,
    coalesce(arg_max_null(j.amount, ord) FILTER (WHERE kind = 'payout.created'), 0)::BIGINT
        AS amount,
    coalesce(arg_max_null(j.fee, ord) FILTER (WHERE kind = 'payout.created'), 0)::BIGINT AS fee,
    arg_max_null(j.currency, ord) FILTER (WHERE kind = 'payout.created') AS currency,
    arg_max_null(j.destination_masked, ord) FILTER (WHERE kind = 'payout.created')
        AS destination_masked,
    arg_max_null(j.plan_id, ord) FILTER (WHERE kind = 'payout.created') AS plan_id,
    arg_max(status_after, ord) AS status,
    arg_max_null(j.bank_ref, ord) FILTER (WHERE kind = 'payout.paid') AS bank_ref,
    arg_max(occurred_at, ord) FILTER (WHERE kind = 'payout.created') AS created_at,
    arg_max(occurred_at, ord) FILTER (WHERE kind = 'payout.paid') AS paid_at,
    arg_max(occurred_at, ord) FILTER (WHERE kind = 'payout.confirmed') AS confirmed_at,
    arg_max(occurred_at, ord) FILTER (WHERE kind IN ('payout.cancelled', 'payout.failed'))
        AS ended_at,
    arg_max_null(status_before, ord) FILTER (WHERE kind = 'payout.cancelled') AS cancelled_from,
    arg_max_null(CASE kind WHEN 'payout.cancelled' THEN j.details ELSE j.error END, ord)
        FILTER (WHERE kind IN ('payout.cancelled', 'payout.failed')) AS details,
    max(seq)::INTEGER AS version
FROM y
GROUP BY aggregate_id
"""

# Ledger plans. A batch (one ``batch_held`` event) ends at the first commit or rollback after
# it, in the same plan, that lists its batch_id -- whatever the plan's status (so a batch held
# after the plan ended stays held unless a later end lists it). The plan's status is its first
# end event's outcome (even one before any batch); ended_at / end_event_id are that event's only
# if a batch was held before it (the fold ends a plan only from ``held``).
#
# ``_LEDGER`` reads the stream once, parsing each payload once (``postings`` typed as given by
# ``{postings}``, kept in ``held`` as ``{held_postings}``); a held batch is identified by its
# event's ``ord``.
_LEDGER = """
l AS (
    SELECT aggregate_id AS plan_id, ord, seq, occurred_at, event_id,
           kind = 'ledger_plan.batch_held' AS is_held,
           CASE kind WHEN 'ledger_plan.committed' THEN 'committed'
                     WHEN 'ledger_plan.rolled_back' THEN 'rolled_back' END AS outcome,
           json_transform(
               payload, '{{"batch_id": "BIGINT", "batch_ids": ["BIGINT"], "postings": {postings}}}'
           ) AS j
    FROM ev
    WHERE stream = 'ledger_plan'
),
held AS (
    SELECT plan_id, ord, occurred_at, event_id, j.batch_id AS batch_id, {held_postings} AS postings
    FROM l
    WHERE is_held
),
ends AS (
    SELECT plan_id, ord, outcome, unnest(j.batch_ids) AS batch_id
    FROM l
    WHERE NOT is_held
),
batch_end AS (
    SELECT h.ord, arg_min(e.outcome, e.ord) AS outcome
    FROM held h
    JOIN ends e ON e.plan_id = h.plan_id AND e.batch_id = h.batch_id AND e.ord > h.ord
    GROUP BY h.ord
)"""

LEDGER_PLANS = f"""
WITH {_LEDGER.format(postings='["JSON"]', held_postings="len(j.postings)")},
batches AS (
    SELECT h.plan_id,
           count(*) AS batches,
           count(*) FILTER (WHERE be.outcome IS NULL) AS open_batches,
           sum(h.postings) AS postings
    FROM held h
    LEFT JOIN batch_end be ON be.ord = h.ord
    GROUP BY h.plan_id
),
plan AS (
    SELECT
        plan_id,
        min(ord) FILTER (WHERE is_held) AS first_held,
        min(ord) FILTER (WHERE NOT is_held) AS first_end,
        arg_min(outcome, ord) FILTER (WHERE NOT is_held) AS first_outcome,
        arg_min(occurred_at, ord) FILTER (WHERE NOT is_held) AS first_end_at,
        arg_min(event_id, ord) FILTER (WHERE NOT is_held) AS first_end_event_id,
        arg_min(occurred_at, ord) FILTER (WHERE is_held) AS created_at,
        max(seq) AS version
    FROM l
    GROUP BY plan_id
)
SELECT
    plan.plan_id,
    coalesce(plan.first_outcome, 'held') AS status,
    coalesce(b.batches, 0)::INTEGER AS batches,
    coalesce(b.open_batches, 0)::INTEGER AS open_batches,
    coalesce(b.postings, 0)::INTEGER AS postings,
    plan.created_at,
    CASE WHEN plan.first_held < plan.first_end THEN plan.first_end_at END AS ended_at,
    CASE WHEN plan.first_held < plan.first_end THEN plan.first_end_event_id END AS end_event_id,
    plan.version::INTEGER AS version
FROM plan
LEFT JOIN batches b ON b.plan_id = plan.plan_id
"""

_POSTINGS = (
    '[{"from": "VARCHAR", "to": "VARCHAR", "amount": "BIGINT", "currency": "VARCHAR", '
    '"description": "VARCHAR"}]'
)

LEDGER_POSTINGS = f"""
WITH {_LEDGER.format(postings=_POSTINGS, held_postings="j.postings")},
posting AS (
    SELECT plan_id, batch_id, ord, occurred_at, event_id,
           generate_subscripts(postings, 1) - 1 AS posting_index,
           unnest(postings) AS s
    FROM held
)
SELECT
    x.plan_id,
    x.batch_id,
    x.posting_index::INTEGER AS posting_index,
    x.s."from" AS from_account,
    x.s."to" AS to_account,
    x.s.amount AS amount,
    x.s.currency AS currency,
    x.s.description AS description,
    x.occurred_at AS held_at,
    coalesce(be.outcome, 'held') AS batch_status,
    x.event_id AS held_event_id
FROM posting x
LEFT JOIN batch_end be ON be.ord = x.ord
"""

# The account book: holding a batch adds each posting's amount to its ``from`` account's held;
# ending it takes that back, and a commit moves ``own`` from ``from`` to ``to``. So the accounts
# are every ``from`` of a held posting (zero or not) and every ``to`` of a committed one, and
# the figures follow from the batch's final status. Reads ledger_postings (built just before).
# ``ACCOUNT_SUMS`` are the exact figures (HUGEINT); the table holds them where they fit int64.
ACCOUNT_SUMS = """
SELECT account, currency, sum(own) AS own, sum(held) AS held
FROM (
    SELECT from_account AS account, currency,
           CASE WHEN batch_status = 'committed' THEN -(amount::HUGEINT) ELSE 0 END AS own,
           CASE WHEN batch_status = 'held' THEN amount::HUGEINT ELSE 0 END AS held
    FROM ledger_postings
    UNION ALL
    SELECT to_account, currency, amount::HUGEINT, 0
    FROM ledger_postings
    WHERE batch_status = 'committed'
)
GROUP BY account, currency
"""

ACCOUNT_BALANCES = f"""
SELECT account, currency,
       TRY_CAST(own AS BIGINT) AS own,
       TRY_CAST(held AS BIGINT) AS held,
       TRY_CAST(own - held AS BIGINT) AS available
FROM ({ACCOUNT_SUMS})
"""

TRADER_RATINGS = f"""
SELECT
    aggregate_id AS trader_id,
    seq,
    j.as_of::TIMESTAMPTZ AS as_of,
    j.window_days,
    j.assignments,
    j.completed,
    j.on_time,
    j.disputed,
    j.score::DECIMAL(18, 6) AS score,  -- exact for catalog values (see the module docstring)
    occurred_at AS published_at,
    event_id
FROM (
    SELECT aggregate_id, seq, occurred_at, event_id, json_transform(payload, '{_RATING_FIELDS}') AS j
    FROM ev
    WHERE stream = 'trader_rating'
)
"""

#: ``trader_holds`` (state of the incremental apply): the last hold event of each trader and ref,
#: read as the traders projection reads it.
TRADER_HOLDS = """
SELECT aggregate_id AS trader_id, j.ref AS ref,
       arg_max(kind, ord) AS last_kind,
       arg_max_null(j.amount, ord) AS amount
FROM (
    SELECT aggregate_id, ord, kind,
           json_transform(payload, '{"ref": "VARCHAR", "amount": "BIGINT"}') AS j
    FROM ev
    WHERE stream = 'trader'
        AND kind IN ('trader.hold_placed', 'trader.hold_released', 'trader.hold_captured')
)
GROUP BY aggregate_id, j.ref
"""

SQL: dict[str, str] = {
    "clients": CLIENTS,
    "traders": TRADERS,
    "receipts": RECEIPTS,
    "payouts": PAYOUTS,
    "ledger_plans": LEDGER_PLANS,
    "ledger_postings": LEDGER_POSTINGS,
    "account_balances": ACCOUNT_BALANCES,
    "trader_ratings": TRADER_RATINGS,
}
