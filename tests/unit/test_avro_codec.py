"""The Avro codec round-trips, reads older writer schemas, and rejects garbage."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from capi_stream.avro_codec import (
    SingleObjectCodec,
    build_codec,
    event_to_record,
    load_schema,
    schema_fingerprint,
)
from capi_stream.errors import DecodeError
from capi_stream.event import ConversionEvent

TENANT = uuid.UUID("11111111-2222-3333-4444-555555555555")


def make_event(**overrides: Any) -> ConversionEvent:
    fields: dict[str, Any] = {
        "event_name": "Purchase",
        "event_time": datetime(2026, 11, 28, 10, 30, 15, 123456, tzinfo=UTC),
        "action_source": "website",
        "event_source_url": "https://shop.example.com/thanks",
        "client_user_agent": "Mozilla/5.0",
        "user": {"emails": ["jane@example.com"], "phones": ["+1 555 0100"], "first_name": "Jane"},
        "attribution": {"fbclid": "IwAR2F4-dbP0l7", "fbp": "fb.1.1554763741205.1234567890"},
        "custom_data": {"value": Decimal("1234.567"), "currency": "kwd", "order_id": "pi_1"},
    }
    fields.update(overrides)
    return ConversionEvent.create(
        tenant_id=TENANT, source="stripe", source_event_id="pi_1", **fields
    )


def test_single_object_round_trip_is_exact() -> None:
    codec = build_codec()
    event = make_event()
    data = codec.encode(event)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == schema_fingerprint(load_schema())
    decoded = codec.decode(data)
    assert decoded == event
    assert decoded.custom_data.value == Decimal("1234.567")
    assert decoded.custom_data.currency == "KWD"
    assert decoded.event_time.microsecond == 123000


def test_event_id_is_deterministic_from_the_business_key() -> None:
    assert make_event().event_id == make_event(event_name="Purchase").event_id
    other = ConversionEvent.create(
        tenant_id=TENANT, source="stripe", source_event_id="pi_2",
        event_name="Purchase", event_time=datetime.now(UTC), action_source="other",
    )  # fmt: skip
    assert other.event_id != make_event().event_id


def test_data_written_under_an_older_schema_is_read_by_the_current_one() -> None:
    current = load_schema()
    older = copy.deepcopy(current)
    # The "older" schema lacks fields added later (with defaults), as evolution allows.
    older["fields"] = [f for f in older["fields"] if f["name"] not in ("messaging_channel",)]
    user = next(f for f in older["fields"] if f["name"] == "user")
    user["type"]["fields"] = [f for f in user["type"]["fields"] if f["name"] != "lead_id"]
    record = {
        "schema_version": 1,
        "event_id": "e-old",
        "tenant_id": str(TENANT),
        "contact_id": None,
        "source": "ghl",
        "source_event_id": "appt-1",
        "delivery_id": None,
        "event_name": "AddToCart",
        "event_time": datetime(2026, 11, 27, tzinfo=UTC),
        "action_source": "system_generated",
        "event_source_url": None,
        "client_user_agent": None,
        "client_ip_address": None,
        "user": {"emails": ["a@example.com"]},
    }
    codec = SingleObjectCodec(current, writer_schemas=[older])
    decoded = codec.decode(codec.encode_with(older, record))
    assert decoded.event_name == "AddToCart"
    assert decoded.messaging_channel is None
    assert decoded.user.lead_id is None
    assert decoded.user.emails == ["a@example.com"]

    reader_without_history = SingleObjectCodec(current)
    with pytest.raises(DecodeError, match="unknown writer schema fingerprint"):
        reader_without_history.decode(codec.encode_with(older, record))


@pytest.mark.parametrize(
    "garbage",
    [b"", b"hello world", b"\xc3\x01", b"\xc3\x01" + b"\x00" * 8 + b"\xff\xff", b'{"json": 1}'],
)
def test_garbage_raises_a_permanent_decode_error(garbage: bytes) -> None:
    with pytest.raises(DecodeError):
        build_codec().decode(garbage)


def test_truncated_body_with_a_known_fingerprint_is_a_decode_error() -> None:
    data = build_codec().encode(make_event())
    with pytest.raises(DecodeError):
        build_codec().decode(data[:20])


def test_confluent_wire_format_with_mock_registry() -> None:
    codec = build_codec(f"mock://{uuid.uuid4().hex}", topic="capi.events")
    event = make_event()
    data = codec.encode(event)
    assert data[0] == 0
    assert codec.decode(data) == event
    with pytest.raises(DecodeError):
        codec.decode(b"\x00\x00\x00\x03\xe7abc")
    with pytest.raises(DecodeError):
        codec.decode(build_codec().encode(event))


@pytest.mark.parametrize(
    "overrides",
    [
        {"user": {"emails": ["jane\x00@example.com"]}},
        {"event_name": "Purchase\x00"},
        {"custom_data": {"value": "1", "currency": "USD", "extra": {"note": "a\x00b"}}},
        {"attribution": {"fbp": "fb.1.1.\x00"}},
    ],
)
def test_nul_characters_never_enter_an_event(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="NUL"):
        make_event(**overrides)


def test_a_record_carrying_nul_is_a_permanent_decode_error() -> None:
    codec = SingleObjectCodec(load_schema())
    record = event_to_record(make_event())
    record["source_event_id"] = "pi\x00evil"  # written by a producer that skipped the model
    with pytest.raises(DecodeError, match="NUL"):
        codec.decode(codec.encode_with(load_schema(), record))
