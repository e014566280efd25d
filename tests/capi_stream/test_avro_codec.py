"""The Avro codec round-trips, reads older writer schemas, and rejects garbage."""

from __future__ import annotations

import copy
import decimal
import io
import uuid
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

import fastavro
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from capi_stream.avro.codec import (
    SINGLE_OBJECT_MARKER,
    SingleObjectCodec,
    build_codec,
    event_to_record,
    load_schema,
    schema_fingerprint,
)
from capi_stream.avro.compiled import compile_reader, compile_writer
from capi_stream.errors import DecodeError
from capi_stream.event import ConversionEvent, UserIdentity

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
        tenant_id=TENANT,
        source="stripe",
        source_event_id="pi_2",
        event_name="Purchase",
        event_time=datetime.now(UTC),
        action_source="other",
    )
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


# --- the compiled codec gives fastavro's bytes and records -----------------------------------

SCHEMA = load_schema()
PARSED = fastavro.parse_schema(SCHEMA)
WRITE = compile_writer(SCHEMA)
READ = compile_reader(SCHEMA)
CODEC = build_codec()
HEADER = SINGLE_OBJECT_MARKER + schema_fingerprint(SCHEMA)
ACCEPTED = (ValueError, OverflowError, decimal.InvalidOperation)  # the model's or quantize's


def fastavro_body(event: ConversionEvent) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, PARSED, event_to_record(event))
    return buffer.getvalue()


def fastavro_decode(data: bytes) -> ConversionEvent | type[DecodeError]:
    """What the codec returned before the compiled path: an event, or DecodeError."""
    try:
        record = fastavro.schemaless_reader(io.BytesIO(data[10:]), PARSED, PARSED)
        return ConversionEvent.model_validate(record)
    except Exception:
        return DecodeError


def assert_matches_fastavro(event: ConversionEvent) -> None:
    body = fastavro_body(event)
    assert WRITE(event) == body
    expected = cast(dict[str, Any], fastavro.schemaless_reader(io.BytesIO(body), PARSED, PARSED))
    expected["tenant_id"] = str(expected["tenant_id"])  # canonical uuid text stays str
    if expected["contact_id"] is not None:
        expected["contact_id"] = str(expected["contact_id"])
    assert READ(b"xy" + body, 2) == expected
    data = CODEC.encode(event)
    assert data == HEADER + body
    assert CODEC.decode(data) == fastavro_decode(data)  # click_time keeps only milliseconds


characters = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
text = st.text(characters, min_size=1, max_size=70).filter(str.strip)  # the model strips
texts = st.lists(text, max_size=4)
aware_times = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.timezones()
)
money = st.one_of(
    st.integers(0, 10**20 - 1).map(lambda n: Decimal(n).scaleb(-4)),
    st.integers(0, 10**16 - 1).map(Decimal),
    st.sampled_from([Decimal(0), Decimal("0.0000"), Decimal("9999999999999999.9999")]),
)


@st.composite
def events(draw: st.DrawFn) -> ConversionEvent:
    def maybe(strategy: st.SearchStrategy[Any]) -> Any:
        return draw(st.none() | strategy)

    user = {name: maybe(text) for name in ("first_name", "city", "zip", "lead_id", "ig_sid")}
    fields: dict[str, Any] = {
        "event_id": draw(text),
        "contact_id": maybe(st.uuids()),
        "delivery_id": maybe(text),
        "event_name": draw(text),
        "event_time": draw(aware_times),
        "action_source": draw(st.sampled_from(["website", "chat", "other"])),
        "event_source_url": maybe(st.text(characters, min_size=60, max_size=700).filter(str.strip)),
        "messaging_channel": maybe(st.sampled_from(["whatsapp", "instagram"])),
        "user": {"emails": draw(texts), "phones": draw(texts), **user},
        "source_ids": {"ghl_contact_id": maybe(text), "denefits_contract_code": maybe(text)},
        "attribution": {"fbc": maybe(text), "click_time": maybe(aware_times)},
        "custom_data": {
            "value": maybe(money),
            "currency": maybe(st.sampled_from(["usd", "EUR"])),
            "content_ids": draw(texts),
            "num_items": maybe(st.integers(0, 2**31 - 1)),
            "extra": draw(st.dictionaries(text, text, max_size=4)),
        },
    }
    try:
        return ConversionEvent.create(
            tenant_id=draw(st.uuids()),
            source=draw(st.sampled_from(["ghl", "api"])),
            source_event_id=draw(text),
            **fields,
        )
    except ACCEPTED:  # e.g. a blank string: the model refuses it, as it should
        assume(False)
        raise


@settings(max_examples=300, deadline=None)
@given(events())
def test_compiled_codec_matches_fastavro_on_varied_events(event: ConversionEvent) -> None:
    assert_matches_fastavro(event)


FULL_USER = dict.fromkeys(UserIdentity.model_fields, "Zoë 🙂 " * 80) | {
    "emails": ["a@example.com"] * 10,
    "phones": [],
    "external_ids": ["x" * 512],
}


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"user": {"emails": ["e@example.com"]}, "attribution": {}, "custom_data": {}},
        {"user": FULL_USER, "contact_id": uuid.UUID(int=0)},
        {"event_source_url": "https://x.example/" + "p" * 4000},  # a 2-byte length
        {"event_time": datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)},
        {"event_time": datetime(1, 1, 2, tzinfo=UTC), "attribution": {"click_time": None}},
        {"attribution": {"click_time": datetime(1950, 6, 1, 12, 0, 0, 123999, tzinfo=UTC)}},
        {"custom_data": {"value": Decimal(0), "num_items": 0, "extra": {"k": "v" * 600}}},
        {"custom_data": {"value": Decimal("0.0001"), "num_items": 2**31 - 1}},
        {"custom_data": {"value": Decimal("9999999999999999.9999"), "content_ids": ["a"] * 100}},
        {"custom_data": {"value": Decimal("127.9999")}},  # a sign bit to pad
        {"custom_data": {"value": Decimal("12.8")}},
    ],
)
def test_compiled_codec_matches_fastavro_on_edge_cases(overrides: dict[str, Any]) -> None:
    assert_matches_fastavro(make_event(**overrides))


def test_the_model_refuses_what_avro_cannot_carry_and_keeps_click_times_exact() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        make_event(attribution={"click_time": datetime(2026, 1, 1, 12, 0)})
    with pytest.raises(ValidationError, match="num_items"):
        make_event(custom_data={"num_items": 2**31})  # an Avro int
    click = datetime(2026, 1, 1, 12, 0, 0, 123999, tzinfo=ZoneInfo("Europe/Paris"))
    event = make_event(attribution={"click_time": click}, custom_data={"num_items": 2**31 - 1})
    assert event.attribution.click_time == datetime(2026, 1, 1, 11, 0, 0, 123000, tzinfo=UTC)
    assert CODEC.decode(CODEC.encode(event)) == event


def test_values_the_compiled_writer_declines_go_through_fastavro() -> None:
    valid = make_event()
    # Only reachable by skipping validation (model_copy does): a naive time, a huge int.
    naive = valid.attribution.model_copy(update={"click_time": datetime(2026, 1, 1, 12, 0)})
    event = valid.model_copy(update={"attribution": naive})
    with pytest.raises(TypeError):
        WRITE(event)
    data = CODEC.encode(event)
    assert data == HEADER + fastavro_body(event)
    assert CODEC.decode(data) == fastavro_decode(data)

    big = valid.custom_data.model_copy(update={"num_items": 2**40})
    too_big = valid.model_copy(update={"custom_data": big})
    with pytest.raises(OverflowError):
        WRITE(too_big)
    with pytest.raises(ValueError, match="num_items"):  # fastavro's refusal
        CODEC.encode(too_big)


def test_the_reader_schema_mirrors_the_model() -> None:
    # Decoding validates with extra="ignore": that is only the same as "forbid" when every
    # field the schema can produce is a model field.
    def names(record: dict[str, Any]) -> dict[str, Any]:
        return {
            field["name"]: names(field["type"])
            if isinstance(field["type"], dict) and field["type"]["type"] == "record"
            else None
            for field in record["fields"]
        }

    def model_names(model: type[BaseModel]) -> dict[str, Any]:
        return {
            name: model_names(info.annotation)
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
            else None
            for name, info in model.model_fields.items()
        }

    assert names(SCHEMA) == model_names(ConversionEvent)


# --- garbage still ends as DecodeError, as it did with fastavro alone ------------------------


def test_every_truncation_decodes_as_fastavro_decoded_it() -> None:
    codec = build_codec()
    data = codec.encode(make_event(user=FULL_USER, contact_id=uuid.uuid4()))
    for end in range(10, len(data)):
        expected = fastavro_decode(data[:end])
        if expected is DecodeError:
            with pytest.raises(DecodeError):
                codec.decode(data[:end])
        else:
            assert codec.decode(data[:end]) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # an 11-byte varint
        b"\x02" + b"\x48" + b"a" * 36,  # uuid text that is not a uuid
        b"\x02\x02a\x01",  # a negative string length
        b"\x02\x02a\x48" + b"1" * 36 + b"\x04",  # a union index past the end of the union
    ],
)
def test_malformed_bodies_are_decode_errors(body: bytes) -> None:
    with pytest.raises(DecodeError):
        build_codec().decode(HEADER + body)


def test_a_runaway_array_count_is_a_decode_error_not_a_hang() -> None:
    body = fastavro_body(make_event(user={"emails": ["a@example.com"]}))
    marker = b"\x02\x1aa@example.com\x00"  # a block of one 13-byte item, then the end
    assert marker in body
    patched = body.replace(marker, fastavro_long(2**61) + marker[1:], 1)
    with pytest.raises(DecodeError):
        CODEC.decode(HEADER + patched)


def fastavro_long(n: int) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, {"type": "long"}, n)
    return buffer.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.data())
def test_random_bodies_and_mutations_decode_as_fastavro_decoded_them(
    junk: bytes, data: st.DataObject
) -> None:
    valid = CODEC.encode(make_event())
    position = data.draw(st.integers(10, len(valid) - 1))
    mutated = valid[:position] + bytes([data.draw(st.integers(0, 255))]) + valid[position + 1 :]
    for message in (HEADER + junk, mutated):
        expected = fastavro_decode(message)
        if expected is DecodeError:
            with pytest.raises(DecodeError):
                CODEC.decode(message)
        else:
            assert CODEC.decode(message) == expected


def test_a_schema_the_compiler_refuses_is_served_by_fastavro(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise NotImplementedError

    monkeypatch.setattr("capi_stream.avro.codec.compile_reader", refuse)
    codec = SingleObjectCodec(SCHEMA)
    event = make_event()
    assert codec.encode(event) == CODEC.encode(event)
    assert codec.decode(codec.encode(event)) == event
    with pytest.raises(DecodeError):
        codec.decode(codec.encode(event)[:30])


@pytest.mark.parametrize("microsecond", [0, 123000, 123456, 999999])
@pytest.mark.parametrize("tz", [UTC, ZoneInfo("UTC"), ZoneInfo("Asia/Kolkata")])
def test_event_time_is_utc_with_whole_milliseconds_whatever_the_input(
    microsecond: int, tz: tzinfo
) -> None:
    given_time = datetime(2026, 3, 29, 1, 30, 15, microsecond, tzinfo=tz)
    event_time = make_event(event_time=given_time).event_time
    assert event_time == given_time.replace(microsecond=microsecond // 1000 * 1000)
    assert event_time.tzinfo is UTC
    assert event_time.microsecond == microsecond // 1000 * 1000
