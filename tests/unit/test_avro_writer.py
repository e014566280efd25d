"""The compiled Avro writer writes exactly the bytes fastavro writes, for any event."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capi_stream.avro_codec import build_codec, event_to_record, load_schema
from capi_stream.avro_writer import UnsupportedSchemaError, compile_writer
from capi_stream.event import ConversionEvent

SCHEMA = load_schema()
PARSED = fastavro.parse_schema(SCHEMA)
WRITE = compile_writer(SCHEMA)

text = st.text(min_size=1, max_size=12).map(str.strip).filter(bool)
optional = st.none() | text


def fastavro_bytes(record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, PARSED, record)
    return buffer.getvalue()


@st.composite
def events(draw: st.DrawFn) -> ConversionEvent:
    moment = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(milliseconds=draw(st.integers(0, 10**12)))
    value = draw(st.none() | st.decimals(0, 10**9, places=draw(st.integers(0, 4))))
    return ConversionEvent.create(
        tenant_id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))),
        source="api",
        source_event_id=draw(text),
        contact_id=draw(st.none() | st.uuids()),
        event_name=draw(text),
        event_time=moment,
        action_source="other",
        client_ip_address=draw(optional),
        user={"emails": draw(st.lists(text, max_size=3)), "city": draw(optional)},
        source_ids={"stripe_customer_id": draw(optional)},
        attribution={"fbclid": draw(optional), "click_time": draw(st.none() | st.just(moment))},
        custom_data={
            "value": value, "currency": "USD" if value is not None else None,
            "num_items": draw(st.none() | st.integers(0, 2**31 - 1)),
            "content_ids": draw(st.lists(text, max_size=3)),
            "extra": draw(st.dictionaries(text, text, max_size=3)),
        },
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(events())
def test_the_same_bytes_as_fastavro(event: ConversionEvent) -> None:
    record = event_to_record(event)
    assert WRITE(record) == fastavro_bytes(record)


def test_the_codec_uses_it_and_round_trips() -> None:
    codec = build_codec()
    event = ConversionEvent.create(
        tenant_id=uuid.uuid4(), source="api", source_event_id="o-1", event_name="Purchase",
        event_time=datetime.now(UTC), action_source="other",
        custom_data={"value": Decimal("-0"), "currency": "JPY"},
    )  # fmt: skip
    assert codec.decode(codec.encode(event)) == event


def test_an_int_out_of_range_is_refused_like_fastavro() -> None:
    record = event_to_record(
        ConversionEvent.create(
            tenant_id=uuid.uuid4(),
            source="api",
            source_event_id="o",
            event_name="Lead",
            event_time=datetime.now(UTC),
            action_source="other",
            custom_data={"num_items": 2**31},
        )  # fmt: skip
    )
    with pytest.raises(ValueError, match="Avro int"):
        WRITE(record)
    with pytest.raises(ValueError):
        fastavro_bytes(record)


ENUM = {"type": "enum", "name": "E", "symbols": ["A"]}


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "record", "name": "R", "fields": [{"name": "e", "type": ENUM}]},
        {"type": "record", "name": "R", "fields": [{"name": "u", "type": ["int", "string"]}]},
    ],
)
def test_what_it_does_not_compile_is_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedSchemaError):
        compile_writer(schema)
