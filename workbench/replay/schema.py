"""The replay database: every table, its columns and what they mean, declared once.

The DuckDB DDL, ``docs/projections.md`` and the row builders of both replay paths (the
per-event fold and the columnar SQL) all follow this module, so a column cannot mean two things.
Rows of a projection are identified by ``key``; ``hash_order`` fixes the order in which a
projection's content hash is computed, so the hash does not depend on input row order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..domain.clock import ERA_END, ERA_START, SKEW_TOLERANCE
from ..domain.events import STREAMS
from .payload_types import PAYLOAD_ENVELOPE, payload_columns


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    projection: bool = True  # False: bookkeeping tables (events, quarantine, runs), not hashed

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def column_list(self) -> str:
        """The columns by name, quoted, for an insert that names them (a column a later
        workbench added is last in an older database's table, not where the schema lists it)."""
        return ", ".join(f'"{c}"' for c in self.column_names)

    def ddl(self) -> str:
        cols = ",\n    ".join(f'"{c.name}" {c.type}' for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {cols}\n)"


def C(name: str, type_: str, doc: str) -> Column:
    return Column(name, type_, doc)


TS = "TIMESTAMPTZ"
MONEY = "BIGINT"

EVENTS = Table(
    "events",
    "Every event applied, exactly as the platform wrote it (payload as JSON text). Drill down by "
    "`event_id`; `source` is the file it was first read from.",
    (
        C("event_id", "VARCHAR", "unique id of the event"),
        C("position", "BIGINT", "global position in the platform's log"),
        C("stream", "VARCHAR", "aggregate type"),
        C("aggregate_id", "VARCHAR", "id within the stream"),
        C("seq", "INTEGER", "1-based position within the aggregate"),
        C("kind", "VARCHAR", "`<stream>.<name>`"),
        C("schema_version", "SMALLINT", "payload version as written (before upcasting)"),
        C("occurred_at", TS, "business time"),
        C("recorded_at", TS, "when the platform's event store wrote it"),
        C("correlation_id", "VARCHAR", "business process, e.g. `order:<id>`"),
        C("causation_id", "VARCHAR", "event that caused this one"),
        C("payload", "VARCHAR", "payload JSON as written"),
        C("source", "VARCHAR", "file the event was read from"),
    ),
    ("event_id",),
    projection=False,
)

QUARANTINE = Table(
    "quarantine",
    "Rows that could not be decoded, with the raw row and the reason. Nothing is dropped: "
    "events read = applied + duplicates skipped + conflicting duplicates + quarantined.",
    (
        C("event_id", "VARCHAR", "the row's event_id, if it had a readable one"),
        C("position", "BIGINT", "the row's position, if readable"),
        C("stream", "VARCHAR", "the row's stream, if readable"),
        C("aggregate_id", "VARCHAR", "the row's aggregate_id, if readable"),
        C("kind", "VARCHAR", "the row's kind, if readable"),
        C("schema_version", "SMALLINT", "the row's schema_version, if readable"),
        C(
            "reason",
            "VARCHAR",
            "bad_envelope, bad_json, unknown_kind, unknown_version, missing_field, wrong_type, invalid_value, unexpected_field, out_of_range (an integer past its catalog type), too_large (payload over the size limit), conflicting_duplicate",
        ),
        C("field", "VARCHAR", "the field at fault, e.g. `payload.amount`"),
        C("error", "VARCHAR", "the decoding error, naming the event and the field"),
        C("raw", "VARCHAR", "the whole row as JSON"),
        C("source", "VARCHAR", "file the row was read from"),
        C("run_id", "BIGINT", "replay run that read it"),
    ),
    ("event_id", "source", "raw"),
    projection=False,
)

VIOLATIONS = Table(
    "violations",
    "Rules the input broke, each naming the event that broke it: conflicting duplicates, "
    "sequence gaps, transitions the catalog's state machines do not allow, plan mismatches, "
    "negative available balances, implausible clocks (`CLOCK_SKEW`: `occurred_at` more than "
    f"{int(SKEW_TOLERANCE.total_seconds())} s after `recorded_at`, or a timestamp outside "
    f"{ERA_START:%Y-%m-%d}..{ERA_END:%Y-%m-%d} UTC) and money sums "
    "past int64 (`AMOUNT_OVERFLOW`: the event after which a trader's deposit figures or an "
    "account's balance first left the int64 range, with the exact values). Violating events are "
    "still applied (they are facts).",
    (
        C("code", "VARCHAR", "the audit check code"),
        C("event_id", "VARCHAR", "the offending event"),
        C("subject", "VARCHAR", "`stream:aggregate_id` or the account"),
        C("detail", "VARCHAR", "what is wrong, with the numbers"),
    ),
    ("code", "event_id", "subject", "detail"),
)

CLIENTS = Table(
    "clients",
    "Merchants (catalog 3.1).",
    (
        C("client_id", "VARCHAR", "client id"),
        C("registered", "BOOLEAN", "a `client.registered` was applied"),
        C("name", "VARCHAR", "name"),
        C("settlement_currency", "VARCHAR", "currency of the client's balance"),
        C("fee_bps", "INTEGER", "platform fee in basis points, as now"),
        C("registered_at", TS, "time of registration"),
        C("updated_at", TS, "time of the last event"),
        C("version", "INTEGER", "last `seq` applied"),
    ),
    ("client_id",),
)

TRADERS = Table(
    "traders",
    "Traders (catalog 3.2): limits, presence, blocking and the deposit as the trader service "
    "sees it (`available = deposit_balance - held`), plus their active orders.",
    (
        C("trader_id", "VARCHAR", "trader id"),
        C("registered", "BOOLEAN", "a `trader.registered` was applied"),
        C("name", "VARCHAR", "name"),
        C("fiat_currency", "VARCHAR", "currency the trader moves"),
        C("settlement_currency", "VARCHAR", "currency of the deposit"),
        C("country", "VARCHAR", "ISO 3166 alpha-2 (null for v1 registrations)"),
        C("min_amount", MONEY, "smallest order amount, fiat minor units"),
        C("max_amount", MONEY, "largest order amount, fiat minor units"),
        C("max_active_orders", "INTEGER", "cap on orders assigned, in progress or in review"),
        C("reward_bps", "INTEGER", "trader reward in basis points"),
        C("status", "VARCHAR", "`active` or `blocked`"),
        C("online", "BOOLEAN", "last presence event was `went_online`"),
        C(
            "deposit_balance",
            MONEY,
            "deposit balance, settlement minor units (null if past int64: `AMOUNT_OVERFLOW`)",
        ),
        C("held", MONEY, "sum of open holds (null if past int64)"),
        C("available", MONEY, "`deposit_balance - held` (null if past int64)"),
        C("open_holds", "INTEGER", "number of open holds"),
        C(
            "active_orders",
            "INTEGER",
            "orders now assigned, in progress or in review with this trader",
        ),
        C("registered_at", TS, "time of registration"),
        C("updated_at", TS, "time of the last trader event"),
        C("version", "INTEGER", "last `seq` applied"),
    ),
    ("trader_id",),
)

PAYMENT_ORDERS = Table(
    "payment_orders",
    "Payment orders (catalog 3.3), everything the platform's payment-order projection shows. "
    "Attempt fields are those of the latest attempt.",
    (
        C("order_id", "VARCHAR", "order id"),
        C("client_id", "VARCHAR", "client"),
        C("direction", "VARCHAR", "`payin` or `payout`"),
        C("amount", MONEY, "fiat amount, minor units"),
        C("currency", "VARCHAR", "fiat currency"),
        C("client_ref", "VARCHAR", "client's reference"),
        C("channel", "VARCHAR", "`card` or `sbp` (v1 orders: card)"),
        C(
            "status",
            "VARCHAR",
            "pending, assigned, in_progress, in_review, completed, cancelled, disputed",
        ),
        C("attempts", "INTEGER", "number of assignment attempts"),
        C("attempt", "INTEGER", "latest attempt number"),
        C("trader_id", "VARCHAR", "trader of the latest attempt"),
        C(
            "rate",
            "VARCHAR",
            "rate of the latest attempt (decimal string, fiat per settlement unit)",
        ),
        C("settlement_currency", "VARCHAR", "settlement currency"),
        C("settlement_amount", MONEY, "settlement amount, minor units"),
        C("platform_fee", MONEY, "platform fee, settlement minor units"),
        C("trader_reward", MONEY, "trader reward, settlement minor units"),
        C("expires_at", TS, "when the order expires if not taken"),
        C("accept_by", TS, "deadline to accept the latest assignment"),
        C("complete_by", TS, "deadline to complete after acceptance"),
        C("created_at", TS, "creation time"),
        C("assigned_at", TS, "latest assignment time"),
        C("accepted_at", TS, "acceptance time of the latest attempt"),
        C("review_started_at", TS, "time the order went to review"),
        C("review_reason", "VARCHAR", "deadline, low_confidence, amount_mismatch, manual"),
        C("completed_at", TS, "completion time"),
        C("completed_by", "VARCHAR", "trader who completed"),
        C("paid_amount", MONEY, "fiat amount paid, as reported at completion"),
        C("cancelled_at", TS, "cancellation time"),
        C("cancel_reason", "VARCHAR", "client_request, expired, no_trader, review_rejected"),
        C("disputed_at", TS, "time of dispute"),
        C("dispute_reason", "VARCHAR", "reason given"),
        C("resolved_at", TS, "time the dispute was resolved"),
        C("dispute_outcome", "VARCHAR", "`upheld` or `reversed`"),
        C("receipt_ids", "VARCHAR[]", "receipts attached, in order"),
        C("updated_at", TS, "time of the last event"),
        C("version", "INTEGER", "last `seq` applied"),
    ),
    ("order_id",),
)

ORDER_ATTEMPTS = Table(
    "order_attempts",
    "One row per assignment attempt and how it ended.",
    (
        C("order_id", "VARCHAR", "order"),
        C("attempt", "INTEGER", "attempt number (1, 2, …)"),
        C("trader_id", "VARCHAR", "trader assigned"),
        C("rate", "VARCHAR", "rate at assignment"),
        C("settlement_currency", "VARCHAR", "settlement currency"),
        C("settlement_amount", MONEY, "settlement amount"),
        C("platform_fee", MONEY, "platform fee"),
        C("trader_reward", MONEY, "trader reward"),
        C("assigned_at", TS, "assignment time"),
        C("accept_by", TS, "acceptance deadline"),
        C("accepted_at", TS, "acceptance time (null if never accepted)"),
        C("complete_by", TS, "completion deadline (null if never accepted)"),
        C("ended_at", TS, "when the attempt ended (null while open)"),
        C(
            "outcome",
            "VARCHAR",
            "declined, expired, cancelled, completed, superseded; null while open",
        ),
        C("assigned_event_id", "VARCHAR", "the `payment_order.assigned` event"),
        C("assigned_pos", "BIGINT", "its position"),
        C(
            "accepted_event_id",
            "VARCHAR",
            "the `accepted` event of `accepted_at` (the latest while open; null if none)",
        ),
        C(
            "end_event_id",
            "VARCHAR",
            "the event that ended it: the first `assignment_declined`, `assignment_expired`, "
            "`cancelled` or `completed` after it, or the next `assigned` (null while open)",
        ),
        C("end_pos", "BIGINT", "its position"),
        C(
            "review_event_id",
            "VARCHAR",
            "the first `review_started` while it was open (null if none)",
        ),
        C("review_pos", "BIGINT", "its position"),
    ),
    ("order_id", "attempt", "assigned_event_id"),
)

ORDER_REVIEWS = Table(
    "order_reviews",
    "One row per stay of an order in review (catalog 4): the `review_started` that put it in "
    "`in_review` and the order's next event that set a status (a `receipt_attached` keeps it in "
    "review; a second `review_started` while in review starts nothing). REVIEW_SKIPPED and "
    "REVIEW_OVERDUE judge these, and the analysts' time-in-review reads them.",
    (
        C("order_id", "VARCHAR", "order"),
        C("reason", "VARCHAR", "why the review started (`review_started.reason`)"),
        C("start_event_id", "VARCHAR", "the `payment_order.review_started` event"),
        C("start_pos", "BIGINT", "its position"),
        C("started_at", TS, "its time"),
        C(
            "end_event_id",
            "VARCHAR",
            "the event that took the order out of review (null: still in it)",
        ),
        C("end_kind", "VARCHAR", "its kind (`payment_order.completed`, `.cancelled`, …)"),
        C("end_pos", "BIGINT", "its position"),
        C("ended_at", TS, "its time"),
    ),
    ("order_id", "start_event_id"),
)

RECEIPTS = Table(
    "receipts",
    "Receipts (catalog 3.4) and their analysis.",
    (
        C("receipt_id", "VARCHAR", "receipt id"),
        C("order_id", "VARCHAR", "order it proves"),
        C("trader_id", "VARCHAR", "trader who uploaded it"),
        C("amount", MONEY, "amount on the receipt, fiat minor units"),
        C("currency", "VARCHAR", "currency on the receipt"),
        C("paid_at", TS, "payment time on the receipt"),
        C("bank", "VARCHAR", "bank"),
        C("file_sha256", "VARCHAR", "hash of the uploaded file"),
        C("status", "VARCHAR", "uploaded, analyzed, approved, rejected"),
        C("uploaded_at", TS, "upload time"),
        C("extracted_amount", MONEY, "amount read by OCR (null if unreadable)"),
        C("extracted_paid_at", TS, "payment time read by OCR"),
        C("confidence", "DECIMAL(18,6)", "OCR confidence, 0..1"),
        C("flags", "VARCHAR[]", "analysis flags"),
        C("analyzed_at", TS, "analysis time"),
        C("approved_by", "VARCHAR", "`auto` or `reviewer`"),
        C("reject_reason", "VARCHAR", "why it was rejected"),
        C("decided_at", TS, "approval or rejection time"),
        C("version", "INTEGER", "last `seq` applied"),
    ),
    ("receipt_id",),
)

PAYOUTS = Table(
    "payouts",
    "Withdrawals of a client balance or a trader deposit (catalog 3.5).",
    (
        C("payout_id", "VARCHAR", "payout id"),
        C("owner", "VARCHAR", "`client:<id>` or `trader:<id>`"),
        C("amount", MONEY, "amount withdrawn, minor units"),
        C("fee", MONEY, "withdrawal fee"),
        C("currency", "VARCHAR", "currency"),
        C("destination_masked", "VARCHAR", "destination, masked"),
        C("plan_id", "VARCHAR", "ledger plan, `payout:<id>`"),
        C("status", "VARCHAR", "unpaid, paid, confirmed, cancelled, failed"),
        C("bank_ref", "VARCHAR", "bank reference once paid"),
        C("created_at", TS, "creation time"),
        C("paid_at", TS, "time marked paid"),
        C("confirmed_at", TS, "confirmation time"),
        C("ended_at", TS, "cancellation or failure time"),
        C(
            "cancelled_from",
            "VARCHAR",
            "status a cancel came from (`confirmed`: booked as a revert)",
        ),
        C("details", "VARCHAR", "cancel details or failure error"),
        C("version", "INTEGER", "last `seq` applied"),
    ),
    ("payout_id",),
)

LEDGER_PLANS = Table(
    "ledger_plans",
    "Ledger plans (catalog 3.6): held in batches, then committed or rolled back once.",
    (
        C(
            "plan_id",
            "VARCHAR",
            "plan id: `order:<id>:<attempt>`, `reverse:order:<id>`, `payout:<id>`, `revert:payout:<id>`, `topup:<id>`",
        ),
        C("status", "VARCHAR", "held, committed, rolled_back (the first ending)"),
        C("batches", "INTEGER", "batches held"),
        C("open_batches", "INTEGER", "batches still held (not ended)"),
        C("postings", "INTEGER", "postings held"),
        C("created_at", TS, "first batch held"),
        C("ended_at", TS, "first commit or rollback"),
        C("end_event_id", "VARCHAR", "the event that ended the plan"),
        C("version", "INTEGER", "last `seq` applied"),
    ),
    ("plan_id",),
)

LEDGER_POSTINGS = Table(
    "ledger_postings",
    "Every posting of every held batch and what became of its batch.",
    (
        C("plan_id", "VARCHAR", "plan"),
        C("batch_id", "BIGINT", "batch"),
        C("posting_index", "INTEGER", "0-based index within the batch"),
        C("from_account", "VARCHAR", "debited account"),
        C("to_account", "VARCHAR", "credited account"),
        C("amount", MONEY, "amount, minor units"),
        C("currency", "VARCHAR", "currency"),
        C("description", "VARCHAR", "description"),
        C("held_at", TS, "time the batch was held"),
        C("batch_status", "VARCHAR", "held, committed, rolled_back"),
        C("held_event_id", "VARCHAR", "the `ledger_plan.batch_held` event"),
    ),
    ("held_event_id", "posting_index"),
)

ACCOUNT_BALANCES = Table(
    "account_balances",
    "Ledger balances per account and currency: `own` = committed credits − committed debits, "
    "`held` = debits in batches still held, `available = own - held`.",
    (
        C(
            "account",
            "VARCHAR",
            "`client:<id>`, `trader:<id>`, `platform:revenue`, `external:<currency>`",
        ),
        C("currency", "VARCHAR", "currency"),
        C("own", MONEY, "committed balance (null if past int64: `AMOUNT_OVERFLOW`)"),
        C("held", MONEY, "debits held in open batches (null if past int64)"),
        C("available", MONEY, "`own - held` (null if past int64)"),
    ),
    ("account", "currency"),
)

TRADER_RATINGS = Table(
    "trader_ratings",
    "Every published rating (catalog 3.7), as published.",
    (
        C("trader_id", "VARCHAR", "trader"),
        C("seq", "INTEGER", "publication's seq in the rating stream"),
        C("as_of", TS, "end of the window"),
        C("window_days", "INTEGER", "window length"),
        C("assignments", "INTEGER", "assignments counted"),
        C("completed", "INTEGER", "completions counted"),
        C("on_time", "INTEGER", "completions on time"),
        C("disputed", "INTEGER", "disputes counted"),
        C("score", "DECIMAL(18,6)", "published score"),
        C("published_at", TS, "time of publication"),
        C("event_id", "VARCHAR", "the `trader_rating.published` event"),
    ),
    ("event_id",),
)

REPLAY_RUNS = Table(
    "replay_runs",
    "One row per replay run: what was read, what happened to it, and the projections' hashes.",
    (
        C("run_id", "BIGINT", "run number, 1, 2, …"),
        C("started_at", TS, "wall-clock start"),
        C("seconds", "DOUBLE", "duration"),
        C("code_version", "VARCHAR", "workbench version and a hash of its replay code"),
        C("mode", "VARCHAR", "`full` or `incremental` (exports), `stream` (the live stream)"),
        C(
            "sources",
            "VARCHAR",
            "JSON list of files read with their SHA-256, or of the stream read with the first "
            "and last message sequence",
        ),
        C("events_read", "BIGINT", "rows read"),
        C("applied", "BIGINT", "new events applied"),
        C(
            "duplicates",
            "BIGINT",
            "identical redeliveries skipped (including ones already in the database)",
        ),
        C(
            "conflicting",
            "BIGINT",
            "rows with a known event_id but other content (not applied; a violation)",
        ),
        C("quarantined", "BIGINT", "rows that could not be decoded"),
        C("total_events", "BIGINT", "events in the database after the run"),
        C("hashes", "VARCHAR", "JSON object: projection → content hash"),
    ),
    ("run_id",),
    projection=False,
)

TRADER_HOLDS = Table(
    "trader_holds",
    "State kept for the live stream's incremental apply (not a projection): per trader and hold "
    "`ref`, the last hold event (`trader.hold_placed`, `_released` or `_captured`). A trader's "
    "`held` and `open_holds` are the refs whose last event placed a hold; the next hold event "
    "of a ref is checked against it. Rebuilt by every full build.",
    (
        C("trader_id", "VARCHAR", "trader"),
        C("ref", "VARCHAR", "the hold's ref (the ledger plan booking the same money)"),
        C("last_kind", "VARCHAR", "kind of the ref's last hold event"),
        C("amount", MONEY, "amount of that event"),
    ),
    ("trader_id", "ref"),
    projection=False,
)

STREAM_POSITIONS = Table(
    "stream_positions",
    "Where the live stream stands: per stream instance, the last message sequence this database "
    "has taken in, committed in the same transaction as the events and projections of that "
    "message (so a restart resumes exactly after it), and what became of the messages "
    "(`messages = applied + duplicates + quarantined`, each message counted once).",
    (
        C("source", "VARCHAR", "bus and stream, e.g. `nats:PLATFORM_EVENTS`"),
        C("epoch", "VARCHAR", "the stream instance (JetStream: its creation time)"),
        C("partition_id", "VARCHAR", "partition of the stream (empty for JetStream)"),
        C("consumer", "VARCHAR", "the durable consumer this database reads with"),
        C("last_seq", "BIGINT", "last message sequence taken in (applied, skipped or quarantined)"),
        C("messages", "BIGINT", "messages taken in from this stream instance"),
        C("applied", "BIGINT", "of which new events applied"),
        C("duplicates", "BIGINT", "of which identical redeliveries of an event already stored"),
        C("quarantined", "BIGINT", "of which quarantined (undecodable or conflicting)"),
        C("updated_at", TS, "time of the last commit"),
        C("run_id", "BIGINT", "replay run of the last commit (`replay_runs`)"),
    ),
    ("source", "epoch", "partition_id"),
    projection=False,
)

POLICY_JUDGMENTS = Table(
    "policy_judgments",
    "POLICY_DEVIATION's judgments, made by the full build (not a projection: the audit's, stored "
    "so that it judges only the assignments after them). One row per assignment that broke no "
    "scheduler rule whose production-policy pick is another trader, or whose own trader fails "
    "its money rule at the formula's pricing; every other such assignment went to the pick. "
    "Exact up to `policy_judged`; an appended batch leaves them.",
    (
        C("event_id", "VARCHAR", "the `payment_order.assigned` event"),
        C("order_id", "VARCHAR", "order"),
        C("attempt", "INTEGER", "attempt number (1, 2, …)"),
        C("pos", "BIGINT", "the event's position"),
        C("trader_id", "VARCHAR", "trader assigned"),
        C("score", "DECIMAL(18,6)", "its latest published score then (55.00 before any)"),
        C("active", "BIGINT", "its active orders then"),
        C("rated_by", "VARCHAR", "the rating that gave its score (NULL: none yet)"),
        C("self_ok", "BOOLEAN", "it passes its money rule at the formula's pricing"),
        C("pick_id", "VARCHAR", "the policy's pick (NULL: nobody eligible)"),
        C("pick_score", "DECIMAL(18,6)", "the pick's score then"),
        C("pick_active", "BIGINT", "the pick's active orders then"),
        C("pick_rated_by", "VARCHAR", "the rating that gave the pick's score"),
    ),
    ("event_id",),
    projection=False,
)

POLICY_JUDGED = Table(
    "policy_judged",
    "How far `policy_judgments` reach: the last event of the log when the full build judged "
    "them. The audit judges only the assignments after it. One row; none where the log was "
    "empty, or where the fold wrote the projections (the audit then judges every assignment).",
    (
        C("position", "BIGINT", "the event's position"),
        C("event_id", "VARCHAR", "the event"),
        C(
            "judged_by",
            "VARCHAR",
            "fingerprint of the models that judged them (`workbench.models.fingerprint`): an "
            "audit whose models' differs judges every assignment",
        ),
    ),
    ("position", "event_id"),
    projection=False,
)

PROJECTIONS: Final[tuple[Table, ...]] = (
    CLIENTS,
    TRADERS,
    PAYMENT_ORDERS,
    ORDER_ATTEMPTS,
    ORDER_REVIEWS,
    RECEIPTS,
    PAYOUTS,
    LEDGER_PLANS,
    LEDGER_POSTINGS,
    ACCOUNT_BALANCES,
    TRADER_RATINGS,
    VIOLATIONS,
)


def _payload_table(stream: str) -> Table:
    """``payload_<stream>``: every event of ``stream`` in ``events`` with its payload decoded
    once into typed columns (see :mod:`.payload_types`, derived from the domain's models)."""
    envelope = {c.name: c for c in EVENTS.columns}
    return Table(
        f"payload_{stream}",
        f"Every `{stream}` event of `events`, its payload decoded once into typed columns (one "
        "per payload field of the stream's kinds, derived from the domain's payload models; "
        "the fields as written in the event's `schema_version`, not upcast: a field the kind "
        "does not have is NULL). Written with `events`, in the same transaction; the models, "
        "rules and checks read these columns, never the JSON text.",
        tuple(envelope[name] for name in PAYLOAD_ENVELOPE)
        + tuple(C(c.name, c.type, c.doc) for c in payload_columns(stream)),
        ("event_id",),
        projection=False,
    )


#: The typed payload tables, one per stream (``payload_trader``, …).
PAYLOAD_TABLES: Final[dict[str, Table]] = {stream: _payload_table(stream) for stream in STREAMS}

TABLES: Final[tuple[Table, ...]] = (
    EVENTS,
    *PAYLOAD_TABLES.values(),
    QUARANTINE,
    *PROJECTIONS,
    REPLAY_RUNS,
    STREAM_POSITIONS,
    TRADER_HOLDS,
    POLICY_JUDGMENTS,
    POLICY_JUDGED,
)
#: The audit's judgments the full build stores (:data:`POLICY_JUDGMENTS`, :data:`POLICY_JUDGED`).
JUDGED_BY_FULL_BUILD: Final[tuple[Table, ...]] = (POLICY_JUDGMENTS, POLICY_JUDGED)
BY_NAME: Final[dict[str, Table]] = {t.name: t for t in TABLES}


def markdown() -> str:
    """``docs/projections.md``, generated from the declarations above."""
    out = [
        "# Replay database",
        "",
        "Generated from `workbench/replay/schema.py` (a test keeps this file in sync). Money is in",
        "integer minor units of the row's currency; timestamps are UTC.",
        "",
    ]
    for t in TABLES:
        out += [
            f"## `{t.name}`",
            "",
            t.doc,
            "",
            f"Key: `{', '.join(t.key)}`.",
            "",
            "| column | type | meaning |",
            "|---|---|---|",
        ]
        out += [f"| `{c.name}` | {c.type} | {c.doc} |" for c in t.columns]
        out.append("")
    return "\n".join(out)
