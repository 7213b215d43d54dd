"""Decoding (catalog section 1 and the payload tables of section 3): every kind and version,
the two upcasters, and a typed :class:`DecodingError` for every way a row can be wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.domain import catalog
from workbench.domain.catalog import DecodingError, decode, decode_payload, try_decode
from workbench.domain.events import ENVELOPE_FIELDS, Event

TS = "2026-11-01T10:15:00Z"
TS_DT = datetime(2026, 11, 1, 10, 15, tzinfo=UTC)

#: One valid catalog payload per (kind, schema_version), written from the catalog's tables.
EXAMPLES: dict[tuple[str, int], dict[str, Any]] = {
    ("client.registered", 1): {"name": "Merchant", "settlement_currency": "USDT", "fee_bps": 150},
    ("client.fee_changed", 1): {"fee_bps": 120},
    ("trader.registered", 1): {
        "name": "Trader 1",
        "fiat_currency": "RUB",
        "settlement_currency": "USDT",
        "min_amount": 100_00,
        "max_amount": 100_000_00,
        "max_active_orders": 3,
        "reward_bps": 50,
    },
    ("trader.registered", 2): {
        "name": "Trader 2",
        "fiat_currency": "KZT",
        "settlement_currency": "USDT",
        "limits": {"min_amount": 1_000_00, "max_amount": 500_000_00, "max_active_orders": 2},
        "reward_bps": 70,
        "country": "KZ",
    },
    ("trader.limits_changed", 1): {"min_amount": 1, "max_amount": 2, "max_active_orders": 3},
    ("trader.went_online", 1): {},
    ("trader.went_offline", 1): {},
    ("trader.blocked", 1): {"reason": "fraud suspicion"},
    ("trader.unblocked", 1): {},
    ("trader.deposit_topped_up", 1): {"ref": "topup:tu-1", "amount": 1_000_000_000},
    ("trader.hold_placed", 1): {"ref": "order:po-1:1", "amount": 995_000_000},
    ("trader.hold_released", 1): {"ref": "order:po-1:1", "amount": 995_000_000},
    ("trader.hold_captured", 1): {"ref": "order:po-1:1", "amount": 995_000_000},
    ("trader.deposit_credited", 1): {"ref": "reverse:order:po-1", "amount": 995_000_000},
    ("trader.deposit_debited", 1): {"ref": "reverse:order:po-2", "amount": 1_005_000_000},
    ("payment_order.created", 1): {
        "client_id": "cl-1",
        "direction": "payin",
        "amount": 92_350_00,
        "currency": "RUB",
        "client_ref": "INV-1",
        "expires_at": TS,
    },
    ("payment_order.created", 2): {
        "client_id": "cl-1",
        "direction": "payout",
        "money": {"amount": 92_350_00, "currency": "RUB"},
        "client_ref": "INV-2",
        "expires_at": TS,
        "channel": "sbp",
    },
    ("payment_order.assigned", 1): {
        "trader_id": "tr-1",
        "attempt": 1,
        "rate": "92.35",
        "settlement_currency": "USDT",
        "settlement_amount": 1_000_000_000,
        "platform_fee": 15_000_000,
        "trader_reward": 5_000_000,
        "accept_by": TS,
    },
    ("payment_order.accepted", 1): {"trader_id": "tr-1", "complete_by": TS},
    ("payment_order.assignment_declined", 1): {"trader_id": "tr-1", "reason": "busy"},
    ("payment_order.assignment_expired", 1): {"trader_id": "tr-1"},
    ("payment_order.receipt_attached", 1): {"receipt_id": "rc-1"},
    ("payment_order.review_started", 1): {"reason": "low_confidence"},
    ("payment_order.completed", 1): {"trader_id": "tr-1", "paid_amount": 92_350_00},
    ("payment_order.cancelled", 1): {"reason": "no_trader"},
    ("payment_order.disputed", 1): {"reason": "not received"},
    ("payment_order.dispute_resolved", 1): {"outcome": "reversed", "note": "refund"},
    ("receipt.uploaded", 1): {
        "order_id": "po-1",
        "trader_id": "tr-1",
        "amount": 92_350_00,
        "currency": "RUB",
        "paid_at": TS,
        "bank": "Bank",
        "file_sha256": "ab" * 32,
    },
    ("receipt.analyzed", 1): {
        "extracted_amount": None,
        "extracted_paid_at": None,
        "confidence": 0.8,
        "flags": ["blurry", "cropped"],
    },
    ("receipt.approved", 1): {"by": "reviewer"},
    ("receipt.rejected", 1): {"reason": "forged"},
    ("payout.created", 1): {
        "owner": "trader:tr-1",
        "amount": 500_000_000,
        "fee": 1_000_000,
        "currency": "USDT",
        "destination_masked": "TRC20:T***1",
        "plan_id": "payout:pay-1",
    },
    ("payout.paid", 1): {"bank_ref": "BR-1"},
    ("payout.confirmed", 1): {},
    ("payout.cancelled", 1): {"details": "owner request"},
    ("payout.failed", 1): {"error": "bank down"},
    ("ledger_plan.batch_held", 1): {
        "batch_id": 7,
        "postings": [
            {
                "from": "trader:tr-1",
                "to": "client:cl-1",
                "amount": 985_000_000,
                "currency": "USDT",
                "description": "payin",
            },
            {
                "from": "trader:tr-1",
                "to": "platform:revenue",
                "amount": 10_000_000,
                "currency": "USDT",
                "description": "fee",
            },
        ],
    },
    ("ledger_plan.committed", 1): {"batch_ids": [7, 8]},
    ("ledger_plan.rolled_back", 1): {"batch_ids": [7]},
    ("trader_rating.published", 1): {
        "as_of": TS,
        "window_days": 7,
        "assignments": 10,
        "completed": 8,
        "on_time": 7,
        "disputed": 1,
        "score": 62.35,
    },
}

#: What a v1 payload must look like once upcast to v2 (catalog 3.2 and 3.3).
UPCAST_V2: dict[tuple[str, int], dict[str, Any]] = {
    ("trader.registered", 1): {
        "name": "Trader 1",
        "fiat_currency": "RUB",
        "settlement_currency": "USDT",
        "limits": {"min_amount": 100_00, "max_amount": 100_000_00, "max_active_orders": 3},
        "reward_bps": 50,
        "country": None,
    },
    ("payment_order.created", 1): {
        "client_id": "cl-1",
        "direction": "payin",
        "money": {"amount": 92_350_00, "currency": "RUB"},
        "client_ref": "INV-1",
        "expires_at": TS,
        "channel": "card",
    },
}

ALL_VERSIONS = sorted(catalog.PAYLOADS)


def newest(kind: str) -> int:
    return max(v for k, v in catalog.PAYLOADS if k == kind)


def as_json_value(payload: Any) -> Any:
    """A decoded payload as plain JSON values (what the catalog example was written as)."""
    return json.loads(payload.to_json())


def row(
    kind: str = "trader.deposit_topped_up",
    version: int = 1,
    payload: Any = None,
    **envelope: Any,
) -> dict[str, Any]:
    """A valid envelope row around ``payload`` (the example of the kind by default)."""
    if payload is None:
        payload = EXAMPLES[(kind, version)]
    stream = kind.split(".", 1)[0]
    raw: dict[str, Any] = {
        "event_id": "11111111-2222-4333-8444-555555555555",
        "position": 42,
        "stream": stream,
        "aggregate_id": "agg-1",
        "seq": 3,
        "kind": kind,
        "schema_version": version,
        "occurred_at": datetime(2026, 11, 1, 10, 0, tzinfo=UTC),
        "recorded_at": datetime(2026, 11, 1, 10, 0, 1, tzinfo=UTC),
        "correlation_id": "order:po-1",
        "causation_id": None,
        "payload": payload if isinstance(payload, str) else json.dumps(payload),
    }
    raw.update(envelope)
    return raw


# ------------------------------------------------------------------------ every kind decodes
def test_examples_cover_exactly_the_catalog() -> None:
    assert set(EXAMPLES) == set(catalog.PAYLOADS)


@pytest.mark.parametrize(("kind", "version"), ALL_VERSIONS)
def test_every_kind_and_version_decodes(kind: str, version: int) -> None:
    example = EXAMPLES[(kind, version)]  # a kind added without an example fails here
    event = decode(row(kind, version))
    latest_cls = catalog.PAYLOADS[(kind, newest(kind))]
    assert type(event.payload) is latest_cls
    assert kind == event.payload.KIND
    assert newest(kind) == event.payload.VERSION
    # the envelope is kept verbatim, including the version the platform wrote
    assert event.kind == kind
    assert event.schema_version == version
    assert event.stream == kind.split(".")[0]
    assert (event.event_id, event.position, event.aggregate_id, event.seq) == (
        "11111111-2222-4333-8444-555555555555",
        42,
        "agg-1",
        3,
    )
    assert event.correlation_id == "order:po-1"
    assert event.causation_id is None
    expected = UPCAST_V2.get((kind, version), example)
    assert as_json_value(event.payload) == expected


@pytest.mark.parametrize(("kind", "version"), ALL_VERSIONS)
def test_decode_payload_without_upcast_uses_the_versions_model(kind: str, version: int) -> None:
    model = catalog.PAYLOADS[(kind, version)]
    parsed = model.model_validate_json(json.dumps(EXAMPLES[(kind, version)]), strict=True)
    assert catalog.upcast(parsed) == decode_payload(
        kind, version, json.dumps(EXAMPLES[(kind, version)])
    )


def test_payload_that_is_not_text_is_refused_not_converted() -> None:
    """The catalog's payload is a JSON string: an object (a Parquet struct), bytes or a number
    is refused, never turned into text (the live stream hands over its object's exact text)."""
    ex = EXAMPLES[("payment_order.assigned", 1)]
    for value in (ex, json.dumps(ex).encode(), 7):
        expect_error(
            row("payment_order.assigned", 1) | {"payload": value}, "bad_envelope", "payload"
        )


def test_string_timestamps_in_envelope_decode_as_utc_on_the_stream_only() -> None:
    raw = row(occurred_at="2026-11-01T10:00:00Z", recorded_at="2026-11-01T10:00:00.5Z")
    event = decode(raw, text_times=True)
    assert event.occurred_at == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert event.recorded_at == datetime(2026, 11, 1, 10, 0, 0, 500_000, tzinfo=UTC)
    # an export's timestamp column holds timestamps: a string there is refused, not parsed
    expect_error(raw, "bad_envelope", "occurred_at")
    # and on the stream, only RFC 3339 (not every ISO 8601 form Python would take)
    with pytest.raises(DecodingError):
        decode(row(occurred_at="20261101T100000Z"), text_times=True)


def test_upcast_trader_registered_v1() -> None:
    event = decode(row("trader.registered", 1))
    p = event.payload
    assert type(p) is catalog.PAYLOADS[("trader.registered", 2)]
    assert p.country is None  # type: ignore[attr-defined]
    assert (p.limits.min_amount, p.limits.max_amount, p.limits.max_active_orders) == (  # type: ignore[attr-defined]
        100_00,
        100_000_00,
        3,
    )
    assert p.reward_bps == 50  # type: ignore[attr-defined]
    assert event.schema_version == 1


def test_upcast_payment_order_created_v1() -> None:
    event = decode(row("payment_order.created", 1))
    p = event.payload
    assert type(p) is catalog.PAYLOADS[("payment_order.created", 2)]
    assert p.channel == "card"  # type: ignore[attr-defined]
    assert (p.money.amount, p.money.currency) == (92_350_00, "RUB")  # type: ignore[attr-defined]
    assert p.expires_at == TS_DT  # type: ignore[attr-defined]
    assert event.schema_version == 1


def test_upcasters_registry_is_the_two_catalog_upcasts() -> None:
    assert set(catalog.UPCASTERS) == {("trader.registered", 1), ("payment_order.created", 1)}
    for kind, version in catalog.UPCASTERS:
        old = catalog.PAYLOADS[(kind, version)].model_validate_json(
            json.dumps(EXAMPLES[(kind, version)]), strict=True
        )
        lifted = catalog.upcast(old)
        assert version + 1 == lifted.VERSION
        assert as_json_value(lifted) == UPCAST_V2[(kind, version)]


def test_upcast_event_keeps_envelope_and_lifts_payload() -> None:
    v1 = catalog.PAYLOADS[("payment_order.created", 1)].model_validate_json(
        json.dumps(EXAMPLES[("payment_order.created", 1)]), strict=True
    )
    ev = Event(
        "e-1",
        1,
        "payment_order",
        "po-1",
        1,
        "payment_order.created",
        1,
        TS_DT,
        TS_DT,
        None,
        None,
        v1,
    )
    lifted = catalog.upcast_event(ev)
    assert lifted.payload.VERSION == 2
    assert lifted.schema_version == 1
    assert (lifted.event_id, lifted.aggregate_id, lifted.seq) == ("e-1", "po-1", 1)
    same = catalog.upcast_event(lifted)
    assert same is lifted


# ------------------------------------------------------------------------ decoding errors
def expect_error(raw: Any, reason: str, field: str) -> DecodingError:
    with pytest.raises(DecodingError) as info:
        decode(raw)
    err = info.value
    assert err.reason == reason, str(err)
    assert err.reason in catalog.REASONS
    assert err.field == field, str(err)
    if isinstance(raw, dict) and isinstance(raw.get("event_id"), str):
        assert err.event_id == raw["event_id"]
        assert raw["event_id"] in str(err)
    assert field in str(err)
    # try_decode returns the same kind of error instead of raising
    got = try_decode(raw)
    assert isinstance(got, DecodingError)
    assert (got.reason, got.field) == (reason, field)
    return err


def test_unknown_kind() -> None:
    err = expect_error(
        row("client.registered") | {"kind": "client.exploded"}, "unknown_kind", "kind"
    )
    assert err.kind == "client.exploded"


def test_unknown_version() -> None:
    err = expect_error(
        row("client.registered") | {"schema_version": 3}, "unknown_version", "schema_version"
    )
    assert err.version == 3
    expect_error(
        row("trader.registered", 1) | {"schema_version": 7}, "unknown_version", "schema_version"
    )


def test_missing_payload_field() -> None:
    payload = dict(EXAMPLES[("trader.deposit_topped_up", 1)])
    del payload["amount"]
    expect_error(row(payload=payload), "missing_field", "payload.amount")


def test_missing_nested_payload_field() -> None:
    payload = json.loads(json.dumps(EXAMPLES[("trader.registered", 2)]))
    del payload["limits"]["max_amount"]
    expect_error(
        row("trader.registered", 2, payload=payload), "missing_field", "payload.limits.max_amount"
    )


def test_missing_posting_from_uses_the_catalog_name() -> None:
    payload = json.loads(json.dumps(EXAMPLES[("ledger_plan.batch_held", 1)]))
    del payload["postings"][1]["from"]
    expect_error(
        row("ledger_plan.batch_held", payload=payload), "missing_field", "payload.postings.1.from"
    )


@pytest.mark.parametrize(
    ("kind", "field", "bad"),
    [
        ("trader.deposit_topped_up", "amount", "100"),  # a string for an int amount
        ("trader.deposit_topped_up", "amount", 1.0),  # a float for an int
        ("trader.deposit_topped_up", "amount", True),  # a bool is not an amount
        ("client.registered", "fee_bps", 150.0),
        ("payment_order.assigned", "rate", 92.35),  # a number for the rate string
        ("payment_order.assigned", "settlement_amount", "1000"),
        ("payment_order.completed", "paid_amount", 1.5),
        ("trader_rating.published", "window_days", 7.0),
        ("receipt.analyzed", "flags", "blurry"),
        ("ledger_plan.committed", "batch_ids", [1, "2"]),
    ],
)
def test_mistyped_field(kind: str, field: str, bad: Any) -> None:
    payload = dict(EXAMPLES[(kind, 1)])
    payload[field] = bad
    err = expect_error(row(kind, 1, payload=payload), "wrong_type", err_field(field, bad))
    assert err.kind == kind


def err_field(field: str, bad: Any) -> str:
    """Pydantic points at the list element for a list of the wrong items."""
    if isinstance(bad, list):
        return f"payload.{field}.{next(i for i, v in enumerate(bad) if not isinstance(v, int))}"
    return f"payload.{field}"


@pytest.mark.parametrize(
    "text", ['{"ref": "x", "amount": ', "not json", "", "[1, 2]", "null", "42"]
)
def test_bad_json(text: str) -> None:
    expect_error(row(payload=text), "bad_json", "payload")


def test_bad_utf8_payload_bytes() -> None:
    expect_error(row() | {"payload": b"\xff\xfe{"}, "bad_envelope", "payload")


@pytest.mark.parametrize("ts", ["2026-11-01T13:15:00+03:00", "2026-11-01T10:15:00"])
@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("payment_order.assigned", "accept_by"),
        ("payment_order.accepted", "complete_by"),
        ("payment_order.created", "expires_at"),
        ("receipt.uploaded", "paid_at"),
        ("trader_rating.published", "as_of"),
    ],
)
def test_non_utc_payload_timestamp(kind: str, field: str, ts: str) -> None:
    version = 2 if kind == "payment_order.created" else 1
    payload = dict(EXAMPLES[(kind, version)]) | {field: ts}
    expect_error(row(kind, version, payload=payload), "invalid_value", f"payload.{field}")


def test_utc_payload_timestamp_with_plus_zero_offset_is_accepted() -> None:
    payload = dict(EXAMPLES[("payment_order.accepted", 1)]) | {
        "complete_by": "2026-11-01T10:15:00+00:00"
    }
    event = decode(row("payment_order.accepted", 1, payload=payload))
    assert event.payload.complete_by == TS_DT  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "version", "field"),
    [
        ("client.registered", 1, "settlement_currency"),
        ("trader.registered", 1, "fiat_currency"),
        ("payment_order.assigned", 1, "settlement_currency"),
        ("receipt.uploaded", 1, "currency"),
        ("payout.created", 1, "currency"),
    ],
)
def test_unknown_currency(kind: str, version: int, field: str) -> None:
    payload = dict(EXAMPLES[(kind, version)]) | {field: "XYZ"}
    expect_error(row(kind, version, payload=payload), "invalid_value", f"payload.{field}")


def test_unknown_currency_nested_money_and_posting() -> None:
    created = json.loads(json.dumps(EXAMPLES[("payment_order.created", 2)]))
    created["money"]["currency"] = "rub"
    expect_error(
        row("payment_order.created", 2, payload=created), "invalid_value", "payload.money.currency"
    )
    held = json.loads(json.dumps(EXAMPLES[("ledger_plan.batch_held", 1)]))
    held["postings"][0]["currency"] = "BTC"
    expect_error(
        row("ledger_plan.batch_held", payload=held), "invalid_value", "payload.postings.0.currency"
    )


@pytest.mark.parametrize("rate", ["0", "-1", "abc", "NaN", "Infinity", ""])
def test_invalid_rate_value(rate: str) -> None:
    payload = dict(EXAMPLES[("payment_order.assigned", 1)]) | {"rate": rate}
    expect_error(row("payment_order.assigned", payload=payload), "invalid_value", "payload.rate")


@pytest.mark.parametrize(
    ("kind", "field", "bad"),
    [
        ("payment_order.created", "direction", "sideways"),
        ("payment_order.review_started", "reason", "boredom"),
        ("payment_order.cancelled", "reason", "whim"),
        ("payment_order.dispute_resolved", "outcome", "maybe"),
        ("receipt.approved", "by", "robot"),
        ("receipt.analyzed", "confidence", 1.5),
        ("payout.created", "owner", "platform:revenue"),
    ],
)
def test_out_of_domain_value(kind: str, field: str, bad: Any) -> None:
    version = newest(kind)
    payload = dict(EXAMPLES[(kind, version)]) | {field: bad}
    expect_error(row(kind, version, payload=payload), "invalid_value", f"payload.{field}")


@pytest.mark.parametrize(
    "column", [f for f in ENVELOPE_FIELDS if f not in ("correlation_id", "causation_id")]
)
def test_missing_envelope_column(column: str) -> None:
    raw = row()
    del raw[column]
    expect_error(raw, "bad_envelope", column)


@pytest.mark.parametrize(
    ("column", "bad"),
    [
        ("position", "42"),
        ("seq", 0),
        ("seq", 1.0),
        ("schema_version", 0),
        ("schema_version", "1"),
        ("stream", "wallet"),
        ("aggregate_id", ""),
        ("aggregate_id", 5),
        ("occurred_at", "yesterday"),
        ("occurred_at", 1_700_000_000),
        ("correlation_id", 7),
    ],
)
def test_bad_envelope_value(column: str, bad: Any) -> None:
    expect_error(row() | {column: bad}, "bad_envelope", column)


def test_kind_of_another_stream() -> None:
    expect_error(row() | {"stream": "client"}, "bad_envelope", "kind")


def test_recorded_before_occurred_is_a_fact_not_a_decoding_error() -> None:
    """A clock that runs ahead is judged by the violations (CLOCK_SKEW), not quarantined."""
    raw = row(
        occurred_at=datetime(2026, 11, 1, 10, 0, 1, tzinfo=UTC),
        recorded_at=datetime(2026, 11, 1, 10, 0, 0, 999_999, tzinfo=UTC),
    )
    assert decode(raw).occurred_at > decode(raw).recorded_at


def test_recorded_equal_to_occurred_is_fine() -> None:
    at = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert decode(row(occurred_at=at, recorded_at=at)).recorded_at == at


@pytest.mark.parametrize(
    ("kind", "version", "extra"),
    [
        ("trader.deposit_topped_up", 1, "currency"),
        ("trader.went_online", 1, "since"),
        ("trader.registered", 2, "min_amount"),  # a v1 field in a v2 payload
        ("payment_order.created", 1, "channel"),  # a v2 field in a v1 payload
    ],
)
def test_unexpected_payload_field(kind: str, version: int, extra: str) -> None:
    payload = dict(EXAMPLES[(kind, version)]) | {extra: "x"}
    expect_error(row(kind, version, payload=payload), "unexpected_field", f"payload.{extra}")


def test_not_a_mapping() -> None:
    for junk in (None, 42, "event", [row()]):
        got = try_decode(junk)  # type: ignore[arg-type]
        assert isinstance(got, DecodingError)
        assert got.reason == "bad_envelope"
        with pytest.raises(DecodingError):
            decode(junk)  # type: ignore[arg-type]


# --------------------------------------------------------------- junk never crashes decoding
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
envelope_junk = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=12),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.floats(),
    st.binary(max_size=8),
)
kinds = st.sampled_from([*sorted(catalog.KINDS), "client.nope", "nope.nope", ""])


@st.composite
def junk_rows(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(kinds)
    version = draw(st.sampled_from([1, 2, 3, 0, -1]) | envelope_junk)
    payload = draw(
        st.one_of(
            json_values.map(json.dumps),
            st.dictionaries(st.text(max_size=10), json_values, max_size=6),
            st.text(max_size=30),
            st.binary(max_size=20),
            json_values,
            st.sampled_from([json.dumps(e) for e in EXAMPLES.values()]),
        )
    )
    raw: dict[str, Any] = row(kind if kind in catalog.KINDS else "client.registered", 1)
    raw.update(kind=kind, stream=kind.split(".")[0], schema_version=version, payload=payload)
    for name in draw(st.lists(st.sampled_from(ENVELOPE_FIELDS), max_size=3)):
        if draw(st.booleans()):
            raw.pop(name, None)
        else:
            raw[name] = draw(envelope_junk)
    return raw


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk_rows())
def test_decode_raises_only_decoding_error(raw: dict[str, Any]) -> None:
    try:
        event = decode(raw)
    except DecodingError as err:
        assert err.reason in catalog.REASONS
        assert isinstance(str(err), str)
    else:
        assert isinstance(event, Event)
        assert event.recorded_at >= event.occurred_at


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.text(max_size=12), json_values | envelope_junk, max_size=14)
    | st.builds(dict)
)
def test_try_decode_never_raises_on_arbitrary_dicts(raw: dict[str, Any]) -> None:
    got = try_decode(raw)
    assert isinstance(got, Event | DecodingError)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(ALL_VERSIONS), st.text(max_size=60) | json_values.map(json.dumps))
def test_try_decode_never_raises_on_junk_payload_text(kv: tuple[str, int], text: str) -> None:
    kind, version = kv
    got = try_decode(row(kind, version, payload=text))
    assert isinstance(got, Event | DecodingError)
    if isinstance(got, DecodingError):
        assert got.reason in catalog.REASONS
        assert got.event_id == "11111111-2222-4333-8444-555555555555"
        assert got.field is not None and got.field.startswith("payload")


def test_decimal_fields_are_exact() -> None:
    rating = decode(row("trader_rating.published", 1))
    assert rating.payload.score == Decimal("62.35")  # type: ignore[attr-defined]
    analyzed = decode(row("receipt.analyzed", 1))
    assert analyzed.payload.confidence == Decimal("0.8")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("occurred_at", "0001-01-01T00:00:00+01:00"),
        ("recorded_at", "9999-12-31T23:59:59-01:00"),
        ("occurred_at", datetime.min.replace(tzinfo=timezone(timedelta(hours=1)))),
    ],
)
def test_envelope_timestamp_out_of_range_in_utc(column: str, value: Any) -> None:
    """A timestamp whose UTC conversion leaves the calendar is out of range, not a crash."""
    with pytest.raises(DecodingError) as info:
        decode(row() | {column: value}, text_times=True)
    assert (info.value.reason, info.value.field) == ("out_of_range", column)


# ------------------------------------------------- JSON numbers are exact and must be numbers
def test_confidence_as_string_is_wrong_type() -> None:
    payload = dict(EXAMPLES[("receipt.analyzed", 1)]) | {"confidence": "0.8"}
    expect_error(row("receipt.analyzed", payload=payload), "wrong_type", "payload.confidence")


def test_score_digits_are_kept_or_refused_never_rounded() -> None:
    """A score is kept exactly as DECIMAL(18,6): six places survive beyond a float's precision
    (15 significant digits), a seventh place is refused (it would be rounded in the column)."""
    example = json.dumps(EXAMPLES[("trader_rating.published", 1)])
    event = decode(
        row("trader_rating.published", payload=example.replace("62.35", "123456789.123456"))
    )
    assert event.payload.score == Decimal("123456789.123456")  # type: ignore[attr-defined]
    for bad in ("62.345678901234567891", "62.3456785", "1234567890", "1e400"):
        expect_error(
            row("trader_rating.published", payload=example.replace("62.35", bad)),
            "out_of_range",
            "payload.score",
        )


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_payload_integers_are_int64_or_out_of_range(n: int) -> None:
    """No integer is wrapped, zeroed or rounded: inside int64 it is kept, past it refused."""
    raw = row("trader.limits_changed", 1) | {
        "payload": json.dumps({"min_amount": n, "max_amount": 1, "max_active_orders": 1})
    }
    if -(2**63) <= n < 2**63:
        assert decode(raw).payload.min_amount == n  # type: ignore[attr-defined]
    else:
        expect_error(raw, "out_of_range", "payload.min_amount")


@given(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["position", "seq", "schema_version"]),
)
def test_envelope_integers_keep_their_catalog_types(n: int, column: str) -> None:
    bits = {"position": 64, "seq": 32, "schema_version": 16}[column]
    lowest = 0 if column == "position" else 1
    raw = row() | {column: n}
    if lowest <= n < 2 ** (bits - 1):
        if column == "schema_version" and n != 1:
            expect_error(raw, "unknown_version", "schema_version")  # in range, not in the catalog
        else:
            assert getattr(decode(raw), column) == n
    elif -(2 ** (bits - 1)) <= n < lowest:
        expect_error(raw, "bad_envelope", column)
    else:
        expect_error(raw, "out_of_range", column)
    expect_error(row() | {column: n + 0.5}, "bad_envelope", column)  # never rounded
